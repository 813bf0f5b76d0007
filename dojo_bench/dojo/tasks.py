"""Benchmark tasks of the robot lab: a start-state distribution, a horizon and a success threshold.

The robot lab is gym-pusht 0.1.8 (pinned: its reset seeding changed between versions). The stock task keeps
gym-pusht's own reset distribution and its 95 % coverage threshold; it is hard for ordinary learned policies.
The benchmark variants narrow the start distribution and relax the threshold so that policies of ordinary
quality land between 10 % and 90 % success, which is where a ranking is informative. See docs/dojo.md ("Robot lab tasks").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dojo_bench.core.errors import UsageError

GOAL_POSE = (256.0, 256.0, math.pi / 4)  # gym-pusht's fixed goal: x, y, theta


@dataclass(frozen=True)
class StartDistribution:
    """Where episodes start, relative to the goal pose.

    The object's body position is drawn uniformly from an annulus around the goal position, its angle from
    ``goal_theta ± angle_offset_max``; the agent is drawn uniformly over the arena, away from the object.
    """

    position_offset_min: float
    position_offset_max: float
    angle_offset_min: float
    angle_offset_max: float

    def __post_init__(self) -> None:
        if not 0 <= self.position_offset_min <= self.position_offset_max <= 200:
            raise ValueError("position offsets must satisfy 0 <= min <= max <= 200 (pixels of the 512 arena)")
        if not 0 <= self.angle_offset_min <= self.angle_offset_max <= math.pi:
            raise ValueError("angle offsets must satisfy 0 <= min <= max <= pi (radians)")

    def sample_object_pose(self, rng: np.random.Generator) -> np.ndarray:
        """(3,) object pose x, y, theta."""
        radius = rng.uniform(self.position_offset_min, self.position_offset_max)
        direction = rng.uniform(-math.pi, math.pi)
        angle = rng.uniform(self.angle_offset_min, self.angle_offset_max) * rng.choice([-1.0, 1.0])
        return np.array(
            [
                GOAL_POSE[0] + radius * math.cos(direction),
                GOAL_POSE[1] + radius * math.sin(direction),
                GOAL_POSE[2] + angle,
            ]
        )


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task. ``start=None`` keeps gym-pusht's own seeded reset distribution."""

    name: str
    description: str
    horizon: int
    success_threshold: float
    start: StartDistribution | None
    instruction: str = "Push the T-shaped block onto the green target."

    def __post_init__(self) -> None:
        if self.horizon <= 0:
            raise ValueError(f"task {self.name}: horizon must be positive, got {self.horizon}")
        if not 0 < self.success_threshold <= 1:
            raise ValueError(f"task {self.name}: success_threshold must be in (0, 1]")


TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (
        TaskSpec(
            name="pusht",
            description="gym-pusht's stock task: its own reset distribution, 95% coverage, 300 steps.",
            horizon=300,
            success_threshold=0.95,
            start=None,
        ),
        TaskSpec(
            name="pusht_bench",
            description="The benchmark task: the T starts 40-120 px from the goal, turned 20-90 degrees; "
            "85% coverage within 200 steps (20 s).",
            horizon=200,
            success_threshold=0.85,
            start=StartDistribution(40.0, 120.0, math.radians(20), math.radians(90)),
        ),
        TaskSpec(
            name="pusht_bench_wide",
            description="A harder benchmark variant: the T starts 60-160 px from the goal at any angle; "
            "90% coverage within 250 steps (25 s).",
            horizon=250,
            success_threshold=0.90,
            start=StartDistribution(60.0, 160.0, 0.0, math.pi),
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """The task called ``name``; a usage error naming the known tasks otherwise."""
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
