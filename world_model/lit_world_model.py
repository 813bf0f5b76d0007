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
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.batch import frames_to_images, frames_to_model
from world_model.checkpoint import save_world_model
from world_model.dit import DiT
from world_model.flow import RectifiedFlow
from world_model.model import WorldModel, WorldModelConfig
from world_model.sampler import FlowSampler
from world_model.tokenizer import VideoTokenizer
from world_model.video_metrics import psnr_per_sample


@torch.no_grad()
def estimate_latent_scale(tokenizer: VideoTokenizer, images: Tensor) -> float:
    """1 / std of the tokenizer's posterior means over images (B, T, 3, H, W): the ``latent_scale`` that gives the
    DiT unit-variance latents (as Stable Diffusion's 0.18215 does for its VAE)."""
    latents = tokenizer.encode(frames_to_model(images)).mean
    return float(1.0 / latents.float().std().clamp_min(1e-6))


class LitWorldModel(L.LightningModule):
    """Trains the ``DiT`` of a ``WorldModel`` (model.py) on the latents of its frozen ``VideoTokenizer``."""

    def __init__(self, cfg: WorldModelConfig, tokenizer: VideoTokenizer, dit: DiT | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = WorldModel(cfg, tokenizer, dit)
        self.flow = RectifiedFlow(cfg.flow)
        self.sampler = FlowSampler(cfg.sampler)
        self.save_hyperparameters(
            {"config": dataclasses.asdict(cfg), "tokenizer": dataclasses.asdict(tokenizer.cfg)}
        )

    @property
    def tokenizer(self) -> VideoTokenizer:
        return self.model.tokenizer

    @property
    def dit(self) -> DiT:
        return self.model.dit

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Checkpoints written before the network moved into ``WorldModel`` name its weights without "model.".
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(("dit.", "tokenizer."))]:
            state[f"model.{key}"] = state.pop(key)

    # ------------------------------------------------------------------------------------------------------------------
    # Training and validation
    # ------------------------------------------------------------------------------------------------------------------

    def losses(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The flow-matching losses of a batch (``loss`` and its parts), under the model's autocast."""
        latents, actions, state_target = self.model.prepare_batch(batch)
        with self.model.autocast():
            return self.flow.training_losses(
                self.dit,
                latents,
                actions,
                self.model.num_context_latent_frames,
                state_target=state_target,
                generator=generator,
            )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=batch[ACTION].shape[0]
        )
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # A fixed generator per batch makes validation losses comparable across epochs.
        generator = torch.Generator().manual_seed(self.cfg.seed + batch_idx)
        metrics = {f"val/{k}": v for k, v in self.losses(batch, generator).items()}
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
        latents, actions, _ = self.model.prepare_batch(batch)
        n = self.model.num_context_latent_frames
        with self.model.autocast():
            out = self.sampler.sample(
                self.dit, latents[:, :n], actions, latents.shape[1] - n, generator=generator
            )
        frames = self.model.decode(torch.cat([latents[:, :n], out.latents.float()], dim=1))
        states = self.model.denormalize_states(out.states.float().flatten(1, 2))
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
