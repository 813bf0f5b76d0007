"""The pixel world model: starts as copy-last, causal, exact checkpoint round trip, the env's face, bad configs,
and a tiny CPU fit on real dojo frames that beats copy-last on the agent and needs the actions to do so."""

import numpy as np
import pytest
import torch

from dojo_bench.core.keys import ACTION, GT_OBJECT_POSE, OBS_IMAGE, OBS_STATE
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.rollout import RealWorlds
from world_model.checkpoint import save_world_model
from world_model.lit_pixel_model import unroll_losses
from world_model.pixel_env import PixelImaginedEnv
from world_model.pixel_model import PixelWorldModel, PixelWorldModelConfig
from world_model.probe import agent_position

TINY = {"num_context_frames": 2, "channels": (8, 16), "cond_dim": 16, "state_hidden": 16}


def observations(b=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (b, 96, 96, 3), dtype=np.uint8)
    poses = rng.uniform([100, 100, -3], [400, 400, 3], (b, 3)).astype(
        np.float32
    )  # used by object models only
    return {
        OBS_IMAGE: images,
        OBS_STATE: rng.uniform(50, 450, (b, 2)).astype(np.float32),
        GT_OBJECT_POSE: poses,
    }


def trained_weights(model):
    """Non-zero output weights, so that the model's output depends on its inputs."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_an_untrained_model_copies_the_last_frame():
    model = PixelWorldModel(PixelWorldModelConfig(**TINY))
    frames, states = torch.rand(2, 2, 3, 96, 96), torch.rand(2, 2, 2) * 512
    frame, state = model.step(frames, states, torch.rand(2, 2) * 512)
    assert torch.equal(frame, frames[:, -1]) and state.shape == (2, 2)


def test_an_untrained_warping_model_copies_the_last_frame_and_its_resampling_moves_pixels():
    model = PixelWorldModel(PixelWorldModelConfig(**TINY, warp=True))
    frames, states = torch.rand(2, 2, 3, 96, 96), torch.rand(2, 2, 2) * 512
    frame, _ = model.step(frames, states, torch.rand(2, 2) * 512)
    torch.testing.assert_close(frame, frames[:, -1], rtol=0, atol=1e-5)  # grid_sample's rounding only
    displacement = torch.zeros(2, 2, 96, 96)
    displacement[:, 0], displacement[:, 1] = 2.0, -1.0  # every pixel takes the colour 2 px right, 1 px up
    moved = model.resample(frames[:, -1], displacement)
    torch.testing.assert_close(moved[:, :, 1:, :-2], frames[:, -1, :, :-1, 2:], rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", [{}, {"warp": True}, {"sampling_steps": 2}, {"object_shape": "tee"}])
def test_later_actions_never_change_earlier_frames(variant):
    env = PixelImaginedEnv(trained_weights(PixelWorldModel(PixelWorldModelConfig(**TINY, **variant))))
    actions = np.random.default_rng(1).uniform(0, 512, (3, 6, 2)).astype(np.float32)
    env.reset(observations())
    _, first = env.step(actions)
    changed = actions.copy()
    changed[:, 4:] += 100
    env.reset(observations())
    _, second = env.step(changed)
    assert np.array_equal(first["frames"][:, :4], second["frames"][:, :4])
    assert np.array_equal(first["states"][:, :4], second["states"][:, :4])
    assert not np.array_equal(first["frames"][:, 4:], second["frames"][:, 4:])


def test_a_stochastic_model_samples_by_its_seed_and_trains_through_its_denoiser():
    env = PixelImaginedEnv(trained_weights(PixelWorldModel(PixelWorldModelConfig(**TINY, sampling_steps=2))))
    actions = np.full((3, 4, 2), 250, np.float32)
    runs = []
    for seed in (0, 0, 1):
        env.reset(observations(), seed=seed)
        runs.append(env.step(actions)[1]["frames"])
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])
    assert env.sampler.cfg.method == "few_step_flow" and env.sampler.cfg.num_steps == 2
    clip = {OBS_IMAGE: torch.randint(0, 256, (2, 5, 3, 96, 96), dtype=torch.uint8),
            OBS_STATE: torch.rand(2, 5, 2) * 512, ACTION: torch.rand(2, 5, 2) * 512}  # fmt: skip
    losses = unroll_losses(env.model, clip, own_predictions=True, moving_weight=10, moving_threshold=0.1)
    losses["frame"].backward()
    assert env.model.stem.weight.grad.abs().sum() > 0 and torch.isfinite(losses["frame"])


def test_checkpoint_round_trip_is_exact(tmp_path):
    model = trained_weights(
        PixelWorldModel(PixelWorldModelConfig(**TINY, action_offset=3.0, delta_scale=7.0))
    )
    save_world_model(tmp_path / "release", pixel=model, extra={"training": {"steps": 1}})
    env = PixelImaginedEnv.from_checkpoint(
        tmp_path / "release", expected_action_dim=2, expected_image_size=96
    )
    assert env.model.cfg == model.cfg
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(env.model.state_dict()[name], tensor, rtol=0, atol=0)
    env.reset(observations())
    obs, info = env.step(np.full((3, 2, 2), 200, np.float32))
    assert obs[OBS_IMAGE].shape == (3, 96, 96, 3) and obs[OBS_IMAGE].dtype == np.uint8
    assert info["frames"].shape == (3, 2, 96, 96, 3) and info["states"].shape == (3, 2, 2)


def test_load_env_refuses_sampler_settings_for_the_pixel_model(tmp_path):
    from dojo_bench.core.errors import DojoError
    from dojo_bench.verbs.inputs import load_env

    save_world_model(tmp_path / "release", pixel=PixelWorldModel(PixelWorldModelConfig(**TINY)))
    assert isinstance(load_env(tmp_path / "release", "cpu", {}, 0), PixelImaginedEnv)
    with pytest.raises(DojoError, match="sampler settings do not apply"):
        load_env(tmp_path / "release", "cpu", {"num_steps": 4}, 0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"channels": (12, 16)}, "multiples of 8"),
        ({"image_size": 90}, "divisible"),
        ({"action_dim": 3}, "action_dim = state_dim = 2"),
        ({"num_context_frames": 0}, "num_context_frames"),
        ({"delta_scale": 0.0}, "positive"),
        ({"sampling_steps": -1}, "sampling_steps"),
    ],
)
def test_bad_configs_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        PixelWorldModelConfig(**{**TINY, **settings})


def dojo_clips(episodes=12, steps=24, length=4):
    """Clips (B, length, ...) of real dojo frames under random targets near the agent: every step rendered."""
    rng = np.random.default_rng(0)
    with RealWorlds(get_task("pusht_bench"), render_frames=True) as world:
        obs = world.reset(list(range(episodes)))
        targets = obs[OBS_STATE][:, None] + rng.normal(0, 30, (episodes, steps, 2)).astype(np.float32)
        states = [obs[OBS_STATE]]
        images = [obs[OBS_IMAGE]]
        for k in range(steps):
            obs, info = world.step(targets[:, k : k + 1])
            images.append(info["frames"][:, 0])
            states.append(obs[OBS_STATE])
    images = torch.from_numpy(np.stack(images, 1)).permute(0, 1, 4, 2, 3)  # (E, steps+1, 3, H, W)
    states = torch.from_numpy(np.stack(states, 1))  # (E, steps+1, 2)
    actions = torch.from_numpy(np.concatenate([targets, targets[:, -1:]], 1))  # action[t] after frame t
    starts = range(0, steps + 1 - length + 1, 2)
    return {
        OBS_IMAGE: torch.cat([images[:, s : s + length] for s in starts]),
        OBS_STATE: torch.cat([states[:, s : s + length] for s in starts]),
        ACTION: torch.cat([actions[:, s : s + length] for s in starts]),
    }


def test_tiny_cpu_fit_beats_copy_last_on_the_agent_and_needs_the_actions(one_thread):
    clips = dojo_clips()
    changes = (clips[OBS_STATE][:, 1:] - clips[OBS_STATE][:, :-1]).reshape(-1, 2)
    relative = (clips[ACTION] - clips[OBS_STATE]).reshape(-1, 2)
    cfg = PixelWorldModelConfig(num_context_frames=2, channels=(16, 32), cond_dim=32, state_hidden=32,
                                action_offset=float(relative.mean()), action_scale=float(relative.std()),
                                delta_scale=float(changes.std()))  # fmt: skip
    torch.manual_seed(0)
    model = PixelWorldModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    n = len(clips[OBS_IMAGE])
    for step in range(250):
        index = torch.randint(0, n, (16,))
        batch = {k: v[index] for k, v in clips.items()}
        losses = unroll_losses(
            model, batch, own_predictions=step > 120, moving_weight=10, moving_threshold=0.1
        )
        optimizer.zero_grad()
        (losses["frame"] + losses["state"]).backward()
        optimizer.step()

    def agent_error(actions):
        frames = clips[OBS_IMAGE].float() / 255
        with torch.no_grad():
            frame, _ = model.step(frames[:, :2], clips[OBS_STATE][:, :2], actions)
        predicted = (frame * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        real = clips[OBS_IMAGE][:, 2].permute(0, 2, 3, 1).numpy()
        return np.nanmean(np.linalg.norm(agent_position(predicted) - agent_position(real), axis=1))

    copy_last = clips[OBS_IMAGE][:, 1].permute(0, 2, 3, 1).numpy()
    real = clips[OBS_IMAGE][:, 2].permute(0, 2, 3, 1).numpy()
    copy_error = np.nanmean(np.linalg.norm(agent_position(copy_last) - agent_position(real), axis=1))
    model_error = agent_error(clips[ACTION][:, 1])
    shuffled_error = agent_error(
        clips[ACTION][torch.randperm(n, generator=torch.Generator().manual_seed(0)), 1]
    )
    # Measured (1 thread): 9.7 against copy-last's 12.9 and shuffled actions' 14.4 arena units.
    assert model_error < 0.85 * copy_error, (model_error, copy_error)
    assert shuffled_error > 1.3 * model_error, (shuffled_error, model_error)


def test_bench_measures_the_pixel_model_imagining_and_refuses_training(tmp_path, capsys):
    import json

    from dojo_bench.cli import main

    save_world_model(tmp_path / "release", pixel=PixelWorldModel(PixelWorldModelConfig(**TINY)))
    args = ["bench", "what=imagine", f"release={tmp_path / 'release'}", f"out={tmp_path / 'b'}", "imagine_batches=[2]",
            "imagine_chunks=2"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert (
        result["imagine"]["sampler"]["method"] == "one_pass"
        and result["imagine"]["batches"]["2"]["frames"] == 4
    )
    assert main(["bench", "what=train", f"release={tmp_path / 'release'}", f"out={tmp_path / 'c'}"]) == 1
    assert "bench it with what=imagine" in capsys.readouterr().err


def test_init_fine_tunes_from_a_release_and_refuses_another_kind_before_writing(
    tiny_robot_run, tmp_path, capsys
):
    from dojo_bench.cli import main

    data, _, _ = tiny_robot_run
    start = PixelWorldModel(PixelWorldModelConfig(**TINY, action_offset=5.0, delta_scale=3.0))
    save_world_model(tmp_path / "start", pixel=trained_weights(start))
    args = ["train", "stage=pixel_world_model", "size=tiny", f"data={data}", "clip_length=4", "device=cpu"]
    assert main([*args, f"out={tmp_path / 'ft'}", f"init={tmp_path / 'start'}"]) == 0
    tuned = PixelImaginedEnv.from_checkpoint(tmp_path / "ft" / "release").model
    assert (
        tuned.cfg == start.cfg
    )  # the architecture and the normalisation of the release, not the tiny preset's
    # pixel.model.warp=true adds the displacement head to a release without one; the rest starts from its weights
    assert main([*args, f"out={tmp_path / 'warp'}", f"init={tmp_path / 'start'}", "pixel.model.warp=true",
                 "max_steps=1", "learning_rate=1e-9"]) == 0  # fmt: skip
    warped = PixelImaginedEnv.from_checkpoint(tmp_path / "warp" / "release").model
    assert warped.cfg.warp and {k for k in warped.state_dict()} - {k for k in start.state_dict()} == {
        "displacement.weight",
        "displacement.bias",
    }
    torch.testing.assert_close(warped.stem.weight, start.stem.weight, rtol=0, atol=1e-6)
    other = tmp_path / "not_pixel"
    other.mkdir()
    (other / "config.json").write_text('{"format": "something-else"}')
    assert main([*args, f"out={tmp_path / 'bad'}", f"init={other}"]) == 1
    assert "init=" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_free_steps_score_only_the_steps_after_a_prefix_without_gradient():
    torch.manual_seed(0)
    model = trained_weights(PixelWorldModel(PixelWorldModelConfig(**TINY)))
    b, length = 2, 8
    batch = {
        OBS_IMAGE: torch.randint(0, 256, (b, length, 3, 96, 96), dtype=torch.uint8),
        OBS_STATE: torch.rand(b, length, 2) * 400 + 50,
        ACTION: torch.rand(b, length, 2) * 400 + 50,
    }
    torch.manual_seed(1)
    free = unroll_losses(model, batch, True, 10.0, 0.1, free_steps=4)
    free["frame"].backward()
    assert torch.isfinite(free["frame"]) and all(
        p.grad is not None for p in model.parameters() if p.requires_grad
    )
    # A prefix of 0 (drawn when free_steps=0) scores the first 2 steps: the same as a clip cut after them.
    plain = unroll_losses(model, {k: v[:, :4] for k, v in batch.items()}, True, 10.0, 0.1)
    zero = unroll_losses(model, {k: v[:, :4] for k, v in batch.items()}, True, 10.0, 0.1, free_steps=0)
    assert torch.equal(plain["frame"], zero["frame"])
    with pytest.raises(ValueError, match="no loss step"):
        unroll_losses(model, batch, True, 10.0, 0.1, free_steps=6)
