"""Cross-check with lerobot's own evaluation loop (slow: `pytest -m slow tests/policies/test_lerobot_eval_crosscheck.py -s`).

The tiny checkpoints on seeds 0-19, once through lerobot's ``eval_policy`` and once through dojo-bench's rollout
engine (``dojo_bench.engine.lerobot_crosscheck``), on lerobot's stock PushT and on gym-pusht under the benchmark
task: a deterministic policy (ACT) must give the same episodes, a sampling one (Diffusion Policy) the same rates
within sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest

from dojo_bench.core.metrics import wilson_interval
from dojo_bench.engine.lerobot_crosscheck import dojo_eval, lerobot_eval

SEEDS = list(range(20))
BATCH = 10


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
