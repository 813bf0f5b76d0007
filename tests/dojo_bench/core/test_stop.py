"""A stop request survives a C callback that drops the KeyboardInterrupt: the physics loop raises it after the step."""

import numpy as np
import pytest

from dojo_bench.core import stop
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.rollout import RealWorlds


def test_a_requested_stop_is_raised_by_the_physics_loop_and_cleared_by_the_next_command():
    stop.clear()
    with pytest.raises(KeyboardInterrupt):
        stop.request(15, None)
    with RealWorlds(get_task("pusht_bench")) as world:
        world.reset([0])
        with pytest.raises(KeyboardInterrupt):  # as if the first one had been dropped inside pymunk
            world.step(np.full((1, 1, 2), 256, np.float32))
        stop.clear()
        world.step(np.full((1, 1, 2), 256, np.float32))
