"""Cross-check with lerobot's own evaluation loop (slow: `pytest -m slow tests/policies/test_lerobot_eval_crosscheck.py -s`).

The same checkpoint on the same seeds, once through lerobot's ``eval_policy`` on gym-pusht's stock
``gym_pusht/PushT-v0`` (pixels_agent_pos at 96x96, 300 steps, success at > 95% coverage) and once through
dojo-bench's rollout engine in the dojo's ``pusht`` task (gym-pusht's own seeded reset, 300 steps, 95%). The
benchmark task ``pusht_bench`` narrows the start states and relaxes the threshold, which gym-pusht cannot express;
its physics, camera and per-step reward are the stock task's.

Per episode, lerobot's ``max_reward`` (gym-pusht's reward: coverage / 0.95, clipped to 1) is the dojo's
``max_progress``; a deterministic policy (ACT) must give the same episodes, a sampling one (Diffusion Policy) the
same rates within sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dojo_bench.core.metrics import wilson_interval
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.rollout import GroundTruthScorer, RealWorlds, run_episodes
from policies.loading import load_policy

SEEDS = list(range(20))
BATCH = 10


def lerobot_eval(path, seeds: list[int], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(success, max_reward) per episode from lerobot's own ``eval_policy`` on gym_pusht/PushT-v0."""
    from lerobot.envs.configs import PushtEnv
    from lerobot.envs.factory import make_env, make_env_pre_post_processors
    from lerobot.scripts.lerobot_eval import eval_policy

    loaded = load_policy(path)
    env_cfg = PushtEnv(observation_height=96, observation_width=96)
    envs = make_env(env_cfg, n_envs=batch)
    env = next(iter(next(iter(envs.values())).values()))
    env_pre, env_post = make_env_pre_post_processors(env_cfg=env_cfg, policy_cfg=loaded.config)
    torch.manual_seed(0)
    info = eval_policy(env, loaded.policy, env_pre, env_post, loaded.preprocessor, loaded.postprocessor,
                       n_episodes=len(seeds), start_seed=seeds[0])  # fmt: skip
    env.close()
    episodes = info["per_episode"]
    assert [e["seed"] for e in episodes] == seeds
    return np.array([e["success"] for e in episodes]), np.array([e["max_reward"] for e in episodes])


def dojo_eval(path, seeds: list[int], batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(success, max progress) per episode from dojo-bench's engine on the dojo's stock ``pusht`` task."""
    loaded = load_policy(path)
    task = get_task("pusht")
    torch.manual_seed(0)
    records = []
    for start in range(0, len(seeds), batch):
        part = seeds[start : start + batch]
        records += run_episodes(loaded, RealWorlds(task), part, task.horizon, GroundTruthScorer())
    return np.array([r.success for r in records]), np.array([r.max_progress for r in records])


@pytest.mark.slow
@pytest.mark.parametrize("policy_type", ["act", "diffusion"])
def test_dojo_bench_matches_lerobots_eval_loop(policy_type, tiny_lerobot_checkpoints):
    path = tiny_lerobot_checkpoints[policy_type]
    lerobot_success, lerobot_reward = lerobot_eval(path, SEEDS, BATCH)
    dojo_success, dojo_progress = dojo_eval(path, SEEDS, BATCH)
    for name, success in (("lerobot eval", lerobot_success), ("dojo-bench", dojo_success)):
        low, high = wilson_interval(int(success.sum()), len(success))
        print(f"{policy_type} {name}: success {success.mean():.0%} [{low:.0%}, {high:.0%}], "
              f"mean max reward {(lerobot_reward if name == 'lerobot eval' else dojo_progress).mean():.4f}")  # fmt: skip
    if policy_type == "act":  # deterministic: the same episodes
        np.testing.assert_array_equal(dojo_success, lerobot_success)
        np.testing.assert_allclose(dojo_progress, lerobot_reward, rtol=0, atol=1e-6)
    else:  # the same distribution: rates and mean max reward within sampling error
        assert abs(dojo_success.mean() - lerobot_success.mean()) <= 0.3
        assert abs(dojo_progress.mean() - lerobot_reward.mean()) <= 0.1
