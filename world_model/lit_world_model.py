"""LightningModule training the latent DiT (dit.py) with rectified flow (flow.py) on a frozen tokenizer's latents.

Batches follow batch.py: ``observation.image`` (B, T, 3, H, W), ``action`` (B, T, A), ``observation.state`` (B, T, S),
``action[:, t]`` applied after frame t. The first ``num_context_frames`` frames (1 + 4k with a 4x temporal tokenizer)
are context; the DiT denoises the rest.

Per step: frames -> tokenizer posterior mean * ``latent_scale`` -> latents (B, T', C, h, w); actions -> relative
(optional) -> ``(a - action_offset) / action_scale``; states -> ``(s - state_offset) / state_scale`` in the state
head's layout (``dit.chunk_states``); then ``RectifiedFlow.training_losses``.

Precision: bf16 autocast on CUDA only; CPU runs the same code in float32. Run the Trainer at precision 32.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.batch import check_batch, frames_to_images, frames_to_model
from world_model.checkpoint import save_world_model
from world_model.dit import DiT, DiTConfig, chunk_states
from world_model.flow import FlowConfig, RectifiedFlow, make_relative_actions
from world_model.sampler import FlowSampler, SamplerConfig
from world_model.tokenizer import VideoTokenizer
from world_model.video_metrics import psnr_per_sample


@dataclass
class LitWorldModelConfig:
    """Everything the world-model training step needs besides the tokenizer.

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


def check_compatible(cfg: LitWorldModelConfig, tokenizer: VideoTokenizer) -> None:
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


@torch.no_grad()
def estimate_latent_scale(tokenizer: VideoTokenizer, images: Tensor) -> float:
    """1 / std of the tokenizer's posterior means over images (B, T, 3, H, W): the ``latent_scale`` that gives the
    DiT unit-variance latents (as Stable Diffusion's 0.18215 does for its VAE)."""
    latents = tokenizer.encode(frames_to_model(images)).mean
    return float(1.0 / latents.float().std().clamp_min(1e-6))


class LitWorldModel(L.LightningModule):
    """Trains a ``DiT`` on the latents of a frozen ``VideoTokenizer``."""

    def __init__(self, cfg: LitWorldModelConfig, tokenizer: VideoTokenizer) -> None:
        super().__init__()
        check_compatible(cfg, tokenizer)
        self.cfg = cfg
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.dit = DiT(cfg.dit)
        self.flow = RectifiedFlow(cfg.flow)
        self.sampler = FlowSampler(cfg.sampler)
        self.save_hyperparameters(
            {"config": dataclasses.asdict(cfg), "tokenizer": dataclasses.asdict(tokenizer.cfg)}
        )

    # ------------------------------------------------------------------------------------------------------------------
    # Batch preparation
    # ------------------------------------------------------------------------------------------------------------------

    @property
    def num_context_latent_frames(self) -> int:
        return 1 + (self.cfg.num_context_frames - 1) // self.tokenizer.cfg.temporal_compression

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def train(self, mode: bool = True) -> LitWorldModel:
        super().train(mode)
        self.tokenizer.eval()  # frozen: never in training mode
        return self

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images (B, T, 3, H, W) uint8 or [0, 1] -> scaled latents (B, T', C, h, w) (posterior mean, float32)."""
        with self._autocast():
            latents = self.tokenizer.encode(frames_to_model(images)).mean
        return latents.float() * self.cfg.latent_scale

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents (B, T', C, h, w) -> images (B, T, 3, H, W) in [0, 1]."""
        with self._autocast():
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

    # ------------------------------------------------------------------------------------------------------------------
    # Training and validation
    # ------------------------------------------------------------------------------------------------------------------

    def _losses(
        self, batch: dict[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        latents, actions, state_target = self.prepare_batch(batch)
        with self._autocast():
            return self.flow.training_losses(
                self.dit,
                latents,
                actions,
                self.num_context_latent_frames,
                state_target=state_target,
                generator=generator,
            )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self._losses(batch)
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=batch[ACTION].shape[0]
        )
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # A fixed generator per batch makes validation losses comparable across epochs.
        generator = torch.Generator().manual_seed(self.cfg.seed + batch_idx)
        metrics = {f"val/{k}": v for k, v in self._losses(batch, generator).items()}
        if batch_idx < self.cfg.val_sample_batches:
            metrics.update(self.rollout_metrics(batch, generator=generator))
        self.log_dict(metrics, prog_bar=True, batch_size=batch[ACTION].shape[0])

    @torch.no_grad()
    def predict(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Sample the non-context frames of a batch from its context frames and actions.

        Returns (images (B, T - num_context_frames, 3, H, W) in [0, 1], states (B, T - num_context_frames, S) in the
        dataset's units). Relative actions read the batch's states at chunk starts (see ``make_relative_actions``).
        """
        latents, actions, _ = self.prepare_batch(batch)
        n = self.num_context_latent_frames
        with self._autocast():
            out = self.sampler.sample(
                self.dit, latents[:, :n], actions, latents.shape[1] - n, generator=generator
            )
        frames = self.decode(torch.cat([latents[:, :n], out.latents.float()], dim=1))
        states = self.denormalize_states(out.states.float().flatten(1, 2))
        return frames[:, self.cfg.num_context_frames :], states

    @torch.no_grad()
    def rollout_metrics(
        self, batch: dict[str, Tensor], *, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """PSNR of sampled frames vs. the truth, beside copying the last context frame (the floor to beat)."""
        images = batch[OBS_IMAGE]
        target = frames_to_images(frames_to_model(images[:, self.cfg.num_context_frames :]))
        predicted, states = self.predict(batch, generator=generator)
        copy_last = frames_to_images(
            frames_to_model(images[:, self.cfg.num_context_frames - 1 : self.cfg.num_context_frames])
        )
        return {
            "val/psnr": psnr_per_sample(predicted, target).mean(),
            "val/psnr_copy_last": psnr_per_sample(copy_last.expand_as(target), target).mean(),
            "val/state_mse": (states - batch[OBS_STATE][:, self.cfg.num_context_frames :].float())
            .pow(2)
            .mean(),
        }

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.dit.parameters(),
            lr=self.cfg.learning_rate,
            betas=self.cfg.betas,
            weight_decay=self.cfg.weight_decay,
        )
        if not self.cfg.warmup_steps:
            return optimizer
        warmup = self.cfg.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------------------------------------------------------
    # Export
    # ------------------------------------------------------------------------------------------------------------------

    def export(self, directory: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write tokenizer + DiT as a safetensors/JSON checkpoint (checkpoint.py); ``extra["world_model"]`` holds
        this module's config (normalisation, context length, sampler), what an imagined env needs to run it."""
        cfg = dataclasses.asdict(self.cfg)
        cfg.pop("dit")
        return save_world_model(
            directory, tokenizer=self.tokenizer, dit=self.dit, extra={"world_model": cfg, **(extra or {})}
        )
