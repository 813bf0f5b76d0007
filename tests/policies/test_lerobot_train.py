"""policies.lerobot_train: lerobot's trainer on dojo data, offline; its checkpoints load unchanged."""

from __future__ import annotations

import json

import pytest

from dojo_bench.core.errors import UsageError
from policies.lerobot_train import (
    LerobotTrainConfig,
    checkpoint_folders,
    lerobot_train_command,
    make_train_config,
)
from policies.loading import load_policy


def test_trainer_writes_a_complete_pretrained_model(tiny_lerobot_checkpoints):
    for policy_type, folder in tiny_lerobot_checkpoints.items():
        names = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json",
                "train_config.json"} <= names  # fmt: skip
        config = json.loads((folder / "config.json").read_text())
        assert config["type"] == policy_type and config["pretrained_backbone_weights"] is None
        assert set(config["input_features"]) == {"observation.image", "observation.state"}
        assert checkpoint_folders(folder.parents[2]) == [folder]
        loaded = load_policy(folder)
        assert loaded.policy_type == policy_type and loaded.chunk_size == 4 and loaded.action_dim == 2


def test_config_and_command(tiny_robot_run, tmp_path):
    out, _, _ = tiny_robot_run
    data = str(out / "train")
    cfg = LerobotTrainConfig(data=data, out=str(tmp_path / "act"), policy_type="act", steps=50)
    train_config = make_train_config(cfg)
    assert train_config.policy.type == "act" and train_config.policy.pretrained_backbone_weights is None
    assert train_config.dataset.root == str(out / "train") and train_config.dataset.video_backend == "pyav"
    assert train_config.policy.device == "cpu" and not train_config.policy.push_to_hub
    command = lerobot_train_command(cfg)
    assert command[0] == "lerobot-train" and "--policy.pretrained_backbone_weights=null" in command
    assert f"--dataset.root={out / 'train'}" in command and "--steps=50" in command


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policy_type": "vqbet"}, "policy_type must be one of"),
        ({"size": "huge"}, "size must be one of"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"data": "/nonexistent"}, "not a LeRobot dataset folder"),
    ],
)
def test_bad_settings_are_one_line(tiny_robot_run, tmp_path, changes, message):
    out, _, _ = tiny_robot_run
    settings = {"data": str(out / "train"), "out": str(tmp_path / "run"), **changes}
    with pytest.raises(UsageError, match=message):
        LerobotTrainConfig(**settings)


def test_an_existing_out_is_refused(tiny_robot_run, tmp_path):
    out, _, _ = tiny_robot_run
    with pytest.raises(UsageError, match="exists"):
        LerobotTrainConfig(data=str(out / "train"), out=str(tmp_path))
