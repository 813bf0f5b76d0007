"""``stage=pixel_world_model``: the pixel world model for CPUs, normalised by its training data, optionally started
from a release's weights (``init=``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from dojo_bench.core.errors import DojoError
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.inputs import config_error
from world_model.checkpoint import CheckpointError, load_world_model
from world_model.lit_pixel_model import LitPixelWorldModel, LitPixelWorldModelConfig


def build_pixel_module(cfg: TrainConfig, datamodule):
    """The pixel world model's Lightning module, normalised by the training data (relative actions, states and
    one step's state change)."""
    changes = [
        np.diff(part.states[first:end], axis=0)
        for part in datamodule.train_parts
        for first, end in part.episode_bounds
        if end - first > 1
    ]
    delta_scale = float(max(np.concatenate(changes).std(), 1e-3)) if changes else 1.0
    settings = dict(cfg.pixel)
    asked = settings.pop("model", {})
    model = {
        **asked,
        **datamodule.stats,
        "delta_scale": delta_scale,
        "action_dim": datamodule.action_dim,
        "state_dim": datamodule.state_dim,
        "image_size": datamodule.cfg.image_size,
    }
    start = load_pixel_release(cfg.init, datamodule) if cfg.init else None
    adds_head = start is not None and bool(asked.get("warp")) and not start.cfg.warp
    if start is not None:
        # Fine-tuning keeps the architecture and the normalisation, but may add the displacement head
        # (zero-initialised, so the model starts from the release's predictions).
        model = {**dataclasses.asdict(start.cfg), "warp": start.cfg.warp or adds_head}
    try:
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        module = LitPixelWorldModel(
            LitPixelWorldModelConfig(**{**settings, **extra, "model": model, "max_steps": cfg.max_steps})
        )
    except (TypeError, ValueError) as error:
        raise config_error(error) from None
    if start is not None:
        module.model.load_state_dict(start.state_dict(), strict=not adds_head)  # only the new head is missing
    return module


def load_pixel_release(path: str, datamodule):
    """The pixel world model of a release (``init=``), checked against the data; one DojoError line otherwise."""
    try:
        return load_world_model(
            path,
            expected_action_dim=datamodule.action_dim,
            expected_state_dim=datamodule.state_dim,
            expected_image_size=datamodule.cfg.image_size,
            require=("pixel",),
        ).pixel
    except CheckpointError as error:
        raise DojoError(f"init={path}: {error}") from None
