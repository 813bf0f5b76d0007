"""ODE samplers for the rectified flow (flow.py): integrate dx/dt = v from t = 1 (noise) to t = 0 (data).

Predicted latent frames start as Gaussian noise drawn from a ``torch.Generator``; context frames stay clean and are
passed to the model at every step. Euler uses one model call per step; Heun (2nd order) adds a corrector call on
every step except the last, where t_next = 0 would divide the step into a point (as in EDM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from world_model.flow import randn_like, shift_time

SAMPLER_METHODS = ("euler", "heun")


@dataclass
class SamplerConfig:
    """35 Euler steps with time shift 5 reproduce the DreamDojo teacher's sampling."""

    method: str = "euler"
    num_steps: int = 35
    shift: float = 5.0

    def __post_init__(self) -> None:
        if self.method not in SAMPLER_METHODS:
            raise ValueError(f"sampler method must be one of {SAMPLER_METHODS}, got {self.method!r}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.shift <= 0:
            raise ValueError(f"shift must be positive (1 = no shift), got {self.shift}")

    @property
    def num_function_evaluations(self) -> int:
        return self.num_steps if self.method == "euler" else 2 * self.num_steps - 1


class SampleOutput(NamedTuple):
    latents: Tensor  # (B, T_pred, C, h, w), predicted frames only
    states: Tensor  # (B, T_pred, chunk, S), from the last model call


def time_grid(num_steps: int, shift: float, device: torch.device | str = "cpu") -> Tensor:
    """(num_steps + 1,) decreasing times from 1 to 0: a uniform grid passed through ``shift_time``."""
    return shift_time(
        torch.linspace(1.0, 0.0, num_steps + 1, device=device, dtype=torch.float64), shift
    ).float()


class FlowSampler:
    """Samples predicted latent frames from a velocity model ``model(x, t, actions, num_context_frames)``."""

    def __init__(self, cfg: SamplerConfig) -> None:
        self.cfg = cfg

    @torch.no_grad()
    def sample(
        self,
        model: nn.Module,
        context: Tensor,
        actions: Tensor,
        num_predicted_frames: int,
        *,
        generator: torch.Generator | None = None,
    ) -> SampleOutput:
        """Generate ``num_predicted_frames`` latent frames after ``context``.

        Args:
            model: velocity model (``dit.DiT``); its train/eval mode is left to the caller.
            context: (B, T_ctx, C, h, w) clean context latents, on the model's device.
            actions: (B, T_a, A) raw actions for the whole clip (see ``dit.chunk_actions``).
            num_predicted_frames: latent frames to generate.
            generator: seeds the initial noise; a CPU generator gives the same noise on every device.
        Returns:
            SampleOutput(latents (B, T_pred, C, h, w), states (B, T_pred, chunk, S)).
        """
        if num_predicted_frames < 1:
            raise ValueError(f"num_predicted_frames must be >= 1, got {num_predicted_frames}")
        b, n = context.shape[:2]
        shape = (b, num_predicted_frames, *context.shape[2:])
        x = randn_like(context.new_empty(shape), generator)
        times = time_grid(self.cfg.num_steps, self.cfg.shift, context.device)

        def velocity(x_pred: Tensor, t: float) -> tuple[Tensor, Tensor]:
            out = model(torch.cat([context, x_pred], dim=1), context.new_full((b,), t), actions, n)
            return out.velocity[:, n:].to(x_pred.dtype), out.state[:, n:]

        states = None
        for i in range(self.cfg.num_steps):
            t, t_next = float(times[i]), float(times[i + 1])
            dt = t_next - t  # negative: we walk from noise (1) to data (0)
            v, states = velocity(x, t)
            if self.cfg.method == "heun" and t_next > 0:
                v_next, states = velocity(x + dt * v, t_next)
                v = 0.5 * (v + v_next)
            x = x + dt * v
        return SampleOutput(latents=x, states=states)
