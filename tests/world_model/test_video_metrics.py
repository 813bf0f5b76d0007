"""Per-horizon PSNR/SSIM and the copy-last-frame baseline against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from world_model.video_metrics import horizon_table, psnr_per_sample, select_horizons, ssim_per_sample


def test_identical_frames_cap_psnr_and_give_ssim_one():
    frames = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(psnr_per_sample(frames, frames), torch.full((2,), 100.0))
    assert torch.allclose(ssim_per_sample(frames, frames), torch.ones(2), atol=1e-6)


def test_constant_offset_gives_known_psnr():
    target = torch.full((1, 3, 16, 16), 0.5)
    # MSE = 0.1^2 = 0.01 -> PSNR = 10 log10(1 / 0.01) = 20 dB
    assert psnr_per_sample(target + 0.1, target).item() == pytest.approx(20.0, abs=1e-4)
    # uint8: offset of 51 levels = 0.2 -> 10 log10(1 / 0.04) = 13.979 dB
    a = torch.full((1, 3, 8, 8), 100, dtype=torch.uint8)
    assert psnr_per_sample(a + 51, a).item() == pytest.approx(10 * math.log10(25.0), abs=1e-4)


def test_psnr_averages_per_sample():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])  # 20 dB and 40 dB
    assert psnr_per_sample(pred, target).mean().item() == pytest.approx(30.0, abs=1e-3)


def test_select_horizons_adds_the_longest_and_drops_unreachable():
    assert select_horizons([1, 4, 12], 20) == [1, 4, 12, 20]
    assert select_horizons([1, 4, 12], 8) == [1, 4, 8]
    assert select_horizons([1, 4, 12], 12) == [1, 4, 12]
    with pytest.raises(ValueError):
        select_horizons([0], 4)


def test_horizon_table_against_hand_computed_cases():
    n, t = 2, 5
    real = torch.full((n, t, 3, 16, 16), 0.5)
    real[:, 3:] = 0.7  # from horizon 4 the scene changes by 0.2
    context = torch.full((n, 3, 16, 16), 0.5)
    predicted = real + 0.1  # a constant 0.1 error everywhere -> 20 dB at every horizon
    table = horizon_table(predicted, real, context, horizons=[1, 4, 12])
    assert list(table) == [1, 4, 5]
    for h in table:
        assert table[h]["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert table[1]["copy_psnr"] == pytest.approx(100.0)  # copying the unchanged frame is exact
    assert table[1]["copy_ssim"] == pytest.approx(1.0, abs=1e-6)
    assert table[4]["copy_psnr"] == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-3)
    assert table[5]["ssim"] <= 1.0


def test_horizon_table_rejects_bad_shapes():
    with pytest.raises(ValueError, match="predicted and real"):
        horizon_table(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 3, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="last_context"):
        horizon_table(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 2, 3, 8, 8), torch.zeros(3, 8, 8))
