"""Shared fixtures: tiny datasets made on the spot (nothing is downloaded)."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
# Decoded-frame caches of the tests' datasets go to a folder of this session, not the user's cache.
os.environ["DOJO_BENCH_CACHE"] = tempfile.mkdtemp(prefix="dojo-bench-test-cache-")


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


@pytest.fixture(scope="session")
def tiny_evaluate_run(tmp_path_factory):
    """One self-sufficient tiny evaluation per session (it builds its own data, policies, world model and value
    model): ``(exit code, out dir, args)``. Shared by the evaluate and report tests; tests that change it must leave
    it a finished run with the same results."""
    import torch

    from dojo_bench.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("evaluate") / "run"
        args = ["evaluate", "size=tiny", "device=cpu", f"out={out}"]
        return main(args), out, args
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_lerobot_checkpoints(tiny_robot_run, tmp_path_factory):
    """{policy type: pretrained_model folder} of a tiny lerobot Diffusion Policy and a tiny ACT, each trained for 2
    steps on the tiny robot data by lerobot's own trainer (``lerobot_train.train``), as ``lerobot-train`` writes
    them (config, weights, processor files). A few seconds each."""
    import torch

    from policies.lerobot_train import LerobotTrainConfig, train

    out, _, _ = tiny_robot_run
    root = tmp_path_factory.mktemp("lerobot")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {
            policy_type: train(
                LerobotTrainConfig(
                    data=str(out / "train"),
                    out=str(root / policy_type),
                    policy_type=policy_type,
                    size="tiny",
                    steps=2,
                    batch_size=4,
                    log_freq=1,
                ),  # fmt: skip
                quiet=True,
            )
            for policy_type in ("diffusion", "act")
        }
    finally:
        torch.set_num_threads(threads)
