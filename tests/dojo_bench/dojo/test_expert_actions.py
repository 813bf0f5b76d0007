"""A DAgger dataset rewritten so that ``action`` is the expert's label (what lerobot-train reads)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from dojo_bench.core.errors import UsageError
from dojo_bench.core.keys import ACTION, GT_EXPERT_ACTION, OBS_IMAGE
from dojo_bench.dojo.expert_actions import main
from dojo_bench.value.value_model import read_frame_table


@pytest.fixture
def dagger_dataset(dagger_run):
    return dagger_run[0] / "train"


def test_action_becomes_the_label_everywhere_and_the_rest_is_unchanged(dagger_dataset, tmp_path, capsys):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = tmp_path / "expert"
    assert main([str(dagger_dataset), str(out)]) == 0
    assert "action is now the expert's label" in capsys.readouterr().out

    before = read_frame_table(dagger_dataset, [ACTION, GT_EXPERT_ACTION])
    after = read_frame_table(out, [ACTION, GT_EXPERT_ACTION])
    labels = np.stack(before[GT_EXPERT_ACTION].to_numpy())
    assert not np.allclose(np.stack(before[ACTION].to_numpy()), labels)  # the learner executed some chunks
    assert np.array_equal(np.stack(after[ACTION].to_numpy()), labels)
    assert np.array_equal(np.stack(after[GT_EXPERT_ACTION].to_numpy()), labels)

    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert stats[ACTION] == stats[GT_EXPERT_ACTION]
    dataset = LeRobotDataset("dojo/expert", root=out, video_backend="pyav")
    original = LeRobotDataset("dojo/dagger", root=dagger_dataset, video_backend="pyav")
    assert np.allclose(dataset.meta.stats[ACTION]["mean"], labels.mean(axis=0), atol=1e-3)
    episodes = pq.read_table(next((out / "meta" / "episodes").rglob("*.parquet"))).to_pydict()
    assert np.allclose(episodes[f"stats/{ACTION}/mean"][0], labels[:8].mean(axis=0), atol=1e-3)
    frame, source = dataset[3], original[3]
    assert np.allclose(frame[ACTION].numpy(), labels[3])
    assert np.array_equal(frame[OBS_IMAGE].numpy(), source[OBS_IMAGE].numpy())  # videos carried over


def test_images_hold_the_video_pixels_and_the_source_is_left_alone(dagger_dataset, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    info_before = (dagger_dataset / "meta" / "info.json").read_text()
    out = tmp_path / "images"
    assert main([str(dagger_dataset), str(out), "--images"]) == 0
    assert (dagger_dataset / "meta" / "info.json").read_text() == info_before
    assert not (out / "videos").exists()
    dataset = LeRobotDataset("dojo/images", root=out, video_backend="pyav")
    original = LeRobotDataset("dojo/dagger", root=dagger_dataset, video_backend="pyav")
    assert dataset.meta.video_keys == [] and dataset.meta.camera_keys == [OBS_IMAGE]
    assert original.meta.video_keys == [OBS_IMAGE]
    for index in (0, 7, 8, len(dataset) - 1):  # both episodes' first and last frames
        frame, source = dataset[index], original[index]
        assert frame[OBS_IMAGE].shape == (3, 96, 96)
        assert torch.equal(frame[OBS_IMAGE], source[OBS_IMAGE])
        assert torch.equal(frame[ACTION], source[GT_EXPERT_ACTION])


def test_refusals_are_one_line(dagger_dataset, tiny_robot_run, tmp_path, capsys):
    unlabelled = tiny_robot_run[0] / "train"
    assert main([str(unlabelled), str(tmp_path / "a")]) == 2
    assert "has no gt.expert_action labels: record it with learner=PATH" in capsys.readouterr().err
    assert main([str(tmp_path), str(tmp_path / "b")]) == 2
    assert "is not a LeRobot dataset" in capsys.readouterr().err
    assert main([str(dagger_dataset), str(dagger_dataset)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_lerobot_training_refuses_executed_learner_actions_and_takes_the_converted_copy(
    dagger_dataset, tmp_path
):
    from policies.lerobot_train import LerobotTrainConfig, executed_share

    assert executed_share(dagger_dataset) > 0  # learner_share 1: the learner drove every chunk
    with pytest.raises(
        UsageError, match=r"executed another action than the expert's label .* dojo_bench.dojo.expert"
    ):
        LerobotTrainConfig(data=str(dagger_dataset), out=str(tmp_path / "run"), policy_type="act")
    assert main([str(dagger_dataset), str(tmp_path / "expert")]) == 0
    assert executed_share(tmp_path / "expert") == 0
    LerobotTrainConfig(data=str(tmp_path / "expert"), out=str(tmp_path / "run"), policy_type="act")
