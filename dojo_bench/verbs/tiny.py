"""Tiny inputs for size=tiny runs that were given none: the only verb code that trains. The CLI (and the demo) call
it; the analysis verbs (evaluate, plan, wm-eval) take what it builds as a function, so they never import training."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

from dojo_bench.core.run_dir import is_finished
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.inputs import record_tiny_data
from dojo_bench.train.run import run_train
from dojo_bench.verbs.inputs import TinyInputs, TinyModel


def build_tiny_inputs(train_config: TrainConfig, seed: int, inputs: Path) -> tuple[list[str], str, str]:
    """size=tiny: one tiny data run, two tiny policies (other seeds and steps), a world model and a value
    model under ``inputs/`` (finished runs are reused on resume). Returns (policies, world model, value model)."""
    data = record_tiny_data(dataclasses.replace(train_config, out=str(inputs)), inputs / "data")

    def train(name: str, **changes: Any) -> Path:
        path = inputs / name
        if not is_finished(path):
            config = dataclasses.replace(train_config, out=str(path), data=str(data), **changes)
            run_train(config, overwrite=False)
        return path

    policies = []
    for name, policy_seed, steps in (("policy_a", seed, train_config.max_steps), ("policy_b", seed + 1, 4)):
        run = train(name, stage="policy", seed=policy_seed, max_steps=steps, save_steps=None)
        policies.append(str(run / "checkpoints" / f"step-{steps}" / "pretrained_model"))
    world_model = train("world_model", stage="world_model")
    value_model = train("value_model", stage="value_model")
    return policies, str(world_model / "release"), str(value_model / "release")


def train_tiny_model(train_config: TrainConfig, out: Path) -> tuple[Path, list[str]]:
    """size=tiny without release=: a tiny ``dojo-bench train`` run into out/model (reused when finished)."""
    path = out / "model"
    if not is_finished(path):
        run_train(dataclasses.replace(train_config, out=str(path)), overwrite=False)
    return path / "release", [str(path / "data")]


def tiny_inputs(train_config: TrainConfig, seed: int) -> TinyInputs:
    """The builder evaluate and plan call for size=tiny without inputs."""
    return partial(build_tiny_inputs, train_config, seed)


def tiny_model(train_config: TrainConfig) -> TinyModel:
    """The builder wm-eval calls for size=tiny without release=."""
    return partial(train_tiny_model, train_config)
