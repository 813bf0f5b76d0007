"""One episode of a scripted policy in a dojo world, as arrays ready to record.

Frame ``t`` shows the state before action ``t``; its ground truth describes that same state. An episode
records at most ``max_steps + 1`` frames (the last action is recorded but not executed) and, when
``stop_on_success``, ends on the first frame whose state meets the success threshold. A policy that labels
(``act_labelled``, DAgger's ``LearnerWithExpert``) also records ``gt.expert_action`` per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dojo_bench.core.keys import ACTION, GT_COVERAGE, GT_EXPERT_ACTION, GT_SUCCESS, OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.dagger import LearnerWithExpert
from dojo_bench.dojo.experts import PushExpert
from dojo_bench.dojo.worlds import PushWorld


@dataclass
class Episode:
    """Per-frame arrays keyed like the dataset features: OBS_IMAGE (T, 96, 96, 3) uint8, others (T, D)."""

    seed: int
    policy: str
    frames: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.frames[ACTION])

    @property
    def success(self) -> bool:
        return bool(self.frames[GT_SUCCESS].any())

    @property
    def max_coverage(self) -> float:
        return float(self.frames[GT_COVERAGE].max())


def run_episode(
    world: PushWorld,
    policy: PushExpert | LearnerWithExpert,
    policy_name: str,
    seed: int,
    max_steps: int,
    stop_on_success: bool = True,
    render: bool = True,
    reset_seed: int | None = None,
) -> Episode:
    """Roll ``policy`` out in ``world`` from the start state of ``reset_seed`` (default ``seed``).

    The policy's own randomness derives from ``seed``, so counterfactual variants can share a start state
    (same ``reset_seed``) while differing in their actions.
    """
    world.reset(seed=seed if reset_seed is None else reset_seed)
    policy.reset(world, np.random.default_rng(seed))
    rows: dict[str, list[np.ndarray]] = {}
    for t in range(max_steps + 1):
        row = world.observation() if render else {OBS_STATE: np.asarray(world.agent.position, np.float32)}
        row.update(world.ground_truth())
        if isinstance(policy, LearnerWithExpert):
            action, label = policy.act_labelled(world, row)
            row[GT_EXPERT_ACTION] = label  # (2,) float32, already inside the action space
        else:
            action = policy.act(world)
        action = np.clip(action, 0, 512).astype(np.float32)  # gym-pusht's action space
        row[ACTION] = action
        for key, value in row.items():
            rows.setdefault(key, []).append(value)
        if t == max_steps or (stop_on_success and bool(row[GT_SUCCESS][0])):
            break
        world.act(action)
    frames = {key: np.stack(values) for key, values in rows.items()}
    if render:
        assert frames[OBS_IMAGE].dtype == np.uint8
    return Episode(seed=seed, policy=policy_name, frames=frames)
