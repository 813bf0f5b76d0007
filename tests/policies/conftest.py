"""Fixtures for policy tests: tiny pixel policies and their checkpoints, made on the spot."""

from __future__ import annotations

import pytest
import torch

from dojo_bench.core.keys import ACTION, OBS_IMAGE, OBS_STATE
from policies.loading import save_pretrained_model
from policies.pixel_policy import make_pixel_policy

# Small enough to build, save and run in milliseconds on one CPU thread.
TINY = {"channels": (4, 8, 8, 8), "hidden_dim": 16, "chunk_size": 6, "n_action_steps": 4}


@pytest.fixture
def tiny() -> dict:
    """PixelConfig keyword arguments of a tiny policy."""
    return dict(TINY)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every policy test runs on one torch thread (the shared fixture in tests/conftest.py)."""


@pytest.fixture
def stats() -> dict[str, dict[str, torch.Tensor]]:
    """lerobot-style dataset stats for pusht: state and action in the 0-512 px arena."""
    arena = {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}
    return {OBS_STATE: dict(arena), ACTION: dict(arena)}


@pytest.fixture
def observation() -> dict[str, torch.Tensor]:
    """A fixed batch of 3 env observations in env units."""
    generator = torch.Generator().manual_seed(0)
    return {
        OBS_IMAGE: torch.rand(3, 3, 96, 96, generator=generator),
        OBS_STATE: torch.rand(3, 2, generator=generator) * 512,
    }


@pytest.fixture
def make_checkpoint(tmp_path, stats):
    """make_checkpoint(name, seed=0, **config) -> (folder, policy): a saved tiny pixel policy."""

    def make(name: str = "policy", seed: int = 0, **config):
        torch.manual_seed(seed)
        policy, preprocessor, postprocessor = make_pixel_policy(stats, device="cpu", **{**TINY, **config})
        folder = save_pretrained_model(
            policy, preprocessor, postprocessor, tmp_path / name / "pretrained_model"
        )
        return folder, policy

    return make
