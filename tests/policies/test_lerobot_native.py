"""lerobot's own classes through dojo-bench: checkpoints written by lerobot's trainer load unchanged, ``act`` /
``observe`` replay lerobot's ``select_action`` loop exactly, and inputs the dojo does not give are one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.rollout import GroundTruthScorer, RealWorlds, run_episodes, to_policy_observation
from policies.lerobot_train import LerobotTrainConfig, train
from policies.loading import check_observation_features, load_policy

DOJO = {OBS_IMAGE: (3, 96, 96), OBS_STATE: (2,)}


@pytest.fixture(scope="module")
def ensembling_act(tiny_robot_run, tmp_path_factory):
    """A tiny lerobot ACT with temporal ensembling (n_action_steps 1), one training step."""
    out, _, _ = tiny_robot_run
    overrides = {"temporal_ensemble_coeff": 0.01, "n_action_steps": 1}
    config = LerobotTrainConfig(data=str(out / "train"), out=str(tmp_path_factory.mktemp("act_te") / "run"),
                                policy_type="act", size="tiny", steps=1, batch_size=4, overrides=overrides)  # fmt: skip
    return train(config, quiet=True)


class RecordingWorld:
    """A RealWorlds that keeps every executed action (B, A) per step."""

    def __init__(self, task):
        self.world = RealWorlds(task)
        self.name, self.action_dim, self.chunk_multiple = "real", 2, 1
        self.actions = []

    def reset(self, seeds):
        return self.world.reset(seeds)

    def step(self, chunk, active=None):
        self.actions.extend(np.asarray(chunk, dtype=np.float32).transpose(1, 0, 2))
        return self.world.step(chunk, active)


def lerobot_loop(path, seeds, steps, noise_seed):
    """lerobot_eval.rollout's loop on the dojo: preprocessor, select_action, postprocessor, one env step at a time."""
    loaded = load_policy(path)
    torch.manual_seed(noise_seed)  # Diffusion Policy samples: the same noise as the other loop
    policy, world, actions = loaded.policy, RealWorlds(get_task("pusht_bench")), []
    policy.reset()
    observation = world.reset(seeds)
    for _ in range(steps):
        batch = loaded.preprocessor(to_policy_observation(observation))
        action = loaded.postprocessor(policy.select_action(batch)).numpy().astype(np.float32)
        actions.append(action)
        observation, _ = world.step(action[:, None])
    return np.stack(actions)


def random_observations(count, seed):
    """``count`` single observations (batch 1) of random pixels and agent positions."""
    generator = torch.Generator().manual_seed(seed)
    return [
        {OBS_IMAGE: torch.rand(1, 3, 96, 96, generator=generator), OBS_STATE: torch.rand(1, 2, generator=generator) * 512}
        for _ in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["diffusion", "act", "act_ensembling"])
def test_rollout_replays_lerobots_select_action_loop_exactly(kind, tiny_lerobot_checkpoints, ensembling_act):
    path = ensembling_act if kind == "act_ensembling" else tiny_lerobot_checkpoints[kind]
    loaded = load_policy(path)
    assert loaded.needs_every_observation == (kind != "act")
    seeds, steps = [0, 1], 10  # crosses two chunk boundaries (n_action_steps 4)

    expected = lerobot_loop(path, seeds, steps, noise_seed=7)
    torch.manual_seed(7)
    world = RecordingWorld(get_task("pusht_bench"))
    records = run_episodes(loaded, world, seeds, max_steps=steps, scorer=GroundTruthScorer())
    assert [r.steps for r in records] == [steps, steps] and not any(r.flags for r in records)
    np.testing.assert_array_equal(np.stack(world.actions)[:steps], expected)


def test_diffusion_policy_sees_the_previous_frame(tiny_lerobot_checkpoints):
    """n_obs_steps 2: after observe(), the next prediction stacks the last two observations, not one twice."""
    loaded = load_policy(tiny_lerobot_checkpoints["diffusion"])
    frames = random_observations(5, seed=0)
    loaded.reset()
    chunk = loaded.act(frames[0])
    assert chunk.shape == (1, 4, 2)
    for frame in frames[1:4]:
        loaded.observe(frame)
    loaded.act(frames[4])
    history = loaded.policy._queues[OBS_STATE]
    stacked = torch.stack(list(history), dim=1)[0]  # (2, 2): normalised states of frames 3 and 4
    expected = torch.stack([loaded.preprocessor(dict(f))[OBS_STATE][0] for f in frames[3:5]])
    torch.testing.assert_close(stacked, expected, rtol=0, atol=0)


def test_predict_chunk_leaves_the_rollout_state_alone(tiny_lerobot_checkpoints):
    loaded = load_policy(tiny_lerobot_checkpoints["diffusion"])
    observation = {OBS_IMAGE: torch.rand(2, 3, 96, 96), OBS_STATE: torch.rand(2, 2) * 512}
    loaded.reset()
    loaded.act(observation)
    queued = [q.clone() for q in loaded.policy._queues["action"]]
    proposal = loaded.predict_chunk(observation)
    assert proposal.shape == (2, 4, 2)
    assert all(torch.equal(a, b) for a, b in zip(loaded.policy._queues["action"], queued, strict=True))


@pytest.mark.parametrize("kind", ["diffusion", "act"])
def test_lerobot_checkpoints_take_the_dojos_observations(kind, tiny_lerobot_checkpoints):
    loaded = load_policy(tiny_lerobot_checkpoints[kind])
    check_observation_features(loaded, DOJO, "the dojo")
    with pytest.raises(DojoError, match=r"reads observation.image of shape \(3, 96, 96\) but the dojo gives"):
        check_observation_features(loaded, {OBS_IMAGE: (3, 64, 64), OBS_STATE: (2,)}, "the dojo")
    with pytest.raises(DojoError, match="reads observation.state"):
        check_observation_features(loaded, {OBS_IMAGE: (3, 96, 96)}, "the dojo")


def test_a_planner_hands_its_diffusion_members_every_observation(tiny_lerobot_checkpoints):
    """In `plan`, a Diffusion Policy member proposes from the last two observations, as in lerobot's loop."""
    from planners.best_of_n import Planner, UniformScorer
    from planners.proposals import ProposalSampler

    loaded = load_policy(tiny_lerobot_checkpoints["diffusion"])
    planner = Planner("p", ProposalSampler([loaded], num_proposals=2), UniformScorer(), chunk_size=2)
    assert planner.needs_every_observation
    frames = random_observations(3, seed=1)
    planner.reset()
    planner.act(frames[0])
    planner.observe(frames[1])
    assert planner.act(frames[2]).shape == (1, 2, 2)
    history = torch.stack(list(loaded.policy._queues[OBS_STATE]), dim=1)[0]  # (2, 2) normalised states
    expected = torch.stack([loaded.preprocessor(dict(f))[OBS_STATE][0] for f in frames[1:3]])
    torch.testing.assert_close(history, expected, rtol=0, atol=0)
    assert len(loaded.policy._queues["action"]) == 0  # remembering predicts nothing and queues nothing
    records = run_episodes(
        planner, RealWorlds(get_task("pusht_bench")), [0], max_steps=4, scorer=GroundTruthScorer()
    )
    assert records[0].steps == 4 and not records[0].flags
