"""Recorded datasets load back with lerobot, decode, are deterministic, and resume without loss or duplicates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dojo_bench.core.errors import UsageError
from dojo_bench.core.keys import ACTION, DOJO_META_FILE, GT_GROUP, GT_POLICY, GT_SEED, OBS_IMAGE, OBS_STATE
from dojo_bench.core.run_dir import RUN_FILE
from dojo_bench.dojo.generate import run_data
from dojo_bench.dojo.inspect import inspect_dataset, load_dataset
from dojo_bench.dojo.recording import DataConfig, plan_shards, read_done, write_shard


def test_robot_datasets_load_back_with_delta_timestamps_and_decode(tiny_robot_run):
    out, config, summary = tiny_robot_run
    assert set(summary["splits"]) == {"train", "validation"}
    dataset = load_dataset(out / "train", delta_timestamps={OBS_IMAGE: [-0.1, 0.0], ACTION: [0.0, 0.1]})
    assert dataset.num_episodes == summary["splits"]["train"]["episodes"] == 2
    item = dataset[5]
    assert item[OBS_IMAGE].shape == (2, 3, 96, 96)
    assert item[ACTION].shape == (2, 2)
    assert item[OBS_STATE].shape == (2,)
    # The decoded video is a real picture: a white arena with coloured objects, not a blank frame.
    image = item[OBS_IMAGE][1]
    assert 0.5 < image.mean() < 1.0 and image.std() > 0.05
    # The state is the agent position in arena pixels and matches the gt seed's episode.
    assert 0 <= float(item[OBS_STATE].min()) and float(item[OBS_STATE].max()) <= 512
    report = inspect_dataset(out / "validation")
    assert report["episodes"] == 1 and report["decoded_frames"] == 2


def test_episode_content_is_deterministic_and_independent_of_workers(tmp_path):
    config = DataConfig(
        kind="robot",
        out=str(tmp_path / "a"),
        episodes=2,
        max_steps=6,
        seed=11,
        workers=1,
        validation_fraction=0,
    )
    other = DataConfig(
        kind="robot",
        out=str(tmp_path / "b"),
        episodes=2,
        max_steps=6,
        seed=11,
        workers=1,
        validation_fraction=0,
        shard_size=1,
    )
    run_data(config)
    run_data(other)
    a = load_dataset(tmp_path / "a" / "train")
    b = load_dataset(tmp_path / "b" / "train")
    assert a.num_frames == b.num_frames
    columns = [ACTION, OBS_STATE, GT_SEED]
    for key in columns:
        assert torch.equal(
            torch.stack([a.hf_dataset[i][key] for i in range(a.num_frames)]),
            torch.stack([b.hf_dataset[i][key] for i in range(b.num_frames)]),
        )
    different = DataConfig(
        kind="robot",
        out=str(tmp_path / "c"),
        episodes=2,
        max_steps=6,
        seed=12,
        workers=1,
        validation_fraction=0,
    )
    run_data(different)
    c = load_dataset(tmp_path / "c" / "train")
    assert c.hf_dataset[0][GT_SEED] != a.hf_dataset[0][GT_SEED]


def test_interrupted_run_resumes_without_losing_or_duplicating(tmp_path):
    out = tmp_path / "run"
    config = DataConfig(
        kind="robot",
        out=str(out),
        episodes=4,
        max_steps=5,
        seed=5,
        workers=1,
        shard_size=1,
        validation_fraction=0,
    )
    # Simulate an interruption: the run directory exists, two shards finished, one half-written.
    from dataclasses import asdict

    from dojo_bench.core.run_dir import prepare_run_dir

    prepare_run_dir(out, "data", asdict(config), overwrite=False)
    shards = plan_shards(config)
    work = out / ".work"
    first = [write_shard(config, s, work) for s in shards[:2]]
    (shards[2].path(work) / "main").mkdir(parents=True)  # debris of the shard being written when it stopped
    (shards[2].path(work) / "main" / "junk").write_text("half")
    summary = run_data(config)  # same command again: resumes
    assert summary["episodes_recorded_now"] == 2
    meta = json.loads((out / "train" / DOJO_META_FILE).read_text())
    assert [e["index"] for e in meta["episodes"]] == [0, 1, 2, 3]
    assert [e["seed"] for e in meta["episodes"][:2]] == [r["episodes"][0]["seed"] for r in first]
    dataset = load_dataset(out / "train")
    assert dataset.num_episodes == 4
    seeds = {int(dataset.hf_dataset[i][GT_SEED]) for i in range(dataset.num_frames)}
    assert len(seeds) == 4
    assert not work.exists()
    assert json.loads((out / RUN_FILE).read_text())["status"] == "finished"


def test_human_video_holds_no_actions_and_its_actions_live_apart(tmp_path):
    out = tmp_path / "human"
    run_data(
        DataConfig(kind="human", out=str(out), episodes=2, max_steps=5, workers=1, validation_fraction=0)
    )
    video = load_dataset(out / "train", delta_timestamps={OBS_IMAGE: [-0.1, 0.0]})
    actions = load_dataset(out / "train_actions")
    assert ACTION not in video.meta.features and OBS_STATE not in video.meta.features
    assert ACTION in actions.meta.features and OBS_IMAGE not in actions.meta.features
    assert video.num_frames == actions.num_frames
    assert video[3][OBS_IMAGE].shape == (2, 3, 96, 96)
    for i in range(video.num_frames):  # episode for episode, frame for frame
        assert video.hf_dataset[i][GT_SEED] == actions.hf_dataset[i][GT_SEED]


def test_counterfactual_groups_share_start_state_and_differ_in_actions(tmp_path):
    out = tmp_path / "cf"
    summary = run_data(
        DataConfig(kind="counterfactual", out=str(out), episodes=1, counterfactual_length=6, workers=1)
    )
    assert summary["splits"]["counterfactual"]["episodes"] == 3
    dataset = load_dataset(out / "counterfactual", delta_timestamps={OBS_IMAGE: [0.0]})
    assert dataset.num_episodes == 3 and dataset.num_frames == 18
    firsts = [dataset[6 * e] for e in range(3)]
    assert {int(f[GT_GROUP]) for f in firsts} == {0}
    assert {int(f[GT_POLICY]) for f in firsts} == {0, 1, 2}
    for f in firsts[1:]:  # same start state ...
        assert torch.equal(f[OBS_STATE], firsts[0][OBS_STATE])
        assert torch.allclose(f[OBS_IMAGE], firsts[0][OBS_IMAGE], atol=0.05)
    actions = np.stack([[dataset.hf_dataset[6 * e + t][ACTION].numpy() for t in range(6)] for e in range(3)])
    assert not np.allclose(actions[0], actions[1]) and not np.allclose(
        actions[0], actions[2]
    )  # ... other actions


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"episodes": 0}, "episodes must be a positive integer"),
        ({"episodes": -3}, "episodes must be a positive integer"),
        ({"task": "pushq"}, "unknown task 'pushq'"),
        ({"kind": "alien"}, "unknown kind='alien'"),
        ({"policy": "oracle"}, "unknown policy='oracle'"),
        ({"out": ""}, "out=DIR is required"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"max_steps": 0}, "max_steps must be a positive integer"),
        ({"counterfactual_length": 1}, "counterfactual_length must be an integer >= 2"),
        ({"workers": -1}, "workers must be an integer >= 0"),
        ({"policy_mix": {"oracle": 1.0}}, "policy_mix must map"),
        ({"policy_mix": {"expert": 0.0}}, "must not all be zero"),
    ],
)
def test_bad_config_is_refused_with_one_clear_line(overrides, message, tmp_path):
    values = {"kind": "robot", "out": str(tmp_path / "x"), "episodes": 1} | overrides
    with pytest.raises(UsageError, match=message):
        DataConfig(**values)
    assert not (tmp_path / "x").exists()


def test_shards_cover_every_episode_once():
    config = DataConfig(kind="robot", out="unused", episodes=23, workers=2, validation_fraction=0.2)
    shards = plan_shards(config)
    indices = [i for s in shards for i in s.indices]
    assert sorted(indices) == list(range(23)) and len(indices) == 23
    assert {s.split for s in shards} == {"train", "validation"}
    assert read_done(shards[0], __import__("pathlib").Path("/nonexistent")) is None
