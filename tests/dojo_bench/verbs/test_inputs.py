"""Labels that evaluate and plan give the policy checkpoints they are handed."""

from __future__ import annotations

import pytest

from dojo_bench.core.errors import UsageError
from dojo_bench.verbs.inputs import policy_labels


def test_a_folder_is_labelled_by_its_name_and_pretrained_model_by_its_parent(tmp_path):
    labels = policy_labels(
        [str(tmp_path / "zoo" / "round0-step04000"), str(tmp_path / "mine" / "pretrained_model")]
    )
    assert labels == ["round0-step04000", "mine"]


def test_lerobot_train_checkpoints_are_labelled_run_and_step(tmp_path):
    act = tmp_path / "lerobot_act" / "checkpoints" / "003000" / "pretrained_model"
    dp = tmp_path / "lerobot_dp" / "checkpoints" / "003000" / "pretrained_model"
    assert policy_labels([str(act), str(dp)]) == ["lerobot_act/003000", "lerobot_dp/003000"]


def test_clashing_names_take_parent_folders_until_unique(tmp_path):
    labels = policy_labels([str(tmp_path / "a" / "run" / "x"), str(tmp_path / "b" / "run" / "x")])
    assert labels == ["a/run/x", "b/run/x"]


def test_the_same_checkpoint_twice_is_refused(tmp_path):
    with pytest.raises(UsageError, match="the same checkpoint twice"):
        policy_labels([str(tmp_path / "p"), str(tmp_path / "p")])
