"""The value model: shapes and layouts, exact save/load, bad checkpoints, and that a tiny fit learns."""

from __future__ import annotations

import json

import pytest
import torch

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import GT_PROGRESS, GT_SUCCESS, OBS_IMAGE
from dojo_bench.value.value_model import (
    LitValueModel,
    ValueModel,
    ValueModelConfig,
    ValueModelError,
    load_value_model,
    save_value_model,
    value_losses,
)

TINY = {"channels": (4, 8, 8, 8), "hidden_dim": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(seed: int = 0, **overrides) -> ValueModel:
    torch.manual_seed(seed)
    return ValueModel(ValueModelConfig(**{**TINY, **overrides}))


def square_frames(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 frames (n, 3, 96, 96) with a white square whose x position is the progress; success = progress > 0.7."""
    generator = torch.Generator().manual_seed(seed)
    progress = torch.rand(n, generator=generator)
    frames = torch.zeros(n, 3, 96, 96, dtype=torch.uint8)
    for i, p in enumerate(progress):
        x = int(p * 80)
        frames[i, :, 40:56, x : x + 16] = 255
    return frames, progress, (progress > 0.7).float()


def test_score_shapes_ranges_and_layouts():
    model = tiny_model()
    frames, _, _ = square_frames(5)
    progress, success = model.score(frames)
    assert progress.shape == success.shape == (5,)
    assert ((progress >= 0) & (progress <= 1)).all() and ((success >= 0) & (success <= 1)).all()
    # channels-last uint8 (the env's layout) and float in [0, 1] give the same scores
    last, _ = model.score(frames.permute(0, 2, 3, 1).numpy())
    unit, _ = model.score(frames.float() / 255)
    torch.testing.assert_close(last, progress, rtol=0, atol=0)
    torch.testing.assert_close(unit, progress)
    with pytest.raises(ValueModelError, match="64x64"):
        model.score(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueModelError, match="3 colour channels"):
        model.score(torch.zeros(2, 4, 96, 97))


def test_config_is_validated():
    with pytest.raises(ValueError, match="channels"):
        ValueModelConfig(channels=())
    with pytest.raises(ValueError, match="success_pos_weight"):
        ValueModelConfig(success_pos_weight=0)


def test_save_load_round_trip_is_exact(tmp_path):
    model = tiny_model(seed=3)
    folder = save_value_model(tmp_path / "vm", model, extra={"training": {"steps": 1}})
    loaded = load_value_model(folder)
    assert loaded.cfg == model.cfg
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    frames, _, _ = square_frames(4)
    for a, b in zip(model.score(frames), loaded.score(frames), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert json.loads((folder / "config.json").read_text())["extra"]["training"]["steps"] == 1


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    folder = save_value_model(tmp_path / "vm", tiny_model())
    with pytest.raises(ValueModelError, match="no such folder"):
        load_value_model(tmp_path / "missing")

    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueModelError, match="corrupt"):
        load_value_model(folder)
    weights.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(ValueModelError, match="corrupt"):
        load_value_model(folder)
    weights.write_bytes(good)

    config = folder / "config.json"
    record = json.loads(config.read_text())
    record["value_model"]["hidden_dim"] = 32  # weights no longer fit
    config.write_text(json.dumps(record))
    with pytest.raises(ValueModelError, match="does not fit"):
        load_value_model(folder)
    config.write_text("{not json")
    with pytest.raises(ValueModelError, match="not valid JSON"):
        load_value_model(folder)
    config.unlink()
    with pytest.raises(DojoError, match="config.json is missing"):
        load_value_model(folder)


def test_tiny_fit_beats_predicting_the_mean():
    frames, progress, success = square_frames(64, seed=1)
    test_frames, test_progress, _ = square_frames(32, seed=2)
    model = tiny_model(seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    unit = frames.float() / 255
    first = None
    for _ in range(60):
        loss = value_losses(model, unit, progress, success)["loss"]
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * first
    predicted, _ = model.score(test_frames)
    mse = float(((predicted - test_progress) ** 2).mean())
    baseline = float(((progress.mean() - test_progress) ** 2).mean())
    assert mse < 0.5 * baseline, (mse, baseline)


def test_lightning_module_fast_dev_run(tmp_path):
    import lightning as L
    from torch.utils.data import DataLoader

    frames, progress, success = square_frames(8)
    items = [
        {OBS_IMAGE: f, GT_PROGRESS: p, GT_SUCCESS: s}
        for f, p, s in zip(frames, progress, success, strict=True)
    ]
    batches = DataLoader(items, batch_size=4)  # FrameDataset's item layout, collated
    module = LitValueModel(ValueModelConfig(**TINY))
    trainer = L.Trainer(
        accelerator="cpu",
        fast_dev_run=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, train_dataloaders=batches, val_dataloaders=batches)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    loaded = load_value_model(module.export(tmp_path / "release"))
    torch.testing.assert_close(loaded.score(frames)[0], module.model.score(frames)[0], rtol=0, atol=0)
