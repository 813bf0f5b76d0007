"""PoseScorer: imagined progress and success from the imagined object's pose, as the dojo scores the real one."""

import numpy as np
import pytest

from dojo_bench.core.errors import DojoError
from dojo_bench.dojo.tasks import GOAL_POSE
from dojo_bench.engine.pose_scorer import PoseScorer


def test_progress_is_coverage_over_the_threshold_and_success_reaches_it():
    scorer = PoseScorer(GOAL_POSE, 0.85, "tee")
    on_goal, far = list(GOAL_POSE), [60.0, 60.0, 0.0]
    progress, success = scorer.score({"object_pose": np.array([[on_goal, far], [far, far]])})  # (B=2, K=2)
    np.testing.assert_allclose(progress, [[1.0, 0.0], [0.0, 0.0]])
    assert success.tolist() == [[True, False], [False, False]]
    with pytest.raises(DojoError, match="carries it"):
        scorer.score({"frames": np.zeros((1, 1, 96, 96, 3), np.uint8)})
    with pytest.raises(ValueError, match="threshold"):
        PoseScorer(GOAL_POSE, 0.0, "tee")
