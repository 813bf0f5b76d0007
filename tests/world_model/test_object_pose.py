"""The object's pose in the pixel world model: silhouettes and the probe's pose against the dojo's own frames, the
dynamics head learning pushes from states alone, and the model / env / init= plumbing of ``object_shape``."""

import numpy as np
import pytest
import torch

from dojo_bench.core.keys import GT_OBJECT_POSE, OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.tasks import get_task
from dojo_bench.dojo.worlds import RobotLab
from world_model.checkpoint import save_world_model
from world_model.object_pose import (
    ObjectDynamics,
    fit_object_dynamics,
    pose_error,
    pose_from_frames,
    shape_parts,
    silhouettes,
)
from world_model.pixel_env import PixelImaginedEnv
from world_model.pixel_model import PixelWorldModel, PixelWorldModelConfig
from world_model.probe import _masks, angle_error

TINY = {"num_context_frames": 2, "channels": (8, 16), "cond_dim": 16, "state_hidden": 16, "object_hidden": 32}


def start_frames(seeds):
    world = RobotLab(get_task("pusht_bench"))
    frames, poses, states = [], [], []
    for seed in seeds:
        world.reset(seed=seed)
        obs = world.observation()
        frames.append(obs[OBS_IMAGE])
        states.append(obs[OBS_STATE])
        poses.append(world.object_pose())
    return np.stack(frames), np.stack(poses).astype(np.float32), np.stack(states)


def test_silhouettes_cover_the_rendered_tee_and_the_probe_reads_its_pose():
    frames, poses, _ = start_frames(range(12))
    grid = PixelWorldModel._pixel_grid(96)
    masks = silhouettes(torch.from_numpy(poses)[:, None], shape_parts("tee"), grid, 512.0)[:, 0].numpy() > 0.5
    tee = _masks(frames)[1]  # the T's pixels by colour (anti-aliased edge pixels excluded)
    iou = (masks & tee).sum((1, 2)) / (masks | tee).sum((1, 2))
    assert iou.min() > 0.75, iou  # measured 0.81-0.90
    read = pose_from_frames(frames, "tee")
    assert np.linalg.norm(read[:, :2] - poses[:, :2], axis=1).max() < 6.0  # arena units; measured <= 3.7
    assert np.degrees(angle_error(read[:, 2], poses[:, 2])).max() < 5.0  # measured <= 3.3
    with pytest.raises(ValueError, match="no T"):
        pose_from_frames(np.full((1, 96, 96, 3), 255, np.uint8), "tee")


def pushing_episodes(count, steps=30, seed=0):
    """(steps + 1, 2 + 3 + 2) per episode: agent, object pose, action, the agent sent through the T's centre."""
    rng = np.random.default_rng(seed)
    world = RobotLab(get_task("pusht_bench"))
    episodes = []
    for e in range(count):
        world.reset(seed=1000 + e)
        rows = []
        goal = world.object_pose()[:2] + rng.normal(0, 20, 2)
        start = np.asarray(world.agent.position)
        for k in range(steps + 1):
            target = start + (goal - start) * min(1.0, 1.6 * (k + 1) / steps)
            rows.append(np.concatenate([np.asarray(world.agent.position), world.object_pose(), target]))
            world.act(target)
        episodes.append(np.stack(rows).astype(np.float32))
    return episodes


def test_the_dynamics_head_learns_pushes_from_states_alone(one_thread):
    train, held_out = pushing_episodes(16), pushing_episodes(6, seed=1)
    moved = [np.abs(np.diff(e[:, 2:4], axis=0)).sum() for e in train]
    assert np.median(moved) > 20  # the T is pushed, not left alone

    def unrolled_error(head):
        errors = []
        with torch.no_grad():
            for e in map(torch.from_numpy, held_out):
                poses = e[None, :3, 2:5]
                for t in range(2, len(e) - 1):
                    nxt = head(e[None, t - 2 : t + 1, :2], poses[:, -3:], e[None, t, 5:7])
                    poses = torch.cat([poses, nxt[:, None]], 1)
                errors.append(pose_error(poses[0, -1], e[-1, 2:5]).abs().mean())
        return float(torch.stack(errors).mean())

    torch.manual_seed(0)
    head = ObjectDynamics(hidden=64)
    before = unrolled_error(head)  # an untrained head keeps the pose
    fit_object_dynamics(head, train, steps=300, unroll=4, batch_size=64, learning_rate=3e-3)
    after = unrolled_error(head)
    assert after < 0.7 * before, (after, before)  # measured: 2.41 against 4.54
    with pytest.raises(ValueError, match="no episode has"):
        fit_object_dynamics(head, [e[:5] for e in train], steps=1, unroll=4)


def test_a_model_with_the_object_carries_its_pose_and_starts_as_copy_last():
    model = PixelWorldModel(PixelWorldModelConfig(**TINY, object_shape="tee"))
    assert model.cfg.in_channels == 3 * 2 + 2 + 2 and model.cfg.full_state_dim == 5
    frames = torch.rand(2, 2, 3, 96, 96)
    states = torch.cat([torch.rand(2, 2, 2) * 512, torch.tensor([[250.0, 250.0, 0.3]]).expand(2, 2, 3)], -1)
    frame, state = model.step(frames, states, torch.rand(2, 2) * 512)
    assert torch.equal(frame, frames[:, -1]) and state.shape == (2, 5)
    torch.testing.assert_close(state[:, 2:], states[:, -1, 2:])  # an untrained head keeps the pose
    given = torch.tensor([[100.0, 120.0, 1.0], [300.0, 310.0, -1.0]])
    assert torch.equal(model.step(frames, states, torch.rand(2, 2) * 512, next_pose=given)[1][:, 2:], given)
    with pytest.raises(ValueError, match="object_shape"):
        PixelWorldModelConfig(**TINY, object_shape="star")


def test_the_env_starts_the_pose_from_the_ground_truth_or_the_probe():
    model = PixelWorldModel(PixelWorldModelConfig(**TINY, object_shape="tee"))
    env = PixelImaginedEnv(model)
    frames, poses, states = start_frames([3, 4])
    actions = np.repeat(states[:, None], 3, 1)
    start = env.reset({OBS_IMAGE: frames, OBS_STATE: states, GT_OBJECT_POSE: poses})
    np.testing.assert_array_equal(start[OBS_STATE], states)  # the agent's state only, as the policies read it
    obs, info = env.step(actions)
    assert obs[OBS_STATE].shape == (2, 2) and info["states"].shape == (2, 3, 2)
    np.testing.assert_allclose(info["object_pose"][:, -1], poses, atol=1e-4)  # untrained: the pose is kept
    env.reset({OBS_IMAGE: frames, OBS_STATE: states})  # no ground truth: the probe reads the start frames
    _, info = env.step(actions)
    np.testing.assert_allclose(info["object_pose"][:, -1], pose_from_frames(frames, "tee"), atol=1e-4)
    with pytest.raises(ValueError, match="no T"):
        env.reset({OBS_IMAGE: np.full_like(frames, 255), OBS_STATE: states})


def test_init_adds_the_object_to_a_release_and_predicts_as_before(tiny_robot_run, tmp_path):
    from dojo_bench.cli import main

    data, _, _ = tiny_robot_run
    start = PixelWorldModel(PixelWorldModelConfig(**{k: v for k, v in TINY.items() if k != "object_hidden"}))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in start.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_world_model(tmp_path / "start", pixel=start)
    args = ["train", "stage=pixel_world_model", "size=tiny", f"data={data}", "clip_length=4", "device=cpu",
            f"out={tmp_path / 'obj'}", f"init={tmp_path / 'start'}", "pixel.model.object_shape=tee",
            "pixel.object_pretrain_steps=5", "pixel.object_unroll=2", "max_steps=1", "learning_rate=1e-9"]  # fmt: skip
    assert main(args) == 0
    model = PixelImaginedEnv.from_checkpoint(tmp_path / "obj" / "release").model
    assert (
        model.cfg.object_shape == "tee" and model.stem.weight.shape[1] == start.stem.weight.shape[1] + 2 * 16
    )
    frames, poses, states = start_frames([5])
    context = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[:, None].expand(-1, 2, -1, -1, -1)
    agent = torch.from_numpy(states)[:, None].expand(-1, 2, -1)
    action = agent[:, -1] + 20
    with torch.no_grad():
        before, _ = start.step(context, agent, action)
        pose = torch.from_numpy(poses)[:, None].expand(-1, 2, -1)
        after, _ = model.step(context, torch.cat([agent, pose], -1), action)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-4)  # the silhouettes start with zero weight


def test_coverage_of_a_pose_is_the_dojos():
    from dojo_bench.dojo.tasks import GOAL_POSE
    from world_model.object_pose import coverage

    world = RobotLab(get_task("pusht_bench"))
    world.reset(seed=0)
    rng = np.random.default_rng(0)
    poses = np.array(GOAL_POSE) + rng.normal(0, [25, 25, 0.4], (20, 3))
    expected = []
    for pose in poses:
        world.block.angle = pose[2]
        world.block.position = tuple(pose[:2])
        expected.append(world.coverage())
    assert 0.1 < min(expected) < max(expected) < 1  # partial overlaps, not all or nothing
    np.testing.assert_allclose(coverage(poses, GOAL_POSE, "tee"), expected, rtol=0, atol=1e-9)
    assert coverage(np.array([GOAL_POSE]), GOAL_POSE, "tee")[0] == pytest.approx(1.0)
