"""Evaluations that start from a LeRobot dataset's episodes (`starts=`), in imagination and in the dojo."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dojo_bench.cli import main
from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import DOJO_META_FILE, OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.rollout import RealWorlds
from dojo_bench.engine.starts import DatasetStarts, DojoStarts


@pytest.fixture(scope="module")
def tiny_inputs(tiny_evaluate_run):
    code, out, _ = tiny_evaluate_run
    assert code == 0
    return out / "inputs"


def test_dataset_starts_are_the_first_frames_of_episodes(tiny_inputs):
    starts = DatasetStarts(tiny_inputs / "data" / "train")
    batch = starts([0, starts.num_episodes - 1])
    assert batch[OBS_IMAGE].shape == (2, 96, 96, 3) and batch[OBS_IMAGE].dtype == np.uint8
    assert batch[OBS_STATE].shape == (2, 2)
    first = [a for a, _ in starts.dataset.episode_bounds]
    np.testing.assert_array_equal(batch[OBS_IMAGE][1], starts.dataset.frames[first[-1]])
    with pytest.raises(DojoError, match="lower seeds="):
        starts.check_seeds([starts.num_episodes])


def test_the_dojo_resets_to_the_recorded_starts_and_refuses_other_ones(tiny_inputs, tmp_path):
    starts = DatasetStarts(tiny_inputs / "data" / "train")
    with RealWorlds(get_task("pusht_bench")) as real:
        world = DojoStarts(real, starts)
        observation = world.reset(list(range(starts.num_episodes)))
        recorded = starts(list(range(starts.num_episodes)))
        # The re-simulated start is the recorded one up to the video encoding.
        assert np.abs(observation[OBS_IMAGE].astype(int) - recorded[OBS_IMAGE]).mean() < 4

    edited = tmp_path / "edited"
    shutil.copytree(tiny_inputs / "data" / "train", edited)
    meta = json.loads((edited / DOJO_META_FILE).read_text())
    for record in meta["episodes"]:
        record["seed"] += 1  # other start states than the frames show
    (edited / DOJO_META_FILE).write_text(json.dumps(meta))
    with RealWorlds(get_task("pusht_bench")) as real:
        with pytest.raises(DojoError, match="differs from the recorded frame"):
            DojoStarts(real, DatasetStarts(edited)).reset([0, 1])


def test_evaluate_from_dataset_starts(tiny_inputs, tmp_path, capsys, one_thread):
    policies = sorted(str(p) for p in tiny_inputs.glob("policy_*/checkpoints/step-*/pretrained_model"))
    common = [
        "evaluate", f"policies=[{','.join(policies)}]", f"world_model={tiny_inputs / 'world_model' / 'release'}",
        f"value_model={tiny_inputs / 'value_model' / 'release'}", "device=cpu", "seeds=2", "max_steps=4",
        "batch_size=2", "bootstrap=20", "sampler.num_steps=2", "media_episodes=0",
    ]  # fmt: skip
    out = tmp_path / "run"
    assert main([*common, f"starts={tiny_inputs / 'data' / 'train'}", f"out={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["config"]["starts"] == str(tiny_inputs / "data" / "train")
    assert summary["n_episodes"] == len(policies) * 2 * 2

    # Too many seeds for the dataset, or a dataset the dojo cannot reset to: one line, nothing written.
    for starts, message in (
        (tiny_inputs / "data" / "train", "lower seeds="),
        (tmp_path / "nowhere", "does not exist"),
    ):
        bad = tmp_path / f"bad_{starts.name}"
        assert main([*common, "seeds=50", f"starts={starts}", f"out={bad}"]) == 1
        assert message in capsys.readouterr().err and not bad.exists()
