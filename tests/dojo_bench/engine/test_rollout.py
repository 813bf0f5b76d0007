"""The rollout engine on tiny fakes (scripted policies, a fake imagined env) and one small real RobotLab batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dojo_fakes import FakeImaginedEnv, ScriptedPolicy, brightness, fake_initial, imagined

from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.engine.rollout import (
    FLAG_NONFINITE_ACTION,
    GroundTruthScorer,
    ImaginedWorld,
    RealWorlds,
    ValueScorer,
    run_episodes,
    to_policy_observation,
)


def test_imagined_success_ends_episode_at_the_crossing_step():
    world = imagined()
    records = run_episodes(
        ScriptedPolicy(), world, seeds=[3, 4], max_steps=40, scorer=ValueScorer(brightness, 0.5)
    )
    for record, seed in zip(records, [3, 4], strict=True):
        assert (record.policy, record.seed, record.world) == ("scripted", seed, "imagined")
        assert record.success and record.flags == []
        assert record.steps == 13  # brightness 130 >= 127.5 first after the 13th action
        assert record.max_progress == pytest.approx(130 / 255)
    assert sum(chunk.shape[1] for chunk in world.env.received) == 16  # two policy chunks of 8


def test_horizon_not_a_multiple_of_the_world_chunk_counts_only_max_steps():
    records = run_episodes(
        ScriptedPolicy(), imagined(), seeds=[0], max_steps=10, scorer=ValueScorer(brightness, 1.0)
    )
    assert not records[0].success and records[0].steps == 10
    assert records[0].max_progress == pytest.approx(100 / 255)


def test_nan_actions_flag_and_stop_only_that_episode():
    def script(call, obs):
        chunk = obs[OBS_STATE][:, None].repeat(1, 8, 1)
        if call == 1:
            chunk[1, 3, 0] = float("nan")
        return chunk

    world = imagined()
    records = run_episodes(
        ScriptedPolicy(script=script), world, [0, 1], max_steps=24, scorer=ValueScorer(brightness, 1.0)
    )
    assert records[0].flags == [] and records[0].steps == 24
    assert records[1].flags == [FLAG_NONFINITE_ACTION]
    assert not records[1].success and records[1].steps == 8  # stopped after its first (finite) chunk
    held = world.env.received[1][1]
    assert np.isfinite(held).all()  # the flagged episode was held in place, not fed the NaN


def test_incompatible_policies_are_refused():
    with pytest.raises(DojoError, match="multiples of 4"):
        run_episodes(ScriptedPolicy(chunk_size=2), imagined(), [0], 8, ValueScorer(brightness, 0.5))
    wide = ScriptedPolicy()
    wide.action_dim = 3
    with pytest.raises(DojoError, match="3-d actions"):
        run_episodes(wide, imagined(), [0], 8, ValueScorer(brightness, 0.5))
    with pytest.raises(DojoError, match="shape"):
        bad = ScriptedPolicy(script=lambda call, obs: torch.zeros(1, 8, 2))
        run_episodes(bad, imagined(), [0, 1], 8, ValueScorer(brightness, 0.5))


def test_policy_factory_is_called_once():
    made = []

    def factory():
        made.append(ScriptedPolicy())
        return made[-1]

    run_episodes(factory, imagined(), [0], 8, ValueScorer(brightness, 0.5))
    assert len(made) == 1 and made[0].resets == 1


def test_to_policy_observation_layout():
    obs = to_policy_observation(fake_initial([1, 2]))
    assert obs[OBS_IMAGE].shape == (2, 3, 96, 96) and obs[OBS_IMAGE].dtype == torch.float32
    assert obs[OBS_STATE].shape == (2, 2)


def test_real_world_batch_of_two_seeds():
    from dojo_bench.dojo.tasks import get_task

    task = get_task("pusht_bench")
    world = RealWorlds(task)
    towards_centre = ScriptedPolicy(
        name="centre", chunk_size=3, script=lambda call, obs: torch.full((len(obs[OBS_STATE]), 3, 2), 256.0)
    )
    records = run_episodes(towards_centre, world, seeds=[0, 1], max_steps=5, scorer=GroundTruthScorer())
    rows = [r.row() for r in records]
    assert [r["seed"] for r in rows] == [0, 1]
    assert set(rows[0]) == {"policy", "seed", "world", "success", "max_progress", "steps", "flags"}
    for row in rows:
        assert row["world"] == "real" and row["policy"] == "centre" and row["flags"] == ""
        assert 0.0 <= row["max_progress"] <= 1.0
        assert row["steps"] == 5 or row["success"]
    # the imagined adapter starts from the real env's start states on the same seeds
    env = FakeImaginedEnv()
    ImaginedWorld(env, RealWorlds(task).reset).reset([0, 1])
    np.testing.assert_array_equal(env.state, world.reset([0, 1])[OBS_STATE])


@pytest.fixture
def loaded_policy(tmp_path):
    """A real LoadedPolicy: a tiny untrained dojo_pixel checkpoint saved and loaded through policies.loading."""
    from dojo_bench.core.keys import ACTION
    from policies.loading import load_policy, save_pretrained_model
    from policies.pixel_policy import make_pixel_policy

    torch.manual_seed(0)
    arena = {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}
    policy, pre, post = make_pixel_policy(
        {OBS_STATE: dict(arena), ACTION: dict(arena)},
        device="cpu",
        channels=(4, 8, 8, 8),
        hidden_dim=16,
        chunk_size=6,
        n_action_steps=4,
    )
    return load_policy(save_pretrained_model(policy, pre, post, tmp_path / "tiny" / "pretrained_model"))


def test_loaded_policy_in_both_worlds(loaded_policy):
    from dojo_bench.dojo.tasks import get_task
    from world_model.dit import DiT, make_dit_config
    from world_model.imagined_env import ImaginedEnv
    from world_model.model import WorldModelConfig
    from world_model.sampler import SamplerConfig
    from world_model.tokenizer import TokenizerConfig, VideoTokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        real = RealWorlds(get_task("pusht_bench"))
        records = run_episodes(loaded_policy, real, [0, 1], max_steps=8, scorer=GroundTruthScorer())
        assert [(r.policy, r.world, r.flags) for r in records] == [("tiny", "real", [])] * 2

        torch.manual_seed(0)
        tokenizer = VideoTokenizer(
            TokenizerConfig(latent_channels=4, base_channels=8, num_res_blocks=0, temporal_compression=4)
        )
        dit = DiT(
            make_dit_config(
                "tiny", latent_channels=4, latent_size=12, action_chunk_size=4, max_latent_frames=4
            )
        )
        config = WorldModelConfig(
            dit=dit.cfg,
            sampler=SamplerConfig(num_steps=2),
            action_scale=50.0,
            state_offset=250.0,
            state_scale=100.0,
        )
        world = ImaginedWorld(ImaginedEnv(tokenizer, dit, config), RealWorlds(get_task("pusht_bench")).reset)
        records = run_episodes(
            loaded_policy, world, [0, 1], max_steps=8, scorer=ValueScorer(brightness, 0.99)
        )
        for record in records:
            assert record.world == "imagined" and record.steps in range(1, 9)
            assert 0.0 <= record.max_progress <= 1.0 and record.flags == []
    finally:
        torch.set_num_threads(threads)


def test_worker_processes_match_the_in_process_loop():
    from dojo_bench.dojo.tasks import get_task

    task = get_task("pusht_bench")

    def policy():
        return ScriptedPolicy(
            name="centre",
            chunk_size=4,
            script=lambda call, obs: torch.full((len(obs[OBS_STATE]), 4, 2), 256.0),
        )

    local = run_episodes(policy(), RealWorlds(task), [0, 1, 2], max_steps=8, scorer=GroundTruthScorer())
    with RealWorlds(task, workers=2) as world:
        pooled = run_episodes(policy(), world, [0, 1, 2], max_steps=8, scorer=GroundTruthScorer())
        assert len(world._processes) == 2
    assert [r.row() for r in pooled] == [r.row() for r in local]
