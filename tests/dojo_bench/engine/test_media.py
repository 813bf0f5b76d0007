"""Media capture: per-step curves and frame strips kept for reports, on fakes and in the tiny evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from dojo_fakes import ScriptedPolicy, brightness, imagined

from dojo_bench.engine.media import (
    CURVES_DIR,
    MediaRecorder,
    media_path,
    policy_slug,
    write_curves,
)
from dojo_bench.engine.results import ResultStore, run_missing
from dojo_bench.engine.rollout import ValueScorer, run_episodes


def test_recording_never_changes_an_episode():
    scorer = ValueScorer(brightness, 0.5)
    plain = run_episodes(ScriptedPolicy(), imagined(), [3, 4], max_steps=40, scorer=scorer)
    calls = []
    recorded = run_episodes(
        ScriptedPolicy(), imagined(), [3, 4], max_steps=40, scorer=scorer,
        recorder=lambda seeds, t, info, progress, valid: calls.append((t, valid.copy())),
    )  # fmt: skip
    assert [r.row() for r in plain] == [r.row() for r in recorded]
    assert [t for t, _ in calls] == [0, 8]
    # Success at the 13th action: frames after it (in the second chunk of 8) are not the episode's.
    assert calls[1][1].sum(axis=1).tolist() == [5, 5]


def test_recorder_writes_curves_and_strips_of_media_seeds_only(tmp_path):
    store = ResultStore(tmp_path)
    recorder = MediaRecorder(tmp_path, media_seeds=[3], frame_stride=2)
    run_missing(store, {"p": ScriptedPolicy()}, imagined(), [3, 4], 40, ValueScorer(brightness, 0.5),
                batch_size=2, on_batch=recorder.flush, recorder=recorder)  # fmt: skip
    curves = pd.read_parquet(write_curves(tmp_path))
    assert curves.groupby("seed").size().to_dict() == {3: 13, 4: 13}
    assert curves["step"].tolist()[:13] == list(range(1, 14))
    assert np.allclose(
        curves["progress"], curves["value_progress"]
    )  # imagination: the value model is the scorer
    assert np.isclose(curves["progress"].max(), store.read()["max_progress"].max())
    strip = np.load(media_path(tmp_path, "p", "imagined", 3))
    assert strip["frames"].dtype == np.uint8 and strip["frames"].shape == (7, 96, 96, 3)
    assert strip["steps"].tolist() == [2, 4, 6, 8, 10, 12, 13]  # every 2nd frame and the deciding last one
    assert not media_path(tmp_path, "p", "imagined", 4).exists()


def test_curves_keep_the_last_part_of_an_episode_written_twice(tmp_path):
    recorder = MediaRecorder(tmp_path)
    world, scorer = imagined(), ValueScorer(brightness, 0.5)
    for max_steps in (8, 40):  # a first attempt, then the resumed one
        records = run_episodes(ScriptedPolicy(), world, [1], max_steps, scorer, recorder=recorder)
        recorder.flush(records)
    assert len(list((tmp_path / CURVES_DIR).glob("part-*.parquet"))) == 2
    curves = pd.read_parquet(write_curves(tmp_path))
    assert curves["step"].tolist() == list(range(1, 14))


@pytest.mark.parametrize("name", ["step-4", "a/b c", "<script>alert(1)</script>", "../../etc", "", "x" * 300])
def test_policy_slugs_are_safe_file_names(name):
    slug = policy_slug(name)
    assert slug and len(slug) <= 49 and all(c.isalnum() or c in "._-" for c in slug)
    assert not slug.startswith(".") and policy_slug(name + "!") != slug


@pytest.mark.usefixtures("one_thread")
def test_tiny_evaluation_keeps_curves_and_strips(tiny_evaluate_run):
    code, out, _ = tiny_evaluate_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    media = summary["media"]
    assert media["curves"] == "curves.parquet" and media["media_seeds"] == [0, 1]
    episodes = pd.read_parquet(out / "episodes.parquet")
    curves = pd.read_parquet(out / "curves.parquet")
    assert list(curves.columns) == ["policy", "seed", "world", "step", "progress", "value_progress"]
    for row in episodes.itertuples():
        mine = curves[(curves.policy == row.policy) & (curves.seed == row.seed) & (curves.world == row.world)]
        assert len(mine) == row.steps and mine["progress"].max() == pytest.approx(row.max_progress)
    for policy, files in media["files"].items():
        assert len(files) == 4  # 2 seeds x 2 worlds
        for world in ("real", "imagined"):
            strip = np.load(media_path(out, policy, world, 0))
            assert strip["frames"].dtype == np.uint8 and strip["frames"].ndim == 4
            assert len(strip["frames"]) == len(strip["steps"]) == len(strip["value_progress"])
            assert np.isfinite(strip["value_progress"]).all()  # the value model also scored the real frames
