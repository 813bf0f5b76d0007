"""Fixtures for world-model tests: tiny configs and a synthetic, action-driven moving-square world.

The moving-square world mimics pusht's control: the state is the square's centre (x, y) in [-1, 1], the action is
an absolute target position, and each step moves the square toward the target by at most ``max_step``. Frames are
rendered from the state, so the next frame is a deterministic function of the current frame and the action.
"""

from __future__ import annotations

import pytest
import torch

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from world_model.dit import DiTConfig, make_dit_config
from world_model.tokenizer import TokenizerConfig


def render_squares(states: torch.Tensor, image_size: int, square_size: int) -> torch.Tensor:
    """States (..., 2) in [-1, 1] -> uint8 images (..., 3, H, W): a white square on a dark blue background."""
    lead = states.shape[:-1]
    flat = states.reshape(-1, 2)
    half = square_size / 2
    centers = (flat + 1) / 2 * (
        image_size - square_size
    ) + half  # pixel centres, square stays inside the image
    coords = torch.arange(image_size, dtype=torch.float32) + 0.5
    inside_x = (coords[None, :] - centers[:, :1]).abs() <= half  # (N, W)
    inside_y = (coords[None, :] - centers[:, 1:]).abs() <= half  # (N, H)
    mask = inside_y[:, :, None] & inside_x[:, None, :]  # (N, H, W)
    images = torch.empty(flat.shape[0], 3, image_size, image_size, dtype=torch.uint8)
    images[:, 0], images[:, 1], images[:, 2] = 20, 30, 90
    for channel in range(3):
        images[:, channel][mask] = 255
    return images.reshape(*lead, 3, image_size, image_size)


def make_moving_squares(
    num_clips: int,
    num_frames: int,
    *,
    seed: int,
    image_size: int = 96,
    square_size: int = 24,
    max_step: float = 0.3,
) -> dict[str, torch.Tensor]:
    """A batch dict (batch.py contract) of random clips; action[t] moves the square from frame t to frame t + 1."""
    g = torch.Generator().manual_seed(seed)
    state = torch.rand(num_clips, 2, generator=g) * 1.6 - 0.8
    states, actions = [], []
    for _ in range(num_frames):
        target = (state + (torch.rand(num_clips, 2, generator=g) * 2 - 1) * max_step * 1.5).clamp(-1, 1)
        states.append(state)
        actions.append(target)
        state = (state + (target - state).clamp(-max_step, max_step)).clamp(-1, 1)
    states_t = torch.stack(states, dim=1)  # (B, T, 2)
    return {
        OBS_IMAGE: render_squares(states_t, image_size, square_size),
        ACTION: torch.stack(actions, dim=1),
        OBS_STATE: states_t,
    }


@pytest.fixture
def moving_squares():
    return make_moving_squares


@pytest.fixture
def tiny_tokenizer_config() -> TokenizerConfig:
    return TokenizerConfig(image_size=96, latent_channels=4, spatial_downsample=8, base_channels=8)


@pytest.fixture
def tiny_dit_config() -> DiTConfig:
    return make_dit_config("tiny", latent_channels=4, latent_size=12, max_latent_frames=8)
