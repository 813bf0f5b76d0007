"""Shared fixtures: tiny datasets made on the spot (nothing is downloaded)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(scope="session")
def tiny_robot_run(tmp_path_factory):
    """A finished tiny robot data run: out dir with train/ and validation/ datasets."""
    from dojo_bench.dojo.generate import run_data
    from dojo_bench.dojo.recording import DataConfig

    out = tmp_path_factory.mktemp("robot") / "run"
    config = DataConfig(kind="robot", out=str(out), episodes=3, max_steps=12, workers=1, seed=3)
    summary = run_data(config)
    return out, config, summary


@pytest.fixture
def one_thread():
    """Run a test on one torch thread (CI has two cores), restoring the setting afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
