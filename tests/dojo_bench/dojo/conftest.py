"""Fixtures of the dojo tests: a tiny learned policy and a DAgger recording it drives."""

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


@pytest.fixture
def dagger_run(tmp_path, learner_checkpoint):
    """A finished DAgger data run (2 episodes of 8 frames, the learner drives every chunk): (out, summary)."""
    from dojo_bench.dojo.generate import run_data
    from dojo_bench.dojo.recording import DataConfig

    out = tmp_path / "dagger"
    config = DataConfig(
        kind="robot",
        policy="expert",
        learner=str(learner_checkpoint),
        out=str(out),
        episodes=2,
        max_steps=7,
        workers=1,
        validation_fraction=0,
        seed=5,
    )
    return out, run_data(config)
