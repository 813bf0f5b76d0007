"""``ImaginedEnv``: the world model behind a batched, gym-like face, so that rollout code cannot tell it from the dojo.

    env = ImaginedEnv.from_checkpoint(release_dir, device="cpu", seed=0)
    obs = env.reset(real_observations)                 # {observation.image, observation.state}, batch of B
    obs, info = env.step(action_chunk)                 # (B, K, A), K a multiple of the action chunk size

Observations use the real env's keys, shapes and dtypes, batched: ``observation.image`` (B, 96, 96, 3) uint8 and
``observation.state`` (B, S) float32, as numpy arrays (the dojo's envs return numpy). ``reset`` accepts images as
(B, H, W, 3) or (B, 3, H, W), numpy or torch. After a chunk of K actions the observation is the last of the K
predicted frames; ``info`` holds all of them (``frames`` (B, K, H, W, 3) uint8, ``states`` (B, K, S) float32).

Each action chunk of ``action_chunk_size`` actions (the tokenizer's temporal compression) produces one latent
frame, sampled by ``FlowSampler`` from noise drawn from the env's own ``torch.Generator`` (seeded at ``reset``), so
a rollout is a pure function of (checkpoint, observations, actions, seed). Latent frames are sampled one chunk at a
time: relative actions need the state at each chunk's start, which in imagination is the model's own predicted
state at the end of the previous chunk.

Context: the env keeps the last ``num_context_frames`` frames (the training clips' context) and encodes them into
the context latent frames of every call. Re-encoding the decoded frames rather than keeping the predicted latents
keeps the context in the distribution the DiT was trained on (a context latent made from observed frames by the
tokenizer). When ``reset`` gets one frame and the model was trained with more context, the frame is repeated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from world_model.dit import DiT
from world_model.model import WorldModel, WorldModelConfig
from world_model.sampler import FlowSampler, SamplerConfig
from world_model.tokenizer import VideoTokenizer


def images_to_model_layout(images: Tensor, size: int) -> Tensor:
    """(B, H, W, 3) or (B, 3, H, W) uint8 observation images -> (B, 3, H, W) uint8; one clear error otherwise."""
    if images.dtype != torch.uint8:
        raise ValueError(f"{OBS_IMAGE} must be uint8 images, got {images.dtype}")
    if images.ndim == 4 and tuple(images.shape[1:]) == (size, size, 3):
        return images.permute(0, 3, 1, 2).contiguous()
    if images.ndim == 4 and tuple(images.shape[1:]) == (3, size, size):
        return images
    raise ValueError(
        f"{OBS_IMAGE} must be (B, {size}, {size}, 3) or (B, 3, {size}, {size}), got {tuple(images.shape)}"
    )


class ImaginedEnv:
    """Batched imagined environment over a tokenizer + DiT (see the module docstring)."""

    def __init__(
        self,
        tokenizer: VideoTokenizer,
        dit: DiT,
        config: WorldModelConfig,
        *,
        device: torch.device | str = "cpu",
        sampler: SamplerConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.model = WorldModel(config, tokenizer, dit).to(device).eval()
        self.device = torch.device(device)
        self.sampler = FlowSampler(sampler or config.sampler)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.chunk_size = config.dit.action_chunk_size
        self.num_context_frames = config.num_context_frames
        self.image_size = tokenizer.cfg.image_size
        self.action_dim = config.dit.action_dim
        self.state_dim = config.dit.state_dim
        self._frames: Tensor | None = None  # (B, num_context_frames, 3, H, W) uint8, the newest last
        self._state: Tensor | None = None  # (B, S) float32, the state of the newest frame
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
        sampler: SamplerConfig | None = None,
        seed: int = 0,
    ) -> ImaginedEnv:
        """Load a world-model release (``dojo-bench train stage=world_model``, ``OUT/release``).

        ``expected_*`` describe the env the imagination stands in for; a checkpoint built for another action
        dimension or image size raises ``CheckpointError`` with one line."""
        model = WorldModel.from_checkpoint(
            directory,
            expected_action_dim=expected_action_dim,
            expected_state_dim=expected_state_dim,
            expected_image_size=expected_image_size,
        )
        return cls(model.tokenizer, model.dit, model.cfg, device=device, sampler=sampler, seed=seed)

    # ------------------------------------------------------------------------------------------------------------------
    # Gym-like interface
    # ------------------------------------------------------------------------------------------------------------------

    def reset(self, observations: dict[str, Any], *, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start B imagined episodes from real observations; ``seed`` re-seeds the sampling noise."""
        if seed is not None:
            self.seed = seed
        self.generator = torch.Generator().manual_seed(self.seed)
        for key in (OBS_IMAGE, OBS_STATE):
            if key not in observations:
                raise ValueError(f"observations need {key!r}; got {sorted(observations)}")
        images = self._images_to_model_layout(torch.as_tensor(np.asarray(observations[OBS_IMAGE])))
        states = torch.as_tensor(np.asarray(observations[OBS_STATE]), dtype=torch.float32)
        if states.ndim != 2 or states.shape != (images.shape[0], self.state_dim):
            raise ValueError(
                f"{OBS_STATE} must be (B, {self.state_dim}) = ({images.shape[0]}, {self.state_dim}), "
                f"got {tuple(states.shape)}"
            )
        # (B, num_context_frames, 3, H, W): the one observed frame stands for the whole context
        self._frames = images[:, None].expand(-1, self.num_context_frames, -1, -1, -1).to(self.device)
        self._state = states.to(self.device)
        self.num_steps = 0
        return self._observation(self._frames[:, -1], self._state)

    @torch.no_grad()
    def step(self, action_chunk: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Apply actions (B, K, A), K a multiple of ``action_chunk_size``; returns (observation after the last
        action, info with every predicted frame and state)."""
        if self._frames is None or self._state is None:
            raise RuntimeError("call reset(observations) before step()")
        actions = torch.as_tensor(np.asarray(action_chunk), dtype=torch.float32).to(self.device)
        b, c = self._frames.shape[0], self.chunk_size
        if actions.ndim != 3 or actions.shape[0] != b or actions.shape[2] != self.action_dim:
            raise ValueError(
                f"action_chunk must be (B, K, {self.action_dim}) with B={b}, got {tuple(actions.shape)}"
            )
        if actions.shape[1] == 0 or actions.shape[1] % c:
            raise ValueError(f"action_chunk length {actions.shape[1]} must be a positive multiple of {c}")
        frames, states = [], []
        for start in range(0, actions.shape[1], c):
            new_frames, new_states = self._imagine_chunk(actions[:, start : start + c])
            self._frames = torch.cat([self._frames, new_frames], dim=1)[:, -self.num_context_frames :]
            self._state = new_states[:, -1]
            frames.append(new_frames)
            states.append(new_states)
        self.num_steps += actions.shape[1]
        all_frames = torch.cat(frames, dim=1)  # (B, K, 3, H, W) uint8
        all_states = torch.cat(states, dim=1)  # (B, K, S)
        info = {
            "frames": all_frames.permute(0, 1, 3, 4, 2).cpu().numpy(),
            "states": all_states.cpu().numpy().astype(np.float32),
            "steps": self.num_steps,
        }
        return self._observation(all_frames[:, -1], all_states[:, -1]), info

    # ------------------------------------------------------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------------------------------------------------------

    def _imagine_chunk(self, chunk: Tensor) -> tuple[Tensor, Tensor]:
        """One chunk (B, c, A) -> (frames (B, c, 3, H, W) uint8, states (B, c, S) float32)."""
        model, c = self.model, self.chunk_size
        context = model.encode(self._frames)  # (B, n, C, h, w)
        n = context.shape[1]
        if model.cfg.relative_actions:
            chunk = chunk - self._state[:, None]  # relative to the state at the chunk's start (predicted)
        chunk = (chunk - model.cfg.action_offset) / model.cfg.action_scale
        # Context frames' chunks are zero-embedded by the DiT; only their length matters.
        actions = torch.cat([chunk.new_zeros(chunk.shape[0], (n - 1) * c, chunk.shape[2]), chunk], dim=1)
        with model.autocast():
            out = self.sampler.sample(model.dit, context, actions, 1, generator=self.generator)
        # Group j of the decoder only sees latent frame j: decoding (last context, new) gives the new c frames.
        images = model.decode(torch.cat([context[:, -1:], out.latents.float()], dim=1))[:, -c:]
        frames = (images * 255).round().to(torch.uint8)
        states = model.denormalize_states(out.states.float()[:, 0])  # (B, c, S)
        return frames, states

    def _images_to_model_layout(self, images: Tensor) -> Tensor:
        return images_to_model_layout(images, self.image_size)

    @staticmethod
    def _observation(frame: Tensor, state: Tensor) -> dict[str, np.ndarray]:
        return {
            OBS_IMAGE: frame.permute(0, 2, 3, 1).cpu().numpy(),  # (B, H, W, 3) uint8
            OBS_STATE: state.float().cpu().numpy().astype(np.float32),
        }
