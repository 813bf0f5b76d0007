"""``WorldModel``: the latent world model as a plain module: the tokenizer, the DiT dynamics network, the
normalisation of actions and states, encode/decode between frames and scaled latents, and bf16 autocast on CUDA.

Training wraps it (``LitWorldModel``, lit_world_model.py, adds the flow-matching loss, validation and optimiser);
inference uses it directly: ``ImaginedEnv`` (imagined_env.py) samples with it, and ``WorldModel.from_checkpoint``
loads a release (checkpoint.py). DIAMOND splits its world model the same way (InnerModel / Denoiser / Sampler,
and a WorldModelEnv over them).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.batch import check_batch, frames_to_images, frames_to_model
from world_model.checkpoint import CheckpointError, load_world_model
from world_model.dit import DiT, DiTConfig, chunk_states
from world_model.flow import FlowConfig, make_relative_actions
from world_model.sampler import SamplerConfig
from world_model.tokenizer import VideoTokenizer


@dataclass
class WorldModelConfig:
    """The world model's settings (DiT, sampler, context, normalisation) and its training's (flow, optimiser).

    A release stores them, without ``dit``, in its config.json as ``extra["world_model"]``.

    ``num_context_frames`` counts frames (not latent frames). Offsets and scales normalise actions (after the
    relative transform) and states to roughly unit range; ``latent_scale`` multiplies tokenizer latents so they
    have about unit variance (see ``estimate_latent_scale``).
    """

    dit: DiTConfig = field(default_factory=DiTConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    num_context_frames: int = 1
    relative_actions: bool = True
    action_offset: float = 0.0
    action_scale: float = 1.0
    state_offset: float = 0.0
    state_scale: float = 1.0
    latent_scale: float = 1.0
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 0
    # Validation batches (from the first) on which to sample, decode and log PSNR beside copy-last-frame.
    val_sample_batches: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name, cls in (("dit", DiTConfig), ("flow", FlowConfig), ("sampler", SamplerConfig)):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, cls(**getattr(self, name)))
        self.betas = tuple(self.betas)
        if self.num_context_frames < 1:
            raise ValueError(
                f"num_context_frames must be >= 1 (the world model needs an observed frame), "
                f"got {self.num_context_frames}"
            )
        if self.action_scale <= 0 or self.state_scale <= 0 or self.latent_scale <= 0:
            raise ValueError(
                f"action_scale, state_scale and latent_scale must be positive, got "
                f"{self.action_scale}, {self.state_scale}, {self.latent_scale}"
            )
        if (
            self.learning_rate <= 0
            or self.weight_decay < 0
            or self.warmup_steps < 0
            or self.val_sample_batches < 0
        ):
            raise ValueError(
                "learning_rate must be positive; weight_decay, warmup_steps, val_sample_batches >= 0"
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.relative_actions and self.dit.action_dim != self.dit.state_dim:
            raise ValueError(
                f"relative_actions needs action_dim == state_dim (got {self.dit.action_dim} and "
                f"{self.dit.state_dim}); set relative_actions=False"
            )


def check_compatible(cfg: WorldModelConfig, tokenizer: VideoTokenizer) -> None:
    """Raise a ValueError naming the field to change when the DiT and the tokenizer disagree."""
    tok, dit = tokenizer.cfg, cfg.dit
    if (dit.latent_channels, dit.latent_size) != (tok.latent_channels, tok.latent_size):
        raise ValueError(
            f"DiT expects latents ({dit.latent_channels}, {dit.latent_size}, {dit.latent_size}) but the tokenizer "
            f"makes ({tok.latent_channels}, {tok.latent_size}, {tok.latent_size}); set dit.latent_channels="
            f"{tok.latent_channels}, dit.latent_size={tok.latent_size}"
        )
    if dit.action_chunk_size != tok.temporal_compression:
        raise ValueError(
            f"dit.action_chunk_size={dit.action_chunk_size} must equal the tokenizer's temporal_compression="
            f"{tok.temporal_compression} (one action chunk per latent frame)"
        )
    if (cfg.num_context_frames - 1) % tok.temporal_compression:
        raise ValueError(
            f"num_context_frames={cfg.num_context_frames} must be 1 + k*{tok.temporal_compression} to end on a "
            "latent frame boundary"
        )


class WorldModel(nn.Module):
    """A frozen ``VideoTokenizer`` and a ``DiT`` over its scaled latents, with the normalisation they were trained
    with. ``dit=None`` builds a freshly initialised DiT from ``cfg.dit`` (for training)."""

    def __init__(self, cfg: WorldModelConfig, tokenizer: VideoTokenizer, dit: DiT | None = None) -> None:
        super().__init__()
        check_compatible(cfg, tokenizer)
        self.cfg = cfg
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.dit = dit if dit is not None else DiT(cfg.dit)

    @classmethod
    def from_checkpoint(
        cls,
        directory: str | Path,
        *,
        device: torch.device | str = "cpu",
        expected_action_dim: int | None = None,
        expected_state_dim: int | None = None,
        expected_image_size: int | None = None,
    ) -> WorldModel:
        """The world model of a release (``dojo-bench train stage=world_model``, ``OUT/release``), in eval mode on
        ``device``; ``expected_*`` mismatches and missing settings raise ``CheckpointError`` with one line."""
        loaded = load_world_model(
            directory,
            device="cpu",
            expected_action_dim=expected_action_dim,
            expected_state_dim=expected_state_dim,
            expected_image_size=expected_image_size,
            require=("tokenizer", "dit"),
        )
        settings = loaded.extra.get("world_model")
        if not isinstance(settings, dict):
            raise CheckpointError(
                f"{directory}: no world_model settings in config.json extra (a tokenizer-only checkpoint?)"
            )
        try:
            config = WorldModelConfig(dit=loaded.dit.cfg, **settings)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{directory}: invalid world_model settings: {error}") from None
        return cls(config, loaded.tokenizer, loaded.dit).to(device).eval()

    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    @property
    def num_context_latent_frames(self) -> int:
        return 1 + (self.cfg.num_context_frames - 1) // self.tokenizer.cfg.temporal_compression

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on CUDA; a no-op on the CPU, which runs the same code in float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def train(self, mode: bool = True) -> WorldModel:
        super().train(mode)
        self.tokenizer.eval()  # frozen: never in training mode
        return self

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images (B, T, 3, H, W) uint8 or [0, 1] -> scaled latents (B, T', C, h, w) (posterior mean, float32)."""
        with self.autocast():
            latents = self.tokenizer.encode(frames_to_model(images)).mean
        return latents.float() * self.cfg.latent_scale

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents (B, T', C, h, w) -> images (B, T, 3, H, W) in [0, 1]."""
        with self.autocast():
            frames = self.tokenizer.decode(latents / self.cfg.latent_scale)
        return frames_to_images(frames)

    def normalize_actions(self, actions: Tensor, states: Tensor) -> Tensor:
        """Raw actions (B, T, A) and states (B, T, S) -> the DiT's action input (B, T, A)."""
        actions = actions.float()
        if self.cfg.relative_actions:
            actions = make_relative_actions(actions, states.float(), self.cfg.dit.action_chunk_size)
        return (actions - self.cfg.action_offset) / self.cfg.action_scale

    def normalize_states(self, states: Tensor) -> Tensor:
        return (states.float() - self.cfg.state_offset) / self.cfg.state_scale

    def denormalize_states(self, states: Tensor) -> Tensor:
        return states * self.cfg.state_scale + self.cfg.state_offset

    def prepare_batch(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Batch -> (latents (B, T', C, h, w), DiT actions (B, T, A), state targets (B, T', c, S))."""
        dit = self.cfg.dit
        check_batch(
            batch,
            image_size=self.tokenizer.cfg.image_size,
            action_dim=dit.action_dim,
            state_dim=dit.state_dim,
        )
        num_frames = batch[OBS_IMAGE].shape[1]
        if num_frames <= self.cfg.num_context_frames:
            raise ValueError(
                f"clips of {num_frames} frames leave nothing to predict after {self.cfg.num_context_frames} context frames"
            )
        latents = self.encode(batch[OBS_IMAGE])
        actions = self.normalize_actions(batch[ACTION], batch[OBS_STATE])
        state_target = chunk_states(self.normalize_states(batch[OBS_STATE]), dit.action_chunk_size)
        return latents, actions, state_target
