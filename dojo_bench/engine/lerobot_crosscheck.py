"""Cross-check a lerobot checkpoint: lerobot's own evaluation loop against dojo-bench's engine, same seeds.

``python -m dojo_bench.engine.lerobot_crosscheck CHECKPOINT [--seeds 100] [--batch 25] [--task pusht_bench]``
runs the ``pretrained_model`` folder once through lerobot's ``eval_policy`` and once through the rollout engine
on the real dojo, and prints both success rates (95% Wilson intervals), both mean max rewards and how far the
episodes differ (``--dojo-only`` skips lerobot's loop: the real success alone). The tasks:

- ``pusht``: lerobot's own env, gym-pusht's stock ``gym_pusht/PushT-v0`` made by lerobot's ``make_env``
  (pixels_agent_pos at 96x96, 300 steps, success at > 95% coverage), against the dojo's ``pusht`` task (gym-pusht's
  own seeded reset, 300 steps, 95%);
- any other dojo robot task (``pusht_bench``): gym-pusht's ``PushTEnv`` under the task (the dojo's ``RobotLab``:
  the task's seeded start state and threshold), behind gymnasium's ``TimeLimit`` of the task's horizon, in the same
  ``SyncVectorEnv`` (same-step autoreset) lerobot's ``make_env`` builds; gym-pusht's ``step``, observations and
  reward are untouched, so lerobot's loop runs on the task itself.

Per episode, lerobot's ``max_reward`` (gym-pusht's reward: coverage / threshold, clipped to 1) is the dojo's
``max_progress``. Both loops start from ``torch.manual_seed(0)``, so a sampling policy (Diffusion Policy) draws
the same noise in the same order when the batches are the same.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dojo_bench.core.errors import UsageError
from dojo_bench.core.metrics import wilson_interval
from dojo_bench.core.progress import quiet_libraries
from dojo_bench.dojo.tasks import get_task
from dojo_bench.dojo.worlds import RobotLab
from dojo_bench.engine.rollout import GroundTruthScorer, RealWorlds, run_episodes
from policies.loading import load_policy


def bench_envs(task_name: str, batch: int) -> gym.vector.SyncVectorEnv:
    """``batch`` gym-pusht envs under a dojo task, vectorised as lerobot's ``make_env`` vectorises its own."""
    task = get_task(task_name)

    def make_one():
        return gym.wrappers.TimeLimit(RobotLab(task), max_episode_steps=task.horizon)

    return gym.vector.SyncVectorEnv([make_one] * batch, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def lerobot_eval(path, seeds: list[int], batch: int, task: str = "pusht") -> tuple[np.ndarray, np.ndarray]:
    """(success, max_reward) per episode from lerobot's own ``eval_policy``; seeds must be consecutive."""
    from lerobot.envs.configs import PushtEnv  # lerobot's env stack is slow to import: only here
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
    if [e["seed"] for e in episodes] != list(seeds):
        raise RuntimeError("lerobot's eval_policy ran other seeds than asked")
    return np.array([e["success"] for e in episodes]), np.array([e["max_reward"] for e in episodes])


def dojo_eval(path, seeds: list[int], batch: int, task: str = "pusht") -> tuple[np.ndarray, np.ndarray]:
    """(success, max progress) per episode from dojo-bench's engine on the real dojo's ``task``."""
    loaded = load_policy(path)
    dojo_task = get_task(task)
    torch.manual_seed(0)
    records = []
    for start in range(0, len(seeds), batch):
        part = seeds[start : start + batch]
        records += run_episodes(loaded, RealWorlds(dojo_task), part, dojo_task.horizon, GroundTruthScorer())
    return np.array([r.success for r in records]), np.array([r.max_progress for r in records])


@dataclass
class LoopResult:
    """One loop's episodes, summarised: success rate with its Wilson interval, mean max reward, wall seconds."""

    success: float
    low: float
    high: float
    mean_max_reward: float
    wall_s: float


def summarise(success: np.ndarray, reward: np.ndarray, wall_s: float) -> LoopResult:
    low, high = wilson_interval(int(success.sum()), len(success))
    return LoopResult(float(success.mean()), low, high, float(reward.mean()), wall_s)


def crosscheck(path: str, seeds: list[int], batch: int, task: str, dojo_only: bool = False) -> dict:
    """Both loops on ``seeds`` (lerobot's skipped when ``dojo_only``); a JSON-ready summary."""
    result: dict = {"checkpoint": str(path), "task": task, "seeds": [seeds[0], seeds[-1]], "batch": batch}
    start = time.perf_counter()
    dojo_success, dojo_reward = dojo_eval(path, seeds, batch, task)
    result["dojo_bench"] = asdict(summarise(dojo_success, dojo_reward, time.perf_counter() - start))
    if not dojo_only:
        start = time.perf_counter()
        lerobot_success, lerobot_reward = lerobot_eval(path, seeds, batch, task)
        result["lerobot"] = asdict(summarise(lerobot_success, lerobot_reward, time.perf_counter() - start))
        result["largest_reward_difference"] = float(np.abs(dojo_reward - lerobot_reward).max())
        result["episodes_agreeing"] = float((dojo_success == lerobot_success).mean())
    return result


def _line(name: str, r: dict) -> str:
    return (f"{name}: success {r['success']:.0%} [{r['low']:.0%}, {r['high']:.0%}], "
            f"mean max reward {r['mean_max_reward']:.4f}, {r['wall_s']:.0f} s")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dojo_bench.engine.lerobot_crosscheck", description=__doc__.split("\n")[0]
    )
    parser.add_argument("checkpoint", help="a pretrained_model folder (lerobot's or the zoo's)")
    parser.add_argument("--seeds", type=int, default=100, help="episodes: seeds 0..N-1")
    parser.add_argument("--batch", type=int, default=25, help="episodes rolled together (both loops)")
    parser.add_argument("--task", default="pusht_bench", help="the dojo task (pusht: lerobot's stock env)")
    parser.add_argument("--dojo-only", action="store_true", help="real success from dojo-bench's engine only")
    parser.add_argument("--json", help="also write the summary to this file")
    args = parser.parse_args(argv)
    quiet_libraries()
    if not (Path(args.checkpoint) / "config.json").is_file():
        parser.error(f"{args.checkpoint} is not a pretrained_model folder (no config.json)")
    if args.seeds < 1 or args.batch < 1:
        parser.error(f"--seeds and --batch must be positive, got {args.seeds} and {args.batch}")
    try:
        get_task(args.task)
    except UsageError as error:
        parser.error(str(error))
    result = crosscheck(args.checkpoint, list(range(args.seeds)), args.batch, args.task, args.dojo_only)
    print(_line("dojo-bench", result["dojo_bench"]))
    if "lerobot" in result:
        print(_line("lerobot eval", result["lerobot"]))
        print(f"largest per-episode reward difference {result['largest_reward_difference']:.2e}, "
              f"episodes agreeing on success {result['episodes_agreeing']:.0%}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
