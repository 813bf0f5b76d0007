"""Best-of-N planners on fakes: the argmax of a hand-made value function, nothing executed that was not proposed,
proposals, the oracle's clone-and-restore, and refusal of mismatched ensemble members."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import GT_PROGRESS, OBS_IMAGE, OBS_STATE
from dojo_bench.engine.rollout import GroundTruthScorer, run_episodes, to_policy_observation
from planners.best_of_n import (
    ImaginationScorer,
    OracleScorer,
    Planner,
    UniformScorer,
    from_policy_observation,
)
from planners.cem import CEMConfig, CEMRefiner
from planners.proposals import ProposalSampler

CHUNK = 4


class FakeMember:
    """A deterministic LoadedPolicy-like member: every action is (x, agent y)."""

    stochastic = False

    def __init__(self, name: str, x: float, action_dim: int = 2, chunk_size: int = CHUNK) -> None:
        self.name, self.x, self.action_dim, self.chunk_size = name, x, action_dim, chunk_size
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def predict_chunk(self, observation):
        b = observation[OBS_STATE].shape[0]
        chunk = torch.zeros(b, self.chunk_size, self.action_dim)
        chunk[..., 0] = self.x
        chunk[..., 1] = observation[OBS_STATE][:, None, 1]
        return chunk


class FakeWorldModel:
    """ImaginedEnv's face: every imagined frame is uniformly grey at the level of its action's x (clipped)."""

    action_dim = 2
    chunk_size = CHUNK

    def __init__(self) -> None:
        self.steps: list[tuple[int, ...]] = []

    def reset(self, observations, seed=None):
        self.b = len(observations[OBS_STATE])
        return observations

    def step(self, actions):
        actions = np.asarray(actions)
        assert actions.shape[0] == self.b and actions.shape[1] % self.chunk_size == 0
        self.steps.append(actions.shape)
        level = np.clip(actions[..., 0], 0, 255).astype(np.uint8)  # (B, K)
        frames = np.broadcast_to(level[:, :, None, None, None], (*level.shape, 96, 96, 3)).copy()
        return {OBS_IMAGE: frames[:, -1], OBS_STATE: actions[:, -1]}, {"frames": frames}


class FakeRealWorld:
    """The real world's face, recording every executed chunk; never successful."""

    name = "real"
    action_dim = 2
    chunk_multiple = 1

    def __init__(self) -> None:
        self.executed: list[np.ndarray] = []

    def reset(self, seeds):
        self.state = np.array([[float(s), 100.0 + s] for s in seeds], dtype=np.float32)
        return self._obs()

    def step(self, chunk, active=None):
        chunk = np.asarray(chunk)
        self.executed.append(chunk.copy())
        self.state = chunk[:, -1].astype(np.float32)
        b, k = chunk.shape[:2]
        return self._obs(), {"progress": np.zeros((b, k)), "success": np.zeros((b, k), bool)}

    def _obs(self):
        image = np.zeros((len(self.state), 96, 96, 3), dtype=np.uint8)
        return {OBS_IMAGE: image, OBS_STATE: self.state.copy()}


def brightness(frames):
    return np.asarray(frames).reshape(len(frames), -1).mean(axis=1) / 255.0


def policy_observation(b: int = 2):
    state = np.stack([np.arange(b, dtype=np.float32), 100 + np.arange(b, dtype=np.float32)], axis=1)
    return to_policy_observation({OBS_IMAGE: np.zeros((b, 96, 96, 3), np.uint8), OBS_STATE: state})


def members():
    return [FakeMember("a", 50.0), FakeMember("b", 200.0), FakeMember("c", 120.0)]


# ----------------------------------------------------------------------------------------------------------------------
# Selection by imagination
# ----------------------------------------------------------------------------------------------------------------------


def test_best_of_n_executes_the_argmax_of_a_hand_made_value_function():
    env = FakeWorldModel()
    sampler = ProposalSampler(members(), num_proposals=3)
    planner = Planner("best_of_n", sampler, ImaginationScorer(env, brightness), CHUNK, keep_decisions=True)
    chunk = planner.predict_chunk(policy_observation(2))
    assert chunk.shape == (2, CHUNK, 2)
    assert (chunk[..., 0] == 200).all()  # member b: the brightest imagined frames
    assert env.steps == [(6, CHUNK, 2)]  # all B * N proposals imagined in one batched call
    np.testing.assert_array_equal(planner.decisions[0].chosen, [1, 1])

    # The value function decides, not the proposal order: prefer dark frames.
    dark = Planner("dark", sampler, ImaginationScorer(FakeWorldModel(), lambda f: 1 - brightness(f)), CHUNK)
    assert (dark.predict_chunk(policy_observation(2))[..., 0] == 50).all()


def test_best_of_n_picks_the_best_noisy_proposal_by_the_value_of_the_last_frame():
    sampler = ProposalSampler(members(), num_proposals=9, noise_std=40.0)
    env = FakeWorldModel()
    planner = Planner("best_of_n", sampler, ImaginationScorer(env, brightness, max_batch=5), CHUNK, seed=3,
                      keep_decisions=True)  # fmt: skip
    chunk = planner.predict_chunk(policy_observation(3))
    proposals = planner.decisions[0].candidates  # (B, N, K, A)
    # The hand-made value of a proposal: its last action's x, clipped and truncated to a uint8 grey level.
    values = np.clip(proposals[:, :, -1, 0], 0, 255).astype(np.uint8)
    expected = values.argmax(axis=1)
    np.testing.assert_array_equal(planner.decisions[0].chosen, expected)
    np.testing.assert_array_equal(chunk, proposals[np.arange(3), expected])
    assert [s[0] for s in env.steps] == [5, 5, 5, 5, 5, 2]  # 27 rows in parts of at most max_batch


def test_max_reduction_scores_the_best_frame_of_the_chunk():
    class Dip(FakeMember):
        def predict_chunk(self, observation):
            chunk = super().predict_chunk(observation)
            chunk[:, :-1, 0] = 250.0  # bright on the way, dark at the end
            return chunk

    sampler = ProposalSampler([FakeMember("flat", 100.0), Dip("dip", 10.0)], num_proposals=2)
    last = Planner("last", sampler, ImaginationScorer(FakeWorldModel(), brightness, reduce="last"), CHUNK)
    best = Planner("max", sampler, ImaginationScorer(FakeWorldModel(), brightness, reduce="max"), CHUNK)
    assert (last.predict_chunk(policy_observation(1))[0, -1, 0]) == 100
    assert (best.predict_chunk(policy_observation(1))[0, -1, 0]) == 10
    with pytest.raises(DojoError, match="unknown score reduction"):
        ImaginationScorer(FakeWorldModel(), brightness, reduce="mean")


# ----------------------------------------------------------------------------------------------------------------------
# Nothing is executed that was not proposed (or, for CEM, evaluated)
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["uniform", "world_model", "cem"])
def test_nothing_is_executed_that_was_not_proposed(kind):
    sampler = ProposalSampler(members(), num_proposals=5, noise_std=25.0)
    proposed = []
    propose = sampler.propose

    def recording_propose(observation, seed=0):
        out = propose(observation, seed=seed)
        proposed.append(out.copy())
        return out

    sampler.propose = recording_propose
    imagination = ImaginationScorer(FakeWorldModel(), brightness)
    refiner = CEMRefiner(imagination, CEMConfig(iterations=2, samples=3, elites=2)) if kind == "cem" else None
    scorer = UniformScorer(seed=1) if kind == "uniform" else imagination
    planner = Planner(kind, sampler, scorer, CHUNK, refiner=refiner, keep_decisions=True)
    real = FakeRealWorld()
    planner.episode_seeds = [0, 1, 2]
    records = run_episodes(planner, real, [0, 1, 2], max_steps=10, scorer=GroundTruthScorer())

    assert [r.steps for r in records] == [10, 10, 10]
    assert len(real.executed) == len(proposed) == len(planner.decisions) == 3  # decisions at t = 0, 4, 8
    for executed, proposals, decision in zip(real.executed, proposed, planner.decisions, strict=True):
        k = executed.shape[1]  # 4, 4, then 2 (the engine cuts the last chunk at max_steps)
        pool = proposals if kind != "cem" else decision.candidates
        if kind == "cem":  # CEM evaluates the proposals first, then its own samples
            np.testing.assert_array_equal(decision.candidates[:, : proposals.shape[1]], proposals)
            assert decision.candidates.shape[1] == 5 + 2 * 3
        for i in range(3):
            matches = [j for j in range(pool.shape[1]) if np.array_equal(executed[i], pool[i, j, :k])]
            assert matches, f"env {i} executed a chunk that was never proposed"
            assert decision.chosen[i] in matches
    if kind != "uniform":  # the chosen candidate is the best-scored one
        for decision in planner.decisions:
            np.testing.assert_array_equal(decision.chosen, decision.scores.argmax(axis=1))


def test_cem_never_scores_below_best_of_n_on_the_same_proposals():
    sampler = ProposalSampler(members(), num_proposals=3)
    imagination = ImaginationScorer(FakeWorldModel(), brightness)
    best = Planner("best_of_n", sampler, imagination, CHUNK, keep_decisions=True)
    cem = Planner("cem", sampler, imagination, CHUNK, keep_decisions=True,
                  refiner=CEMRefiner(imagination, CEMConfig(iterations=3, samples=8, elites=2, min_std=30.0)))  # fmt: skip
    observation = policy_observation(2)
    best.predict_chunk(observation)
    cem.predict_chunk(observation)
    best_score = best.decisions[0].scores.max(axis=1)
    cem_score = cem.decisions[0].scores.max(axis=1)
    assert (cem_score >= best_score).all() and (cem_score > best_score).any()  # brighter than 200 exists
    with pytest.raises(DojoError, match="cem samples must be a positive integer"):
        CEMConfig(samples=0)


def test_uniform_choice_is_reproducible_and_uses_every_proposal():
    sampler = ProposalSampler(members(), num_proposals=3)
    chosen = []
    for decision in range(60):
        planner = Planner("uniform", sampler, UniformScorer(seed=0), CHUNK, keep_decisions=True)
        planner.episode_seeds = [decision]
        planner.predict_chunk(policy_observation(1))
        again = Planner("uniform", sampler, UniformScorer(seed=0), CHUNK, keep_decisions=True)
        again.episode_seeds = [decision]
        again.predict_chunk(policy_observation(1))
        assert planner.decisions[0].chosen[0] == again.decisions[0].chosen[0]
        chosen.append(int(planner.decisions[0].chosen[0]))
    assert set(chosen) == {0, 1, 2}


# ----------------------------------------------------------------------------------------------------------------------
# Proposals
# ----------------------------------------------------------------------------------------------------------------------


def test_proposals_interleave_members_clean_first_then_seeded_noise():
    group = members()[:2]
    sampler = ProposalSampler(group, num_proposals=5, noise_std=10.0)
    assert sampler.proposal_members == [0, 1, 0, 1, 0]
    observation = policy_observation(2)
    proposals = sampler.propose(observation, seed=7)
    assert proposals.shape == (2, 5, CHUNK, 2) and proposals.dtype == np.float32
    np.testing.assert_array_equal(proposals[:, 0], group[0].predict_chunk(observation).numpy())
    np.testing.assert_array_equal(proposals[:, 1], group[1].predict_chunk(observation).numpy())
    assert not np.array_equal(proposals[:, 2], proposals[:, 0])  # a noisy copy of member 0
    assert abs(float((proposals[:, 2] - proposals[:, 0]).std()) - 10.0) < 4.0
    np.testing.assert_array_equal(proposals, sampler.propose(observation, seed=7))
    assert not np.array_equal(proposals, sampler.propose(observation, seed=8))
    one = ProposalSampler(group, num_proposals=1).propose(observation, seed=7)
    np.testing.assert_array_equal(one[:, 0], proposals[:, 0])


def test_mismatched_ensemble_members_are_refused_with_one_line():
    wide = FakeMember("wide", 1.0, action_dim=3)
    with pytest.raises(
        DojoError, match=r"^ensemble members disagree on action dimension: a has 2, wide has 3$"
    ):
        ProposalSampler([FakeMember("a", 1.0), wide], num_proposals=4)
    short = FakeMember("short", 1.0, chunk_size=2)
    with pytest.raises(DojoError, match=r"^ensemble members disagree on chunk size: a has 4, short has 2$"):
        ProposalSampler([FakeMember("a", 1.0), short], num_proposals=4)
    with pytest.raises(DojoError, match="num_proposals"):
        ProposalSampler([FakeMember("a", 1.0)], num_proposals=0)
    with pytest.raises(DojoError, match="chunk_size 8 must be between 1 and the policies' 4"):
        Planner("p", ProposalSampler([FakeMember("a", 1.0)], 1), UniformScorer(), chunk_size=8)


def test_from_policy_observation_inverts_to_policy_observation():
    rng = np.random.default_rng(0)
    real = {
        OBS_IMAGE: rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8),
        OBS_STATE: rng.uniform(0, 512, (2, 2)).astype(np.float32),
    }
    back = from_policy_observation(to_policy_observation(real))
    np.testing.assert_array_equal(back[OBS_IMAGE], real[OBS_IMAGE])
    np.testing.assert_array_equal(back[OBS_STATE], real[OBS_STATE])


# ----------------------------------------------------------------------------------------------------------------------
# The oracle
# ----------------------------------------------------------------------------------------------------------------------


def test_oracle_scores_by_the_cloned_simulator_and_restores_it():
    from dojo_bench.dojo.tasks import get_task
    from dojo_bench.dojo.worlds import RobotLab
    from dojo_bench.engine.rollout import RealWorlds

    task = get_task("pusht_bench")
    real = RealWorlds(task)
    observation = real.reset([0, 1])
    rng = np.random.default_rng(0)
    candidates = rng.uniform(100, 400, size=(2, 3, CHUNK, 2)).astype(np.float32)
    candidates[1, 2, 0, 0] = np.nan  # never executed, never chosen
    before = [env.snapshot() for env in real.local.envs]
    scores = OracleScorer(real).score(observation, candidates, seed=0)
    assert [env.snapshot() for env in real.local.envs] == before  # every look-ahead was undone
    assert scores[1, 2] == -np.inf
    for i, seed in enumerate([0, 1]):
        for j in range(3):
            if not np.isfinite(candidates[i, j]).all():
                continue
            fresh = RobotLab(task)  # the same start, simulated independently
            fresh.reset(seed=seed)
            for action in candidates[i, j]:
                fresh.act(action)
            assert scores[i, j] == pytest.approx(float(fresh.ground_truth()[GT_PROGRESS][0]), abs=1e-6)
    with pytest.raises(DojoError, match="workers=0"):
        OracleScorer(RealWorlds(task, workers=1))
