"""The batch contract shared by the world-model LightningModules.

A batch is a dict with LeRobot keys (import them from ``dojo_bench.core.keys``, mirroring lerobot's constants):

- ``OBS_IMAGE``: (B, T, 3, H, W) uint8 in [0, 255] or float in [0, 1]
- ``ACTION``: (B, T, A) float; ``action[:, t]`` is applied after frame t and produces frame t + 1,
  so the last action of a clip produces a frame outside it and is never used by the world model.
- ``OBS_STATE``: (B, T, S) float, the proprioceptive state observed with frame t.

Frames enter the tokenizer in [-1, 1]; ``frames_to_model`` and ``frames_to_images`` convert both ways.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE

__all__ = ["check_batch", "frames_to_images", "frames_to_model"]


def frames_to_model(images: Tensor) -> Tensor:
    """Convert images (..., 3, H, W), uint8 in [0, 255] or float in [0, 1], to float32 in [-1, 1]."""
    if images.dtype == torch.uint8:
        return images.float().div(127.5).sub(1.0)
    if not torch.is_floating_point(images):
        raise ValueError(
            f"images must be uint8 in [0, 255] or float in [0, 1], got dtype {images.dtype}; "
            "convert them before building the batch"
        )
    return images.float().mul(2.0).sub(1.0)


def frames_to_images(frames: Tensor) -> Tensor:
    """Convert model frames (..., 3, H, W) in [-1, 1] back to float images in [0, 1] (clamped)."""
    return frames.float().add(1.0).div(2.0).clamp(0.0, 1.0)


def check_batch(batch: dict[str, Tensor], *, image_size: int, action_dim: int, state_dim: int) -> None:
    """Raise a one-line ValueError naming the first key whose shape breaks the batch contract."""
    for key in (OBS_IMAGE, ACTION, OBS_STATE):
        if key not in batch:
            raise ValueError(f"batch is missing key {key!r}; it has {sorted(batch)}")
    images, actions, states = batch[OBS_IMAGE], batch[ACTION], batch[OBS_STATE]
    if images.ndim != 5 or images.shape[2] != 3 or tuple(images.shape[-2:]) != (image_size, image_size):
        raise ValueError(
            f"{OBS_IMAGE} must be (B, T, 3, {image_size}, {image_size}), got {tuple(images.shape)}"
        )
    batch_size, num_frames = images.shape[:2]
    if tuple(actions.shape) != (batch_size, num_frames, action_dim):
        raise ValueError(
            f"{ACTION} must be (B, T, A) = ({batch_size}, {num_frames}, {action_dim}), got {tuple(actions.shape)}"
        )
    if tuple(states.shape) != (batch_size, num_frames, state_dim):
        raise ValueError(
            f"{OBS_STATE} must be (B, T, S) = ({batch_size}, {num_frames}, {state_dim}), got {tuple(states.shape)}"
        )
