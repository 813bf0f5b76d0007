"""DAgger data: the learner drives, the expert labels; datasets keep both and the policy stage trains on labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.keys import ACTION, DOJO_META_FILE, GT_EXPERT_ACTION, GT_POLICY, OBS_STATE
from dojo_bench.dojo.dagger import DAGGER_POLICY, LearnerWithExpert
from dojo_bench.dojo.episodes import run_episode
from dojo_bench.dojo.experts import PushExpert
from dojo_bench.dojo.recording import DataConfig
from dojo_bench.dojo.tasks import get_task
from dojo_bench.dojo.worlds import RobotLab
from dojo_bench.train.policy import BCDataset
from dojo_bench.value.value_model import read_frame_table


class ConstantLearner:
    """A learner that always proposes the same chunk of ``chunk_size`` targets."""

    chunk_size = 4

    def __init__(self, target=(100.0, 120.0)) -> None:
        self.target, self.queries = target, 0

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation):
        assert observation[OBS_STATE].shape == (1, 2)
        self.queries += 1
        return torch.tensor(self.target).repeat(1, self.chunk_size, 1)


@pytest.fixture
def world():
    return RobotLab(get_task("pusht_bench"))


def test_the_learner_drives_and_the_expert_labels(world):
    learner = ConstantLearner()
    episode = run_episode(
        world, LearnerWithExpert(learner, PushExpert(), 1.0), DAGGER_POLICY, seed=1, max_steps=9
    )
    actions, labels = episode.frames[ACTION], episode.frames[GT_EXPERT_ACTION]
    assert np.allclose(actions, [100.0, 120.0])  # every executed action is the learner's
    assert learner.queries == 3  # 10 frames, chunks of 4: queried at frames 0, 4 and 8
    expert_alone = run_episode(world, PushExpert(), "expert", seed=1, max_steps=0)
    assert np.allclose(labels[0], expert_alone.frames[ACTION][0])  # same start state, same first label
    assert not np.allclose(labels, actions)


def test_the_look_ahead_rewinds_the_world_and_plans_afresh_at_each_chunk(world):
    dagger = LearnerWithExpert(ConstantLearner(), PushExpert(), 1.0)
    world.reset(seed=4)
    dagger.reset(world, np.random.default_rng(4))
    before = world.snapshot()
    dagger.act_labelled(world, world.observation())
    assert world.snapshot() == before  # labelling does not move anything
    assert dagger.expert.plan is None
    assert len(dagger.labels) == ConstantLearner.chunk_size


def test_learner_share_zero_is_the_expert_itself(world):
    learner = ConstantLearner()
    episode = run_episode(
        world, LearnerWithExpert(learner, PushExpert(), 0.0), DAGGER_POLICY, seed=2, max_steps=8
    )
    assert learner.queries == 0
    assert np.array_equal(episode.frames[ACTION], episode.frames[GT_EXPERT_ACTION])


def test_a_learner_returning_nan_is_refused(world):
    with pytest.raises(ValueError, match="non-finite"):
        run_episode(
            world,
            LearnerWithExpert(ConstantLearner((np.nan, 1.0)), PushExpert()),
            DAGGER_POLICY,
            seed=0,
            max_steps=3,
        )


def test_dagger_run_records_labels_and_the_policy_stage_trains_on_them(dagger_run):
    out, summary = dagger_run
    assert set(summary["splits"]["train"]["success"]) == {DAGGER_POLICY}
    meta = json.loads((out / "train" / DOJO_META_FILE).read_text())
    assert meta["policies"][-1] == DAGGER_POLICY
    table = read_frame_table(out / "train", [ACTION, GT_EXPERT_ACTION, GT_POLICY])
    labels = np.stack(table[GT_EXPERT_ACTION].to_numpy())
    assert not np.allclose(np.stack(table[ACTION].to_numpy()), labels)  # the learner is not the expert
    assert set(np.stack(table[GT_POLICY].to_numpy()).reshape(-1).tolist()) == {
        meta["policies"].index(DAGGER_POLICY)
    }

    dataset = BCDataset([str(out / "train")], DAGGER_POLICY, None, chunk_size=3)
    first = dataset[0]
    assert np.allclose(first[ACTION].numpy(), labels[:3])  # the chunk target is the expert's labels
    assert len(dataset) == 16  # 2 episodes of 8 frames
    strided = BCDataset([str(out / "train")], DAGGER_POLICY, None, chunk_size=4, label_stride=4)
    assert [row for _, _, row, _ in strided.samples] == [0, 4, 8, 12]  # where look-ahead chunks start


def test_learner_needs_the_robot_kind_and_the_expert(tmp_path, learner_checkpoint):
    with pytest.raises(UsageError, match="kind=robot policy=expert"):
        DataConfig(kind="counterfactual", out=str(tmp_path), learner=str(learner_checkpoint))
    with pytest.raises(UsageError, match="kind=robot policy=expert"):
        DataConfig(kind="robot", policy="mix", out=str(tmp_path), learner=str(learner_checkpoint))
    with pytest.raises(UsageError, match="learner_share"):
        DataConfig(
            kind="robot", policy="expert", out=str(tmp_path), learner=str(learner_checkpoint), learner_share=2
        )
    with pytest.raises(DojoError, match="no such folder"):
        DataConfig(kind="robot", policy="expert", out=str(tmp_path), learner=str(tmp_path / "missing"))


def test_a_learner_for_another_action_space_is_refused(tmp_path, one_thread):
    from lerobot.configs.types import FeatureType, PolicyFeature

    from policies.loading import save_pretrained_model
    from policies.pixel_policy import make_pixel_policy

    arena = {"min": torch.zeros(3), "max": torch.full((3,), 512.0)}
    policy, pre, post = make_pixel_policy(
        {OBS_STATE: {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}, ACTION: arena},
        device="cpu",
        channels=(4,),
        hidden_dim=8,
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(3,))},
    )
    folder = save_pretrained_model(policy, pre, post, tmp_path / "wide" / "pretrained_model")
    with pytest.raises(DojoError, match="outputs 3-d actions but 2-d actions are expected"):
        DataConfig(kind="robot", policy="expert", out=str(tmp_path / "out"), learner=str(folder))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["label_chunk=0"], "label_chunk must be a positive integer"),
        (["label_chunk=4", "policy=mix"], "needs kind=robot policy=expert"),
        (["label_chunk=4", "kind=human"], "needs kind=robot policy=expert"),
    ],
)
def test_bad_label_chunk_is_refused_before_writing(tmp_path, capsys, args, message):
    from dojo_bench.cli import main

    out = tmp_path / "data"
    assert main(["data", "policy=expert", f"out={out}", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_replanning_expert_alone_records_lookahead_labels(tmp_path):
    import json

    from dojo_bench.cli import main

    out = tmp_path / "data"
    assert main(["data", "policy=expert", "label_chunk=4", "episodes=1", "max_steps=9", "workers=1",
                 "validation_fraction=0", f"out={out}"]) == 0  # fmt: skip
    meta = json.loads((out / "train" / "meta" / "dojo.json").read_text())
    assert meta["policies"][-1] == "dagger" and {e["policy"] for e in meta["episodes"]} == {"dagger"}
    info = json.loads((out / "train" / "meta" / "info.json").read_text())
    assert "gt.expert_action" in info["features"]
