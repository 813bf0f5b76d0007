"""``stage=pixel_world_model``: the pixel world model for CPUs, normalised by its training data, optionally started
from a release's weights (``init=``), which may gain the displacement head (``pixel.model.warp=true``) or the
object's pose (``pixel.model.object_shape=tee``: the dynamics head is trained on the data's states first, and the
U-Net's first layer gains two zero-weighted silhouette channels)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dojo_bench.core.errors import DojoError
from dojo_bench.core.progress import make_progress
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.inputs import config_error
from world_model.checkpoint import CheckpointError, load_world_model
from world_model.lit_pixel_model import LitPixelWorldModel, LitPixelWorldModelConfig
from world_model.object_pose import fit_object_dynamics
from world_model.pixel_model import PixelWorldModel

ADDABLE = ("warp", "object_shape")  # what init= may add to a release's architecture


def build_pixel_module(cfg: TrainConfig, datamodule, resuming: bool = False):
    """The pixel world model's Lightning module, normalised by the training data (relative actions, states and
    one step's state change). A new object dynamics head is trained on the data's states here, unless the run
    resumes (its checkpoint holds the head)."""
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
    if start is not None:
        # Fine-tuning keeps the architecture and the normalisation, but may add the displacement head or the
        # object's pose (zero-initialised, so the model starts from the release's predictions).
        adds = {k: asked[k] for k in ADDABLE if asked.get(k) and not getattr(start.cfg, k)}
        model = {**dataclasses.asdict(start.cfg), **adds}
    try:
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        module = LitPixelWorldModel(
            LitPixelWorldModelConfig(**{**settings, **extra, "model": model, "max_steps": cfg.max_steps})
        )
    except (TypeError, ValueError) as error:
        raise config_error(error) from None
    if start is not None:
        start_from(module.model, start)
    new_object = module.model.cfg.has_object and (start is None or not start.cfg.has_object)
    if new_object and not resuming and module.cfg.object_pretrain_steps:
        pretrain_object_dynamics(module, datamodule, cfg.seed)
    return module


def start_from(model: PixelWorldModel, start: PixelWorldModel) -> None:
    """Load a release's weights into ``model``, which may have heads the release lacks (left as initialised) and,
    with a new object, two more input channels (their first-layer weights zero: the model predicts as before)."""
    weights = dict(start.state_dict())
    stem = weights["stem.weight"]  # (C0, in * u * u, 1, 1)
    wanted = model.stem.weight.shape[1]
    if stem.shape[1] != wanted:
        # the silhouettes sit after the frames and the blob maps, before a stochastic model's noisy change
        cells = model.cfg.unshuffle**2
        before = (model.cfg.in_channels - 2 - (3 if model.cfg.stochastic else 0)) * cells
        added = stem.new_zeros(stem.shape[0], wanted - stem.shape[1], *stem.shape[2:])
        weights["stem.weight"] = torch.cat([stem[:, :before], added, stem[:, before:]], 1)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    new_heads = ("displacement.", "object_dynamics.")
    if unexpected or any(not key.startswith(new_heads) for key in missing):
        raise DojoError(f"init= weights do not fit the model: missing {missing}, unexpected {unexpected}")


def pretrain_object_dynamics(module: LitPixelWorldModel, datamodule, seed: int) -> None:
    """``fit_object_dynamics`` on every training episode's agent positions, object poses and actions."""
    episodes = [
        np.concatenate([part.states[a:b], part.poses[a:b], part.actions[a:b]], 1)
        for part in datamodule.train_parts
        for a, b in part.episode_bounds
    ]
    steps = module.cfg.object_pretrain_steps
    with make_progress() as bar:
        task = bar.add_task("object dynamics (states only)", total=steps)

        def report(step: int, loss: float) -> None:
            bar.update(task, completed=step + 1, description=f"object dynamics (states only) loss {loss:.3f}")

        module.model.object_dynamics.requires_grad_(True)  # frozen again for the fit, below
        try:
            with torch.enable_grad():
                fit_object_dynamics(
                    module.model.object_dynamics,
                    episodes,
                    steps=steps,
                    unroll=module.cfg.object_unroll,
                    seed=seed,
                    progress=report,
                )
        except ValueError as error:
            raise DojoError(f"pixel.model.object_shape: {error}") from None
        finally:
            module.model.object_dynamics.requires_grad_(False)


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
