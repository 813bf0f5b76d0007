"""Fixtures of the dojo tests: a tiny learned policy for DAgger recordings."""

from __future__ import annotations

import pytest
import torch

from dojo_bench.core.keys import ACTION, OBS_STATE


@pytest.fixture
def learner_checkpoint(tmp_path, one_thread):
    """A tiny untrained pixel policy (chunks of 4): a learner that is not the expert."""
    from policies.loading import save_pretrained_model
    from policies.pixel_policy import make_pixel_policy

    arena = {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}
    torch.manual_seed(0)
    policy, pre, post = make_pixel_policy(
        {OBS_STATE: dict(arena), ACTION: dict(arena)},
        device="cpu",
        channels=(4, 8),
        hidden_dim=16,
        chunk_size=4,
        n_action_steps=4,
    )
    return save_pretrained_model(policy, pre, post, tmp_path / "learner" / "pretrained_model")
