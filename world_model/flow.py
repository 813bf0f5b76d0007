"""Rectified flow: the diffusion math between the network (dit.py) and the sampler (sampler.py).

Convention (DreamDojo / Cosmos): time t in [0, 1], t = 0 is data and t = 1 is noise,

    x_t = t * eps + (1 - t) * x0,        v = dx_t / dt = eps - x0.

The network predicts v. Losses are computed on predicted latent frames only: context frames are clean inputs.

Also here: training-time timestep sampling (logit-normal or uniform), the sampling time shift, and relative actions.

Sections: config, noise and time, losses, relative actions, the ``RectifiedFlow`` training objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TIMESTEP_SAMPLINGS = ("logit_normal", "uniform")


# ----------------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class FlowConfig:
    """Training objective. ``temporal_loss_weight`` 0.1 follows the DreamDojo release; set
    ``use_temporal_loss=False`` for the ablation. ``state_loss_weight`` weighs the proprio head's MSE."""

    timestep_sampling: str = "logit_normal"
    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    use_temporal_loss: bool = True
    temporal_loss_weight: float = 0.1
    state_loss_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.timestep_sampling not in TIMESTEP_SAMPLINGS:
            raise ValueError(
                f"timestep_sampling must be one of {TIMESTEP_SAMPLINGS}, got {self.timestep_sampling!r}"
            )
        if self.logit_normal_std <= 0:
            raise ValueError(f"logit_normal_std must be positive, got {self.logit_normal_std}")
        if self.temporal_loss_weight < 0 or self.state_loss_weight < 0:
            raise ValueError(
                f"loss weights must be >= 0, got temporal={self.temporal_loss_weight}, state={self.state_loss_weight}"
            )


# ----------------------------------------------------------------------------------------------------------------------
# Noise and time
# ----------------------------------------------------------------------------------------------------------------------


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise shaped like x, drawn on the generator's device then moved to x's, so one seeded CPU
    generator gives the same noise whether the model runs on CPU or CUDA."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=torch.float32).to(x.device, x.dtype)


def _broadcast_time(t: Tensor, x: Tensor) -> Tensor:
    """t (B,) or (B, T) -> broadcastable against x (B, T, C, H, W)."""
    return t.reshape(*t.shape, *([1] * (x.ndim - t.ndim)))


def add_noise(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """x_t = t * noise + (1 - t) * x0 for x0, noise (B, T, C, H, W) and t (B,) or (B, T)."""
    tb = _broadcast_time(t, x0)
    return tb * noise + (1.0 - tb) * x0


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """v = noise - x0, the constant velocity of the straight path from x0 (t = 0) to noise (t = 1)."""
    return noise - x0


def sample_timesteps(
    batch_size: int,
    cfg: FlowConfig,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Training times (B,) in (0, 1). Logit-normal (SD3) puts more weight on middle times, where the velocity is
    hardest to predict; uniform is the plain rectified-flow choice."""
    gen_device = generator.device if generator is not None else torch.device(device)
    if cfg.timestep_sampling == "uniform":
        t = torch.rand(batch_size, generator=generator, device=gen_device)
    else:
        z = torch.randn(batch_size, generator=generator, device=gen_device)
        t = torch.sigmoid(cfg.logit_normal_mean + cfg.logit_normal_std * z)
    return t.to(device)


def shift_time(t: Tensor, shift: float) -> Tensor:
    """Time shift t' = s*t / (1 + (s - 1)*t) (SD3; the teacher samples with s = 5).

    Keeps 0 and 1 fixed and, for s > 1, spends more of a uniform step grid near t = 1 (high noise), where the
    coarse layout of the frames is decided."""
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    return shift * t / (1.0 + (shift - 1.0) * t)


# ----------------------------------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------------------------------


def _check_pair(v_pred: Tensor, v_target: Tensor, num_context_frames: int) -> None:
    if v_pred.shape != v_target.shape or v_pred.ndim != 5:
        raise ValueError(
            f"v_pred and v_target must both be (B, T, C, H, W), got {tuple(v_pred.shape)} and {tuple(v_target.shape)}"
        )
    if not 0 <= num_context_frames < v_pred.shape[1]:
        raise ValueError(
            f"num_context_frames={num_context_frames} leaves no predicted frame in a clip of {v_pred.shape[1]}"
        )


def flow_matching_loss(v_pred: Tensor, v_target: Tensor, num_context_frames: int) -> Tensor:
    """MSE between predicted and target velocity over predicted frames only; inputs (B, T, C, H, W)."""
    _check_pair(v_pred, v_target, num_context_frames)
    n = num_context_frames
    return F.mse_loss(v_pred[:, n:].float(), v_target[:, n:].float())


def temporal_consistency_loss(v_pred: Tensor, v_target: Tensor, num_context_frames: int) -> Tensor:
    """Mean over i of ||(v̂_{i+1} - v̂_i) - (v_{i+1} - v_i)||², differenced along TIME (dim 1 of (B, T, C, H, W)).

    The DreamDojo release differences along dim 1 of a (B, C, T, H, W) tensor, i.e. along channels; the paper's
    formula (and this function) supervises transitions between consecutive predicted latent frames. Averaged over
    elements (not summed) so the 0.1 weight is relative to the per-element flow MSE. Zero with < 2 predicted frames.
    """
    _check_pair(v_pred, v_target, num_context_frames)
    n = num_context_frames
    if v_pred.shape[1] - n < 2:
        return v_pred.new_zeros((), dtype=torch.float32)
    pred_delta = torch.diff(v_pred[:, n:].float(), dim=1)  # (B, T_pred - 1, C, H, W)
    target_delta = torch.diff(v_target[:, n:].float(), dim=1)
    return F.mse_loss(pred_delta, target_delta)


# ----------------------------------------------------------------------------------------------------------------------
# Relative actions
# ----------------------------------------------------------------------------------------------------------------------


def make_relative_actions(actions: Tensor, states: Tensor, chunk_size: int) -> Tensor:
    """Express each chunk of actions relative to the state just before it (DreamDojo release).

    actions (B, T, A), states (B, T_s, A): action k belongs to chunk floor(k / c) (the chunk that produces latent
    frame floor(k / c) + 1) and becomes ``actions[:, k] - states[:, floor(k / c) * c]``, the state of the frame on
    which the chunk's first action is applied. With chunk_size 1 this is ``action_t - state_t``.

    Only states at chunk starts (0, c, 2c, ...) are read. In imagination those after the first are not observed: a
    rollout must fill them (e.g. from the proprio head's prediction of the previous chunk) or the model must be
    trained with ``relative_actions=False``.
    """
    if actions.ndim != 3 or states.ndim != 3 or actions.shape[0] != states.shape[0]:
        raise ValueError(
            f"actions and states must be (B, T, D), got {tuple(actions.shape)} and {tuple(states.shape)}"
        )
    if actions.shape[-1] != states.shape[-1]:
        raise ValueError(
            f"relative actions need actions and states in the same space, got action_dim={actions.shape[-1]} and "
            f"state_dim={states.shape[-1]}; disable relative actions for this dataset"
        )
    num_actions = actions.shape[1]
    starts = torch.arange(num_actions, device=actions.device) // chunk_size * chunk_size
    if num_actions and int(starts[-1]) >= states.shape[1]:
        raise ValueError(
            f"need the state at frame {int(starts[-1])} for action {num_actions - 1}, but states has only "
            f"{states.shape[1]} frames"
        )
    return actions - states[:, starts]


# ----------------------------------------------------------------------------------------------------------------------
# Training objective
# ----------------------------------------------------------------------------------------------------------------------


class RectifiedFlow:
    """Rectified-flow training objective for a velocity model ``model(x_t, t, actions, num_context_frames)``
    returning an object with ``velocity`` (B, T, C, H, W) and ``state`` (B, T, c, S) (``dit.DiTOutput``)."""

    def __init__(self, cfg: FlowConfig) -> None:
        self.cfg = cfg

    def training_losses(
        self,
        model: nn.Module,
        x0: Tensor,
        actions: Tensor,
        num_context_frames: int,
        *,
        state_target: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Noise the predicted frames of clean latents x0 (B, T, C, H, W) at one time per clip and return the losses
        ``flow``, ``temporal``, ``state`` (zero without ``state_target`` (B, T, c, S)) and their weighted ``loss``."""
        cfg = self.cfg
        n = num_context_frames
        t = sample_timesteps(x0.shape[0], cfg, generator=generator, device=x0.device)
        noise = randn_like(x0, generator)
        x_t = add_noise(x0, noise, t)
        # Context frames stay clean: the model conditions on them, it does not denoise them.
        x_t = torch.cat([x0[:, :n], x_t[:, n:]], dim=1)
        out = model(x_t, t, actions, n)
        v_target = velocity_target(x0, noise)
        losses = {"flow": flow_matching_loss(out.velocity, v_target, n)}
        zero = losses["flow"].new_zeros(())
        losses["temporal"] = (
            temporal_consistency_loss(out.velocity, v_target, n) if cfg.use_temporal_loss else zero
        )
        if state_target is not None:
            losses["state"] = F.mse_loss(out.state[:, n:].float(), state_target[:, n:].float())
        else:
            losses["state"] = zero
        losses["loss"] = (
            losses["flow"]
            + cfg.temporal_loss_weight * losses["temporal"]
            + cfg.state_loss_weight * losses["state"]
        )
        return losses
