"""Clips from recorded LeRobot datasets: the decoded-frame cache, episode boundaries, stats and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.data import ClipDataConfig, ClipDataModule, ClipDataset, cache_path


@pytest.fixture(scope="module")
def roots(tiny_robot_run, tmp_path_factory):
    """Copies of the tiny run's datasets (the frame cache is written beside them)."""
    out, _, _ = tiny_robot_run
    base = tmp_path_factory.mktemp("clips")
    for split in ("train", "validation"):
        shutil.copytree(out / split, base / split)
    return base / "train", base / "validation"


def make_config(roots, **overrides) -> ClipDataConfig:
    train, validation = roots
    settings = dict(
        train_roots=[str(train)], validation_roots=[str(validation)], clip_length=5, batch_size=2, seed=0
    )
    return ClipDataConfig(**{**settings, **overrides})


def test_clips_match_lerobot_and_stay_in_episodes(roots):
    from dojo_bench.dojo.inspect import load_dataset

    module = ClipDataModule(make_config(roots))
    part = module.train_parts[0]
    assert part.frames_path == cache_path(roots[0]) and part.frames_path.is_file()
    # Inputs are read-only: the cache lives outside the dataset.
    assert roots[0].resolve() not in part.frames_path.resolve().parents
    # every clip lies inside one episode
    for start in part.starts:
        assert any(first <= start and start + 5 <= end for first, end in part.episode_bounds)
    expected = sum(max(0, end - first - 4) for first, end in part.episode_bounds)
    assert len(part) == expected

    lerobot = load_dataset(roots[0])
    clip_index = len(part) - 1  # the last clip: it ends on the last frame of the last episode
    clip = part[clip_index]
    start = int(part.starts[clip_index])
    assert clip[OBS_IMAGE].shape == (5, 3, 96, 96) and clip[OBS_IMAGE].dtype == torch.uint8
    assert clip[ACTION].shape == (5, 2) and clip[OBS_STATE].shape == (5, 2)
    for t in (0, 4):
        item = lerobot[start + t]
        decoded = (item[OBS_IMAGE] * 255).round().to(torch.uint8)
        # same decoder (PyAV) on both sides; allow one grey level for a different colour conversion path
        assert (decoded.int() - clip[OBS_IMAGE][t].int()).abs().max() <= 1
        torch.testing.assert_close(clip[ACTION][t], item[ACTION], rtol=0, atol=0)
        torch.testing.assert_close(clip[OBS_STATE][t], item[OBS_STATE], rtol=0, atol=0)

    batch = next(iter(module.train_dataloader()))
    assert batch[OBS_IMAGE].shape == (2, 5, 3, 96, 96)
    assert len(module.val_set) > 0


def test_cache_is_reused_and_stats_come_from_data(roots):
    first = ClipDataset(roots[0], make_config(roots))
    stamp = first.frames_path.stat().st_mtime_ns
    again = ClipDataset(roots[0], make_config(roots))
    assert again.frames_path.stat().st_mtime_ns == stamp  # not decoded twice

    module = ClipDataModule(make_config(roots, relative_actions=False))
    assert module.stats["action_offset"] == pytest.approx(float(first.actions.mean()), rel=1e-5)
    assert module.stats["state_scale"] == pytest.approx(float(first.states.std()), rel=1e-5)
    relative = ClipDataModule(make_config(roots)).stats
    assert abs(relative["action_offset"]) < abs(module.stats["action_offset"])  # deltas are centred near 0
    assert (module.action_dim, module.state_dim) == (2, 2)


def test_bad_datasets_give_one_clear_error(roots, tmp_path):
    with pytest.raises(DojoError, match="not a LeRobot dataset"):
        ClipDataset(tmp_path, make_config(roots))

    no_actions = tmp_path / "video_only"
    shutil.copytree(roots[0], no_actions, ignore=shutil.ignore_patterns(".frame_cache"))
    info_path = no_actions / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    del info["features"][ACTION]
    info_path.write_text(json.dumps(info))
    with pytest.raises(DojoError, match="has no action") as error:
        ClipDataset(no_actions, make_config(roots))
    assert "\n" not in str(error.value)
    # the tokenizer needs frames only
    assert len(ClipDataset(no_actions, make_config(roots, require_actions=False))) > 0

    with pytest.raises(DojoError, match="96x96x3 but the model takes 64x64"):
        ClipDataset(roots[0], make_config(roots, image_size=64))
    with pytest.raises(DojoError, match="does not fit temporal_compression=4"):
        make_config(roots, clip_length=6)
    with pytest.raises(DojoError, match="no episode of 97 frames"):
        ClipDataModule(make_config(roots, clip_length=97))


def test_cache_holds_every_frame(roots):
    part = ClipDataset(roots[0], make_config(roots))
    frames = np.load(part.frames_path, mmap_mode="r")
    assert frames.shape == (part.episode_bounds[-1][1], 96, 96, 3)
    assert frames.reshape(len(frames), -1).max(axis=1).min() > 0  # no frame left blank
