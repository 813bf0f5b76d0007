"""LightningModule training the video tokenizer (tokenizer.py) as a VAE: reconstruction MSE + kl_weight * KL.

Batches follow batch.py; only ``observation.image`` (B, T, 3, H, W) is used (T = 1 + 4k for temporal compression 4).
No perceptual or adversarial loss: at 96x96 on simple scenes MSE is enough, and it keeps the module one loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import lightning as L
import torch
from torch import Tensor

from dojo_bench.core.keys import OBS_IMAGE
from world_model.batch import frames_to_images, frames_to_model
from world_model.tokenizer import TokenizerConfig, VideoTokenizer
from world_model.video_metrics import psnr_per_sample


@dataclass
class LitTokenizerConfig:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    # Per-element KL (tokenizer.LatentDistribution.kl); small, so latents carry detail but stay near unit scale.
    kl_weight: float = 1e-4

    def __post_init__(self) -> None:
        if isinstance(self.tokenizer, dict):
            self.tokenizer = TokenizerConfig(**self.tokenizer)
        self.betas = tuple(self.betas)
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0 or self.kl_weight < 0:
            raise ValueError(
                f"weight_decay and kl_weight must be >= 0, got {self.weight_decay}, {self.kl_weight}"
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")


class LitTokenizer(L.LightningModule):
    """Trains ``VideoTokenizer``; the same code runs on CPU and CUDA (bf16 autocast on CUDA only)."""

    def __init__(self, cfg: LitTokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = VideoTokenizer(cfg.tokenizer)
        self.save_hyperparameters({"config": dataclasses.asdict(cfg)})

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def _losses(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        frames = frames_to_model(batch[OBS_IMAGE])  # (B, T, 3, H, W) in [-1, 1]
        with self._autocast():
            recon, posterior = self.tokenizer(frames)
        recon = recon.float()
        losses = {"recon": torch.nn.functional.mse_loss(recon, frames), "kl": posterior.kl().float()}
        losses["loss"] = losses["recon"] + self.cfg.kl_weight * losses["kl"]
        return losses, recon, frames

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses, _, frames = self._losses(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=frames.shape[0])
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses, recon, frames = self._losses(batch)
        metrics = {f"val/{k}": v for k, v in losses.items()}
        metrics["val/psnr"] = psnr_per_sample(frames_to_images(recon), frames_to_images(frames)).mean()
        self.log_dict(metrics, prog_bar=True, batch_size=frames.shape[0])

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.tokenizer.parameters(),
            lr=self.cfg.learning_rate,
            betas=self.cfg.betas,
            weight_decay=self.cfg.weight_decay,
        )
