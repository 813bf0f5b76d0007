"""Per-horizon video metrics: PSNR and SSIM of predicted vs. real frames, beside the copy-last-frame baseline.

Pure functions on tensors, no model and no I/O. Frames are (N, T, 3, H, W), uint8 in [0, 255] or float in [0, 1];
frame ``t`` of ``predicted``/``real`` is the (t + 1)-th frame after the context. "Horizon h" means the h-th
predicted frame alone (not an average over frames 1..h), so a table over horizons shows how error grows with the
distance from the last observed frame.

The copy-last-frame baseline repeats the last context frame for every horizon; a world model that ignores its
actions (or the future altogether) scores about this, so it is the floor to beat.

Conventions (caveats next to the code):
- PSNR is computed per sample (data range 1) and averaged over samples, as the training modules' ``val/psnr`` does, not from
  the mean MSE over the whole set; per-sample averaging weights every episode equally.
- Identical frames have MSE 0 and an infinite PSNR. The MSE is floored at ``MSE_FLOOR`` = 1e-10, which caps PSNR at
  100 dB: the mean stays finite and JSON-serialisable, and a perfect frame still reads as far above any real one.
- SSIM is torchmetrics' (Gaussian window 11, sigma 1.5, data range 1), averaged over samples; identical frames
  give 1.0.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

MSE_FLOOR = 1e-10  # caps PSNR at 10 * log10(1 / 1e-10) = 100 dB
DEFAULT_HORIZONS = (1, 4, 12)


def to_unit(frames: Tensor) -> Tensor:
    """uint8 [0, 255] or float [0, 1] frames -> float32 in [0, 1]."""
    if frames.dtype == torch.uint8:
        return frames.float() / 255.0
    if not torch.is_floating_point(frames):
        raise ValueError(f"frames must be uint8 or float in [0, 1], got {frames.dtype}")
    return frames.float()


def psnr_per_sample(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR (dB) per sample of (N, 3, H, W) frames in [0, 1] -> (N,), capped at 100 dB (see module docstring)."""
    mse = (to_unit(pred) - to_unit(target)).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(MSE_FLOOR))


def ssim_per_sample(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM per sample of (N, 3, H, W) frames in [0, 1] -> (N,)."""
    return structural_similarity_index_measure(
        to_unit(pred), to_unit(target), data_range=1.0, reduction="none"
    ).reshape(-1)


def select_horizons(requested: list[int] | tuple[int, ...], available: int) -> list[int]:
    """The requested horizons that ``available`` predicted frames reach, plus the longest one, sorted."""
    if available < 1:
        raise ValueError(f"need at least one predicted frame, got {available}")
    bad = [h for h in requested if int(h) < 1]
    if bad:
        raise ValueError(f"horizons must be >= 1, got {bad}")
    return sorted({int(h) for h in requested if int(h) <= available} | {available})


def horizon_table(
    predicted: Tensor,
    real: Tensor,
    last_context: Tensor,
    horizons: list[int] | tuple[int, ...] = DEFAULT_HORIZONS,
) -> dict[int, dict[str, float]]:
    """``{horizon: {psnr, ssim, copy_psnr, copy_ssim}}`` averaged over the N samples.

    predicted, real: (N, T, 3, H, W); last_context: (N, 3, H, W), the last observed frame (the copy baseline).
    Horizons beyond T are dropped and T (the longest available) is always added (``select_horizons``).
    """
    if predicted.shape != real.shape or predicted.ndim != 5:
        raise ValueError(
            f"predicted and real must both be (N, T, 3, H, W), got {tuple(predicted.shape)} and {tuple(real.shape)}"
        )
    if tuple(last_context.shape) != (real.shape[0], *real.shape[2:]):
        raise ValueError(
            f"last_context must be (N, 3, H, W) = {(real.shape[0], *real.shape[2:])}, got {tuple(last_context.shape)}"
        )
    table = {}
    for h in select_horizons(horizons, real.shape[1]):
        pred, target = predicted[:, h - 1], real[:, h - 1]
        table[h] = {
            "psnr": float(psnr_per_sample(pred, target).mean()),
            "ssim": float(ssim_per_sample(pred, target).mean()),
            "copy_psnr": float(psnr_per_sample(last_context, target).mean()),
            "copy_ssim": float(ssim_per_sample(last_context, target).mean()),
        }
    return table
