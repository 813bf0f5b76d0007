"""The dojo's worlds and scripted policies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dojo_bench.core.errors import UsageError
from dojo_bench.core.keys import GT_COVERAGE, OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.experts import PushExpert, make_policy, outline_samples, pose_error
from dojo_bench.dojo.tasks import GOAL_POSE, TASKS, get_task
from dojo_bench.dojo.worlds import SHAPES, HumanWorld, RobotLab


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UsageError, match="known tasks: pusht, pusht_bench"):
        get_task("pushq")


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.start is not None])
def test_benchmark_start_states_follow_the_task_distribution(name):
    task = get_task(name)
    world = RobotLab(task)
    for seed in range(10):
        world.reset(seed=seed)
        pose = world.object_pose()
        offset = math.dist(pose[:2], GOAL_POSE[:2])
        assert task.start.position_offset_min - 1e-6 <= offset <= task.start.position_offset_max + 1e-6
        turn = abs((pose[2] - GOAL_POSE[2] + math.pi) % (2 * math.pi) - math.pi)
        assert task.start.angle_offset_min - 1e-6 <= turn <= task.start.angle_offset_max + 1e-6
    a, b = RobotLab(task), RobotLab(task)
    a.reset(seed=4)
    b.reset(seed=4)
    assert np.array_equal(a.object_pose(), b.object_pose())


def test_observation_keys_and_shapes():
    world = RobotLab(get_task("pusht_bench"))
    world.reset(seed=0)
    obs = world.observation()
    assert obs[OBS_IMAGE].shape == (96, 96, 3) and obs[OBS_IMAGE].dtype == np.uint8
    assert obs[OBS_STATE].shape == (2,) and obs[OBS_STATE].dtype == np.float32


def test_snapshot_restore_rewinds_exactly():
    world = RobotLab(get_task("pusht_bench"))
    world.reset(seed=1)
    saved = world.snapshot()
    for _ in range(5):
        world.act(world.object_pose()[:2])  # drive into the object
    assert world.snapshot() != saved
    world.restore(saved)
    assert world.snapshot() == saved


def test_expert_moves_the_object_towards_the_goal():
    world = RobotLab(get_task("pusht_bench"))
    world.reset(seed=2)
    expert = PushExpert()
    expert.reset(world, np.random.default_rng(0))
    before = pose_error(expert.polygons, world.object_pose(), world.goal_pose)
    for _ in range(60):
        world.act(expert.act(world))
    after = pose_error(expert.polygons, world.object_pose(), world.goal_pose)
    assert after < 0.6 * before


def test_human_world_is_another_embodiment_on_varied_scenes():
    assert len([s for s in SHAPES if s != "tee"]) >= 5
    world = HumanWorld()
    names, backgrounds = set(), set()
    for seed in range(30):
        world.reset(seed=seed)
        names.add(world.shape_name)
        backgrounds.add(world.background)
        assert world.observation()[OBS_IMAGE].shape == (96, 96, 3)
    assert len(names) >= 6 and len(backgrounds) >= 3
    robot = RobotLab(get_task("pusht_bench"))
    assert (world.k_p, world.k_v) != (robot.k_p, robot.k_v)
    policy = make_policy("random")
    policy.reset(world, np.random.default_rng(0))
    world.act(policy.act(world))
    assert 0.0 <= float(world.ground_truth()[GT_COVERAGE][0]) <= 1.0


def test_outline_normals_point_outwards():
    square = [np.array([(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)])]
    points, normals = outline_samples(square, spacing=0.5)
    assert len(points) == 16
    assert np.all(np.einsum("nd,nd->n", points, normals) > 0)  # outward: away from the centre
