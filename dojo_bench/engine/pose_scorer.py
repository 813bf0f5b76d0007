"""Imagined success from the imagined object's pose: the dojo's coverage of the goal, by exact geometry.

A world model that carries the pushed object's pose (``object_shape``, world_model/object_pose.py) reports it per
frame (``info["object_pose"]`` (B, K, 3)); ``PoseScorer`` computes what the dojo computes from the real pose, the
fraction of the goal the object covers, so success does not rest on a value model's reading of the imagined
pixels. Progress is coverage / threshold clipped to 1 (gym-pusht's reward), success coverage >= threshold.

    scorer = PoseScorer(task.goal_pose, task.success_threshold, "tee")
    progress, success = scorer.score(info)                          # (B, K) float, (B, K) bool
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dojo_bench.core.errors import DojoError
from world_model.object_pose import coverage


class PoseScorer:
    """Progress and success per imagined frame from ``info["object_pose"]`` (see the module docstring)."""

    def __init__(self, goal: Sequence[float], threshold: float, shape: str) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"success threshold must be in (0, 1], got {threshold}")
        self.goal = tuple(float(g) for g in goal)
        self.threshold = float(threshold)
        self.shape = shape

    def score(self, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if "object_pose" not in info:
            raise DojoError(
                "success from the object's pose needs a world model that carries it (pixel.model.object_shape)"
            )
        poses = np.asarray(info["object_pose"], dtype=np.float64)  # (B, K, 3)
        covered = coverage(poses.reshape(-1, 3), self.goal, self.shape).reshape(poses.shape[:2])
        return np.minimum(covered / self.threshold, 1.0), covered >= self.threshold


__all__ = ["PoseScorer"]
