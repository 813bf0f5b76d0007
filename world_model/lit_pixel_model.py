"""Training the pixel world model (``PixelWorldModel``): unrolled on its own predictions, loss on what moves.

A batch is clips of ``n + K`` frames (world_model/data.py, ``temporal_compression=1``): n context frames, then K
steps. Each step predicts the next frame and state from the current context and the step's action; the context
then slides on by one frame. For the first ``teacher_forcing_fraction`` of training the context is always the
data's own frames (one-step learning, fast to converge); after that it is the model's own predictions, with the
gradient flowing through the whole unroll (training on prediction-dependent transitions is what long horizons
need: Chiappa et al. 2017, Self Forcing; the CPU feasibility note measured a 5x lower T error at 32 steps).

Long horizons for little compute (``free_steps``): closed-loop evaluation runs 200 steps, far past any unroll the
gradient can afford on a CPU. With ``free_steps = P`` each training batch first rolls out a random 0..P steps on the
model's own predictions without gradient (a third of the cost of a step with gradient), then takes the loss over the
clip's remaining ``K = clip_length - n - P`` steps, so the model learns to predict, and recover, from the worn frames
it makes late in an episode. Validation always unrolls the whole clip.

Loss per step: L1 on the frame, with pixels that change between the two real frames weighted ``moving_weight``
times more (the white background would dominate otherwise), plus ``state_loss_weight`` times the squared state
error in units of one step's typical change.

Models with the object's pose (``object_shape``, world_model/object_pose.py) carry the data's poses
(``gt.object_pose``) in training: the silhouettes the U-Net paints from are always the true ones, so it learns to
render the object where its pose says; the pose dynamics head trains on states alone before the fit
(``object_pretrain_steps`` steps of ``fit_object_dynamics``) and is frozen during it.

Stochastic models (``sampling_steps >= 1``) learn to denoise instead: each step's true change is noised to a random
level and the loss is the same weighted error, squared, of the clean frame they estimate in one pass. When training
on their own predictions, the next context frame is a full sample (no gradient), as in imagination.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from dojo_bench.core.keys import ACTION, GT_OBJECT_POSE, OBS_IMAGE, OBS_STATE
from world_model.checkpoint import save_world_model
from world_model.pixel_model import PixelWorldModel, PixelWorldModelConfig


@dataclass
class LitPixelWorldModelConfig:
    model: PixelWorldModelConfig = field(default_factory=PixelWorldModelConfig)
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 200
    max_steps: int = 10000  # the cosine decay's length
    moving_weight: float = 10.0
    moving_threshold: float = 0.1  # summed |change| over RGB above which a pixel counts as moving
    state_loss_weight: float = 1.0
    teacher_forcing_fraction: float = 0.25
    free_steps: int = 0  # at most this many steps rolled out without gradient before the loss steps
    object_pretrain_steps: int = 8000  # object_shape: steps of fit_object_dynamics on states before the fit
    object_unroll: int = 16  # object_shape: steps each of those unrolls on its own poses

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = PixelWorldModelConfig(**self.model)
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.warmup_steps < 0 or self.max_steps < 1:
            raise ValueError(
                "learning_rate > 0, weight_decay >= 0, warmup_steps >= 0 and max_steps >= 1 are needed"
            )
        if not 0 <= self.teacher_forcing_fraction <= 1:
            raise ValueError(
                f"teacher_forcing_fraction must be in [0, 1], got {self.teacher_forcing_fraction}"
            )
        if self.moving_weight < 0 or self.state_loss_weight < 0:
            raise ValueError("moving_weight and state_loss_weight must be >= 0")
        if self.free_steps < 0:
            raise ValueError(f"free_steps must be >= 0, got {self.free_steps}")
        if self.object_pretrain_steps < 0 or self.object_unroll < 1:
            raise ValueError("object_pretrain_steps must be >= 0 and object_unroll >= 1")


def unroll_losses(
    model: PixelWorldModel,
    batch: dict[str, Tensor],
    own_predictions: bool,
    moving_weight: float,
    moving_threshold: float,
    free_steps: int = 0,
) -> dict[str, Tensor]:
    """Losses of one batch unrolled over its clip (see the module docstring) and, for reporting, the same L1 of
    copy-last-frame and the mean state error in arena units. ``free_steps`` rolls out the first 0..free_steps
    steps (drawn once per batch) on the model's own predictions without gradient; the loss covers the
    ``T - n - free_steps`` steps after them."""
    n, agent = model.cfg.num_context_frames, model.cfg.state_dim
    frames = batch[OBS_IMAGE].float() / 255  # (B, T, 3, H, W)
    states, actions = batch[OBS_STATE].float(), batch[ACTION].float()  # (B, T, S), (B, T, A)
    poses = None
    if model.cfg.has_object:
        poses = batch[GT_OBJECT_POSE].float()  # (B, T, 3): the silhouettes are always the data's
        states = torch.cat([states, poses], -1)  # (B, T, S + 3)
    steps = frames.shape[1] - n - free_steps
    if steps < 1:
        raise ValueError(
            f"clips of {frames.shape[1]} frames leave no loss step after {n} context frames and "
            f"{free_steps} free steps"
        )
    context, context_states = frames[:, :n], states[:, :n]
    skip = int(torch.randint(0, free_steps + 1, ())) if free_steps else 0
    with torch.no_grad():
        for k in range(skip):  # the free prefix: the model's own predictions, no gradient
            pose = None if poses is None else poses[:, n + k]
            frame, state = model.step(context, context_states, actions[:, n - 1 + k], next_pose=pose)
            context = torch.cat([context[:, 1:], frame[:, None]], 1)
            context_states = torch.cat([context_states[:, 1:], state[:, None]], 1)
    if not own_predictions:
        context, context_states = frames[:, skip : skip + n], states[:, skip : skip + n]
    stochastic = model.cfg.stochastic
    frame_loss = state_loss = copy_loss = state_error = 0.0
    for k in range(skip, skip + steps):
        t = n - 1 + k  # the newest context frame
        target, current = frames[:, t + 1], frames[:, t]
        pose = None if poses is None else poses[:, t + 1]
        if stochastic:
            frame, state = denoised_step(model, context, context_states, actions[:, t], target, pose)
        else:
            frame, state = model.step(context, context_states, actions[:, t], next_pose=pose)
        moving = ((target - current).abs().sum(1, keepdim=True) > moving_threshold).float()  # (B, 1, H, W)
        weight = 1 + moving_weight * moving
        power = 2 if stochastic else 1  # a denoiser's estimate is the mean (squared error); one pass: L1
        frame_loss = frame_loss + (weight * (frame - target).abs().pow(power)).mean()
        copy_loss = copy_loss + (weight * (current - target).abs().pow(power)).mean().detach()
        miss = state[:, :agent] - states[:, t + 1, :agent]  # the agent's (the object's pose is the data's)
        state_loss = state_loss + (miss / model.cfg.delta_scale).square().mean()
        state_error = state_error + miss.norm(dim=-1).mean().detach()
        if own_predictions:
            if stochastic:  # the next context frame is a sample, as in imagination (no gradient through it)
                with torch.no_grad():
                    frame, _ = model.step(context, context_states, actions[:, t], next_pose=pose)
            context = torch.cat([context[:, 1:], frame[:, None]], 1)
            context_states = torch.cat([context_states[:, 1:], state[:, None]], 1)
        else:
            context, context_states = frames[:, k + 1 : k + 1 + n], states[:, k + 1 : k + 1 + n]
    return {
        "frame": frame_loss / steps,
        "state": state_loss / steps,
        "copy_last": copy_loss / steps,
        "state_error": state_error / steps,
    }


def denoised_step(
    model: PixelWorldModel,
    context: Tensor,
    context_states: Tensor,
    action: Tensor,
    target: Tensor,
    next_pose: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """A stochastic model's training step: the change from the newest context frame to ``target`` (B, 3, H, W) is
    noised to a level t ~ U(0, 1) per sample (x_t = t * noise + (1 - t) * change) and denoised in one pass.
    Returns (the clean frame it estimates (B, 3, H, W) in [0, 1], the next state (B, S [+ 3])); with an object,
    ``next_pose`` (B, 3) is the data's next pose."""
    newest = context[:, -1]
    inputs = model.conditioning_inputs(context_states, action)
    level = torch.rand(newest.shape[0], device=newest.device)  # (B,)
    t = level[:, None, None, None]
    noisy = t * torch.randn_like(newest) + (1 - t) * (target - newest)
    state = model.next_state(inputs, context_states[:, -1])
    if model.cfg.has_object:
        next_pose = model.next_pose(context_states, action) if next_pose is None else next_pose
        state = torch.cat([state, next_pose], 1)
    image = model.context_inputs(context, context_states, action, next_pose)
    frame = model.predict_frame(image, newest, inputs, noisy, level).clamp(0, 1)
    return frame, state


class LitPixelWorldModel(L.LightningModule):
    """Lightning wrapper of a ``PixelWorldModel`` (the plain model is ``self.model``)."""

    def __init__(self, cfg: LitPixelWorldModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = PixelWorldModel(cfg.model)
        if cfg.model.has_object:  # trained on states before the fit (fit_object_dynamics), frozen in it
            self.model.object_dynamics.requires_grad_(False)
        # Plain JSON in the Lightning checkpoint, so resuming never unpickles objects.
        self.save_hyperparameters({"config": dataclasses.asdict(cfg)})

    def _losses(self, batch: dict[str, Tensor], own: bool, free_steps: int = 0) -> dict[str, Tensor]:
        losses = unroll_losses(
            self.model, batch, own, self.cfg.moving_weight, self.cfg.moving_threshold, free_steps
        )
        losses["loss"] = losses["frame"] + self.cfg.state_loss_weight * losses["state"]
        return losses

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        own = self.global_step >= self.cfg.teacher_forcing_fraction * self.cfg.max_steps
        losses = self._losses(batch, own, self.cfg.free_steps if own else 0)
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=batch[ACTION].shape[0]
        )
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses = self._losses(batch, own=True)  # validation always rolls out on its own predictions
        self.log_dict(
            {f"val/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=batch[ACTION].shape[0]
        )

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay
        )
        warmup, total = self.cfg.warmup_steps, self.cfg.max_steps

        def factor(step: int) -> float:  # linear warm-up, then cosine decay to 1%
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def export(self, directory: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """The plain model as a safetensors/JSON checkpoint (checkpoint.py, component ``pixel``)."""
        return save_world_model(directory, pixel=self.model, extra=extra)


__all__ = ["LitPixelWorldModel", "LitPixelWorldModelConfig", "denoised_step", "unroll_losses"]
