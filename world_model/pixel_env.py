"""``PixelImaginedEnv``: the pixel world model behind the same batched, gym-like face as ``ImaginedEnv``.

    env = PixelImaginedEnv.from_checkpoint(release_dir, device="cpu")
    obs = env.reset(real_observations)                 # {observation.image, observation.state}, batch of B
    obs, info = env.step(action_chunk)                 # (B, K, A), any K >= 1

Observations and ``info`` follow ``ImaginedEnv``: ``observation.image`` (B, 96, 96, 3) uint8 and
``observation.state`` (B, S) float32 as numpy; ``info["frames"]`` (B, K, H, W, 3) uint8 and ``info["states"]``
(B, K, S). The model predicts one frame per action, so ``chunk_size`` is 1. With one deterministic pass per frame a
rollout is a pure function of (checkpoint, observations, actions) and ``seed`` is accepted for the common
interface; a stochastic model (``sampling_steps >= 1``) draws its noise from a generator seeded by ``seed`` at
every ``reset``, so the rollout is a pure function of those and the seed.

Context: the last ``num_context_frames`` frames and states, kept in float as the model predicted them (the
unrolled training saw its own float predictions); ``reset`` repeats the one observed frame (no motion yet).

A model with the object's pose (``object_shape``) starts from ``gt.object_pose`` (B, 3) when the observations hold
it, else from the probe reading the start frames; ``observation.state`` stays the agent's, and ``info`` also holds
the imagined poses, ``info["object_pose"]`` (B, K, 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dojo_bench.core.keys import GT_OBJECT_POSE, OBS_IMAGE, OBS_STATE
from world_model.checkpoint import load_world_model, read_config
from world_model.imagined_env import images_to_model_layout
from world_model.object_pose import pose_from_frames
from world_model.pixel_model import PixelWorldModel


@dataclass
class PixelSamplerConfig:
    """What the run records as its sampler: one deterministic pass per frame, or the stochastic model's steps."""

    method: str = "one_pass"
    num_steps: int = 1


@dataclass
class PixelSampler:
    cfg: PixelSamplerConfig = field(default_factory=PixelSamplerConfig)


class PixelImaginedEnv:
    """Batched imagined environment over a ``PixelWorldModel`` (see the module docstring)."""

    chunk_size = 1

    def __init__(self, model: PixelWorldModel, *, device: torch.device | str = "cpu", seed: int = 0) -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        cfg = model.cfg
        self.sampler = PixelSampler(
            PixelSamplerConfig("few_step_flow", cfg.sampling_steps)
            if cfg.stochastic
            else PixelSamplerConfig()
        )
        self.seed = seed
        self._generator = torch.Generator(self.device)
        self.num_context_frames = cfg.num_context_frames
        self.image_size = cfg.image_size
        self.action_dim = cfg.action_dim
        self.state_dim = cfg.state_dim
        self.object_shape = cfg.object_shape  # "" unless the model carries the pushed object's pose
        self._frames: Tensor | None = None  # (B, n, 3, H, W) float in [0, 1], the newest last
        self._states: Tensor | None = None  # (B, n, S)
        self.num_steps = 0

    @classmethod
    def from_checkpoint(
        cls,
        directory: str | Path,
        *,
        device: torch.device | str = "cpu",
        expected_action_dim: int | None = None,
        expected_state_dim: int | None = None,
        expected_image_size: int | None = None,
        seed: int = 0,
    ) -> PixelImaginedEnv:
        loaded = load_world_model(
            directory,
            expected_action_dim=expected_action_dim,
            expected_state_dim=expected_state_dim,
            expected_image_size=expected_image_size,
            require=("pixel",),
        )
        return cls(loaded.pixel, device=device, seed=seed)

    def reset(self, observations: dict[str, Any], *, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is not None:
            self.seed = seed
        for key in (OBS_IMAGE, OBS_STATE):
            if key not in observations:
                raise ValueError(f"observations need {key!r}; got {sorted(observations)}")
        images = images_to_model_layout(torch.as_tensor(np.asarray(observations[OBS_IMAGE])), self.image_size)
        states = torch.as_tensor(np.asarray(observations[OBS_STATE]), dtype=torch.float32)
        if states.shape != (images.shape[0], self.state_dim):
            raise ValueError(
                f"{OBS_STATE} must be (B, {self.state_dim}) = ({images.shape[0]}, {self.state_dim}), "
                f"got {tuple(states.shape)}"
            )
        if self.model.cfg.has_object:
            states = torch.cat([states, self._start_poses(observations, images)], 1)  # (B, S + 3)
        n = self.num_context_frames
        frames = images.float().div(255).to(self.device)
        self._frames = frames[:, None].expand(-1, n, -1, -1, -1).contiguous()  # (B, n, 3, H, W)
        self._states = states.to(self.device)[:, None].expand(-1, n, -1).contiguous()  # (B, n, S)
        self.num_steps = 0
        self._generator.manual_seed(self.seed)
        return self._observation(self._frames[:, -1], self._states[:, -1, : self.state_dim])

    @torch.no_grad()
    def step(self, action_chunk: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Apply actions (B, K, A) one after another; returns (observation after the last, info)."""
        if self._frames is None or self._states is None:
            raise RuntimeError("call reset(observations) before step()")
        actions = torch.as_tensor(np.asarray(action_chunk), dtype=torch.float32).to(self.device)
        b = self._frames.shape[0]
        if (
            actions.ndim != 3
            or actions.shape[0] != b
            or actions.shape[2] != self.action_dim
            or actions.shape[1] < 1
        ):
            raise ValueError(
                f"action_chunk must be (B, K, {self.action_dim}) with B={b} and K >= 1, got {tuple(actions.shape)}"
            )
        frames, states = [], []
        for k in range(actions.shape[1]):
            frame, state = self.model.step(self._frames, self._states, actions[:, k], self._generator)
            self._frames = torch.cat([self._frames[:, 1:], frame[:, None]], 1)
            self._states = torch.cat([self._states[:, 1:], state[:, None]], 1)
            frames.append(frame)
            states.append(state)
        self.num_steps += actions.shape[1]
        images = (torch.stack(frames, 1) * 255).round().to(torch.uint8)  # (B, K, 3, H, W)
        all_states = torch.stack(states, 1)  # (B, K, S [+ 3])
        info = {
            "frames": images.permute(0, 1, 3, 4, 2).cpu().numpy(),
            "states": all_states[..., : self.state_dim].cpu().numpy().astype(np.float32),
            "steps": self.num_steps,
        }
        if self.model.cfg.has_object:
            info["object_pose"] = all_states[..., self.state_dim :].cpu().numpy().astype(np.float32)
        return self._observation(frames[-1], states[-1][:, : self.state_dim]), info

    def _start_poses(self, observations: dict[str, Any], images: Tensor) -> Tensor:
        """(B, 3) the object's start pose: the observations' ground truth, else the probe's reading of the
        start frames ``images`` (B, 3, H, W) uint8."""
        b = len(observations[OBS_STATE])
        if GT_OBJECT_POSE in observations:
            poses = torch.as_tensor(np.asarray(observations[GT_OBJECT_POSE]), dtype=torch.float32)
        else:
            frames = images.permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3) uint8
            try:
                poses = torch.from_numpy(pose_from_frames(frames, self.model.cfg.object_shape))
            except ValueError as error:
                raise ValueError(f"the world model carries the object's pose, and {error}") from None
        if poses.shape != (b, 3):
            raise ValueError(f"{GT_OBJECT_POSE} must be (B, 3) = ({b}, 3), got {tuple(poses.shape)}")
        return poses

    @staticmethod
    def _observation(frame: Tensor, state: Tensor) -> dict[str, np.ndarray]:
        image = (frame * 255).round().to(torch.uint8)
        return {
            OBS_IMAGE: image.permute(0, 2, 3, 1).cpu().numpy(),  # (B, H, W, 3) uint8
            OBS_STATE: state.float().cpu().numpy().astype(np.float32),
        }


def is_pixel_release(directory: str | Path) -> bool:
    """Whether a world-model release holds the pixel model (else the tokenizer + DiT)."""
    return "pixel" in read_config(directory)["components"]


__all__ = ["PixelImaginedEnv", "is_pixel_release"]
