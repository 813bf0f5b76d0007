"""Cross-check with lerobot's own evaluation loop (slow: `pytest -m slow tests/policies/test_lerobot_eval_crosscheck.py -s`).

The same checkpoint on the same seeds, once through lerobot's ``eval_policy`` and once through dojo-bench's
rollout engine, on one of two tasks:

- ``pusht``: lerobot's own env, gym-pusht's stock ``gym_pusht/PushT-v0`` made by lerobot's ``make_env``
  (pixels_agent_pos at 96x96, 300 steps, success at > 95% coverage), against the dojo's ``pusht`` task (gym-pusht's
  own seeded reset, 300 steps, 95%);
- ``pusht_bench``: gym-pusht's ``PushTEnv`` under the benchmark task (the dojo's ``RobotLab``: the task's seeded
  start state, its 85% threshold), behind gymnasium's ``TimeLimit`` of the task's 200 steps in the same
  ``SyncVectorEnv`` lerobot's ``make_env`` builds; gym-pusht's ``step``, observations and reward are untouched, so
  lerobot's loop runs on the benchmark task itself.

Per episode, lerobot's ``max_reward`` (gym-pusht's reward: coverage / 0.95, clipped to 1) is the dojo's
``max_progress``; a deterministic policy (ACT) must give the same episodes, a sampling one (Diffusion Policy) the
same rates within sampling error.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from dojo_bench.core.metrics import wilson_interval
from dojo_bench.dojo.tasks import get_task
from dojo_bench.dojo.worlds import RobotLab
from dojo_bench.engine.rollout import GroundTruthScorer, RealWorlds, run_episodes
from policies.loading import load_policy

SEEDS = list(range(20))
BATCH = 10


def bench_envs(task_name: str, batch: int):
    """``batch`` gym-pusht envs under a dojo task, as lerobot's ``make_env`` vectorises its own."""
    task = get_task(task_name)

    def make_one():
        return gym.wrappers.TimeLimit(RobotLab(task), max_episode_steps=task.horizon)

    return gym.vector.SyncVectorEnv([make_one] * batch, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def lerobot_eval(path, seeds: list[int], batch: int, task: str = "pusht") -> tuple[np.ndarray, np.ndarray]:
    """(success, max_reward) per episode from lerobot's own ``eval_policy`` on gym_pusht/PushT-v0 (``pusht``) or
    on gym-pusht under the dojo's benchmark task (``bench_envs``)."""
    from lerobot.envs.configs import PushtEnv
    from lerobot.envs.factory import make_env, make_env_pre_post_processors
    from lerobot.scripts.lerobot_eval import eval_policy

    loaded = load_policy(path)
    env_cfg = PushtEnv(observation_height=96, observation_width=96)
    if task == "pusht":
        envs = make_env(env_cfg, n_envs=batch)
        env = next(iter(next(iter(envs.values())).values()))
    else:
        env = bench_envs(task, batch)
    env_pre, env_post = make_env_pre_post_processors(env_cfg=env_cfg, policy_cfg=loaded.config)
    torch.manual_seed(0)
    info = eval_policy(env, loaded.policy, env_pre, env_post, loaded.preprocessor, loaded.postprocessor,
                       n_episodes=len(seeds), start_seed=seeds[0])  # fmt: skip
    env.close()
    episodes = info["per_episode"]
    assert [e["seed"] for e in episodes] == seeds
    return np.array([e["success"] for e in episodes]), np.array([e["max_reward"] for e in episodes])


def dojo_eval(path, seeds: list[int], batch: int, task: str = "pusht") -> tuple[np.ndarray, np.ndarray]:
    """(success, max progress) per episode from dojo-bench's engine on the dojo's ``task``."""
    loaded = load_policy(path)
    task = get_task(task)
    torch.manual_seed(0)
    records = []
    for start in range(0, len(seeds), batch):
        part = seeds[start : start + batch]
        records += run_episodes(loaded, RealWorlds(task), part, task.horizon, GroundTruthScorer())
    return np.array([r.success for r in records]), np.array([r.max_progress for r in records])


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pusht", "pusht_bench"])
@pytest.mark.parametrize("policy_type", ["act", "diffusion"])
def test_dojo_bench_matches_lerobots_eval_loop(policy_type, task, tiny_lerobot_checkpoints):
    path = tiny_lerobot_checkpoints[policy_type]
    lerobot_success, lerobot_reward = lerobot_eval(path, SEEDS, BATCH, task)
    dojo_success, dojo_progress = dojo_eval(path, SEEDS, BATCH, task)
    for name, success in (("lerobot eval", lerobot_success), ("dojo-bench", dojo_success)):
        low, high = wilson_interval(int(success.sum()), len(success))
        print(f"{policy_type} {task} {name}: success {success.mean():.0%} [{low:.0%}, {high:.0%}], "
              f"mean max reward {(lerobot_reward if name == 'lerobot eval' else dojo_progress).mean():.4f}")  # fmt: skip
    if policy_type == "act":  # deterministic: the same episodes
        np.testing.assert_array_equal(dojo_success, lerobot_success)
        np.testing.assert_allclose(dojo_progress, lerobot_reward, rtol=0, atol=1e-6)
    else:  # the same distribution: rates and mean max reward within sampling error
        assert abs(dojo_success.mean() - lerobot_success.mean()) <= 0.3
        assert abs(dojo_progress.mean() - lerobot_reward.mean()) <= 0.1
