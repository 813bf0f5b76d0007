"""ImaginedEnv: the real env's keys, shapes and dtypes; determinism under a seed; checkpoint loading errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from world_model.checkpoint import CheckpointError, save_world_model
from world_model.dit import DiT, make_dit_config
from world_model.imagined_env import ImaginedEnv
from world_model.model import WorldModelConfig
from world_model.sampler import SamplerConfig
from world_model.tokenizer import TokenizerConfig, VideoTokenizer


def make_parts(seed: int = 0):
    torch.manual_seed(seed)
    tokenizer = VideoTokenizer(
        TokenizerConfig(latent_channels=4, base_channels=8, num_res_blocks=0, temporal_compression=4)
    )
    dit = DiT(
        make_dit_config("tiny", latent_channels=4, latent_size=12, action_chunk_size=4, max_latent_frames=4)
    )
    # Non-zero output layers, so that actions and states reach the prediction of an untrained model.
    for p in dit.parameters():
        torch.nn.init.normal_(p, std=0.05)
    config = WorldModelConfig(
        dit=dit.cfg,
        sampler=SamplerConfig(num_steps=3),
        action_offset=0.0,
        action_scale=50.0,
        state_offset=250.0,
        state_scale=100.0,
    )
    return tokenizer, dit, config


def observations(batch: int = 2, channels_first: bool = False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, 96, 96, 3), dtype=np.uint8)
    if channels_first:
        images = images.transpose(0, 3, 1, 2).copy()
    return {OBS_IMAGE: images, OBS_STATE: rng.uniform(50, 450, (batch, 2)).astype(np.float32)}


@pytest.fixture(scope="module")
def env():
    tokenizer, dit, config = make_parts()
    return ImaginedEnv(tokenizer, dit, config, seed=0)


def test_keys_shapes_dtypes(env):
    obs = env.reset(observations(channels_first=True))
    assert set(obs) == {OBS_IMAGE, OBS_STATE}
    assert obs[OBS_IMAGE].shape == (2, 96, 96, 3) and obs[OBS_IMAGE].dtype == np.uint8
    assert obs[OBS_STATE].shape == (2, 2) and obs[OBS_STATE].dtype == np.float32
    obs, info = env.step(np.full((2, 8, 2), 200.0, dtype=np.float32))
    assert obs[OBS_IMAGE].shape == (2, 96, 96, 3) and obs[OBS_IMAGE].dtype == np.uint8
    assert obs[OBS_STATE].shape == (2, 2) and obs[OBS_STATE].dtype == np.float32
    assert info["frames"].shape == (2, 8, 96, 96, 3) and info["frames"].dtype == np.uint8
    assert info["states"].shape == (2, 8, 2) and info["steps"] == 8
    np.testing.assert_array_equal(obs[OBS_IMAGE], info["frames"][:, -1])
    with pytest.raises(ValueError, match="multiple of 4"):
        env.step(np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match=r"\(B, 96, 96, 3\)"):
        env.reset({OBS_IMAGE: np.zeros((2, 64, 64, 3), np.uint8), OBS_STATE: np.zeros((2, 2), np.float32)})


def test_deterministic_under_seed(env):
    actions = np.random.default_rng(1).uniform(0, 500, (2, 8, 2)).astype(np.float32)

    def rollout(seed: int, split: bool = False):
        env.reset(observations(), seed=seed)
        if split:  # two chunks one at a time draw the same noise as both at once
            env.step(actions[:, :4])
            return env.step(actions[:, 4:])
        return env.step(actions)

    first, info = rollout(3)
    again, _ = rollout(3)
    split, _ = rollout(3, split=True)
    other, _ = rollout(4)
    for key in (OBS_IMAGE, OBS_STATE):
        np.testing.assert_array_equal(first[key], again[key])
        np.testing.assert_array_equal(first[key], split[key])
    assert not np.array_equal(first[OBS_IMAGE], other[OBS_IMAGE])
    # relative actions: the second chunk is read relative to the model's own predicted state
    env.reset(observations(), seed=3)
    env.step(actions[:, :4])
    env._state = env._state + 100.0
    shifted, _ = env.step(actions[:, 4:])
    assert not np.array_equal(shifted[OBS_STATE], first[OBS_STATE])


def test_from_checkpoint_and_mismatches(tmp_path):
    tokenizer, dit, config = make_parts()
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "dit"}
    save_world_model(tmp_path, tokenizer=tokenizer, dit=dit, extra={"world_model": settings})
    env = ImaginedEnv.from_checkpoint(tmp_path, expected_action_dim=2, expected_image_size=96, seed=0)
    reference = ImaginedEnv(tokenizer, dit, config, seed=0)
    actions = np.full((2, 4, 2), 300.0, dtype=np.float32)
    for e in (env, reference):
        e.reset(observations())
    np.testing.assert_array_equal(env.step(actions)[0][OBS_IMAGE], reference.step(actions)[0][OBS_IMAGE])
    with pytest.raises(CheckpointError, match="takes 2-D actions but the caller provides 7-D"):
        ImaginedEnv.from_checkpoint(tmp_path, expected_action_dim=7)
    with pytest.raises(CheckpointError, match="built for 96x96 frames but the caller provides 64x64"):
        ImaginedEnv.from_checkpoint(tmp_path, expected_image_size=64)
    tokenizer_only = tmp_path / "tok"
    save_world_model(tokenizer_only, tokenizer=tokenizer)
    with pytest.raises(CheckpointError, match="no \\['dit'\\]"):
        ImaginedEnv.from_checkpoint(tokenizer_only)
