"""``stage=value_model``: the value model on every frame of a data run's datasets, labelled by the dojo's ground truth.

``LitValueModel`` (dojo_bench/value/value_model.py) on every frame of the data run's train datasets, labels
``gt.progress`` and ``gt.success``, validated on its validation datasets. The same Lightning loop, devices, resume and ``run.json`` as the other stages (train/fit.py); the release
(``out/release``: config.json + model.safetensors) is what ``load_value_model`` reads.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from dojo_bench.core.errors import UsageError
from dojo_bench.core.keys import (
    GT_PROGRESS,
    GT_SUCCESS,
    OBS_IMAGE,
)
from dojo_bench.train.config import RELEASE_DIR, TrainConfig
from dojo_bench.train.fit import fit_loaders, resume_record
from dojo_bench.value.value_model import FrameDataset, LitValueModel, ValueModelConfig


def _frame_sets(roots: list[str], cfg: TrainConfig, image_size: int, limit: int | None):
    """FrameDatasets over ``roots``, keeping the first ``limit`` episodes overall (None: all)."""
    sets, left = [], limit
    for root in roots:
        episodes = None
        if left is not None:
            probe = FrameDataset(root, image_size, cache_dir=cfg.cache_dir)
            episodes = sorted(set(probe.labels.episode.tolist()))[:left]
            left -= len(episodes)
            if not episodes:
                break
        sets.append(FrameDataset(root, image_size, episodes=episodes, cache_dir=cfg.cache_dir))
    return sets


def evaluate_value_model(
    model, dataset, train_mean: float | None = None, batch_size: int = 64
) -> dict[str, float]:
    """Progress MAE and success accuracy on ``dataset``, beside the MAE of always predicting ``train_mean`` (the
    training frames' mean progress; None: the evaluated frames' own mean, an optimistic baseline)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    errors, hits, targets = [], [], []
    for batch in loader:
        progress, success = model.score(batch[OBS_IMAGE])
        errors.append((progress - batch[GT_PROGRESS]).abs())
        hits.append(((success > 0.5).float() == batch[GT_SUCCESS]).float())
        targets.append(batch[GT_PROGRESS])
    if not errors:
        return {}
    target = torch.cat(targets)
    baseline = float(target.mean()) if train_mean is None else train_mean
    return {
        "progress_mae": round(float(torch.cat(errors).mean()), 5),
        "mean_baseline_mae": round(float((target - baseline).abs().mean()), 5),
        "success_accuracy": round(float(torch.cat(hits).mean()), 5),
        "frames": len(target),
    }


class ValueInputs(NamedTuple):
    model_cfg: ValueModelConfig
    train_sets: list[FrameDataset]
    val_sets: list[FrameDataset]
    train_roots: list[str]
    validation_roots: list[str]


def value_model_inputs(cfg: TrainConfig, train_roots, validation_roots):
    """(the model's config, train frame sets, validation frame sets): the datasets read and their frames decoded
    (into the user cache), so damaged data is one line before out is written."""
    extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
    try:
        model_cfg = ValueModelConfig(**{**cfg.value_model, **extra})
    except (TypeError, ValueError) as error:
        raise UsageError(f"bad value_model settings: {error}") from None
    train_sets = _frame_sets(train_roots, cfg, model_cfg.image_size, cfg.max_episodes)
    val_sets = _frame_sets(validation_roots, cfg, model_cfg.image_size, None)
    return ValueInputs(model_cfg, train_sets, val_sets, list(train_roots), list(validation_roots))


def run_value_model_stage(cfg: TrainConfig, run, inputs, callbacks=None) -> dict[str, Any]:
    """Train the value model on ``inputs`` (``value_model_inputs``) into ``run``'s out dir."""
    out = run.path
    model_cfg, train_sets, val_sets, train_roots, validation_roots = inputs
    train_set = ConcatDataset(train_sets)
    val_set = ConcatDataset(val_sets) if val_sets and sum(map(len, val_sets)) else None
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = LitValueModel(model_cfg)
    train_loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(train_set) >= cfg.batch_size,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    val_loader = (
        DataLoader(val_set, batch_size=cfg.batch_size, num_workers=cfg.num_workers) if val_set else None
    )
    trainer, start, seconds, accelerator, precision = fit_loaders(
        cfg, module, train_loader, val_loader, out, run.resumed, callbacks
    )
    release = out / RELEASE_DIR
    provenance = {
        "stage": "value_model",
        "steps": trainer.global_step,
        "data": train_roots,
        "validation": validation_roots,
        "seed": cfg.seed,
        "max_episodes": cfg.max_episodes,
        "labels": "real frames, dojo ground truth (gt.progress, gt.success)",
        "resume": resume_record(start),
    }
    module.export(release, extra={"training": provenance})
    model = module.model.eval()
    train_mean = float(np.mean([s.labels.progress[s.indices].mean() for s in train_sets if len(s)]))
    steps_now = trainer.global_step - start
    return {
        "stage": "value_model",
        "release": str(release),
        "checkpoint": str(out / "checkpoints" / "last.ckpt"),
        "steps": trainer.global_step,
        "resumed_from_step": start,
        "resume": resume_record(start),
        "seconds": round(seconds, 2),
        "samples_per_second": round(steps_now * cfg.batch_size / seconds, 2) if seconds > 0 else None,
        "accelerator": accelerator,
        "precision": precision,
        "train_frames": len(train_set),
        "validation_frames": len(val_set) if val_set is not None else 0,
        "validation": evaluate_value_model(model, val_set, train_mean) if val_set is not None else {},
        "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()},
    }
