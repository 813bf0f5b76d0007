"""``stage=policy``: behaviour cloning of the pixel policy on the episodes of one data policy.

``policies.pixel_policy.PixelPolicy`` clones the episodes of one data policy (``policy_episodes=expert``, a name from ``meta/dojo.json`` ``policies``; ``all`` takes every episode), at most
``max_episodes`` of them (the first ones, so smaller zoo members see a subset of the larger ones' data). A LeRobot
``pretrained_model`` folder is written at each of ``save_steps`` (and the last step) under
``out/checkpoints/step-N/pretrained_model``, so one run gives a zoo slice across training steps; data size and
seed are config keys, so several runs span those too. It trains through the shared Lightning fit (train/fit.py):
``LitPolicy`` wraps lerobot's ``PreTrainedPolicy``, whose batches go through its own preprocessor (normalisation)
as lerobot's trainer does, with lerobot's optimiser settings and scheduler preset and the EMA weights beside it.
An interrupted policy run resumes from ``out/checkpoints/last.ckpt`` (weights, EMA, optimiser, scheduler, step).
Labels are ``action``, or ``gt.expert_action`` in datasets that have it (DAgger data, dojo_bench/dojo/dagger.py:
there ``action`` is what the learner executed and the expert's label is the target); ``label_stride`` keeps only
the frames of such datasets where a look-ahead chunk of labels starts.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.files import read_input_json
from dojo_bench.core.keys import (
    ACTION,
    DOJO_META_FILE,
    GT_EXPERT_ACTION,
    GT_POLICY,
    OBS_IMAGE,
    OBS_STATE,
)
from dojo_bench.train.config import CHECKPOINT_DIR, RELEASE_DIR, TrainConfig
from dojo_bench.train.fit import fit_loaders, resolve_accelerator, resume_record
from dojo_bench.value.value_model import read_frame_table
from policies.loading import TRAINING_FILE, save_pretrained_model
from policies.pixel_policy import make_pixel_policy
from world_model.data import check_features, episode_table, load_frame_cache, read_info

POLICY_ALL = "all"


def _policy_index(root: Path, name: str) -> int | None:
    """Index of data policy ``name`` in ``meta/dojo.json`` ``policies`` (None for ``all``)."""
    if name == POLICY_ALL:
        return None
    meta = root / DOJO_META_FILE
    if not meta.is_file():
        raise DojoError(
            f"{root} has no {DOJO_META_FILE}: cannot tell {name} episodes apart (use policy_episodes=all)"
        )
    policies = read_input_json(meta).get("policies", [])
    if name not in policies:
        raise UsageError(
            f"policy_episodes={name!r} is not a policy of {root} (its policies: {', '.join(policies)}, all)"
        )
    return policies.index(name)


def check_policy_episodes(cfg: TrainConfig, roots: list[str]) -> None:
    """Refuse an unknown ``policy_episodes`` before anything is written (UsageError naming the known ones)."""
    for root in roots:
        _policy_index(Path(root), cfg.policy_episodes)


class BCDataset:
    """Behaviour-cloning samples of chosen episodes: frame t, state t and actions t .. t+chunk-1 (padded).

    Items: ``observation.image`` float (3, H, W) in [0, 1], ``observation.state`` (S,), ``action`` (chunk, A)
    in env units, ``action_is_pad`` (chunk,) bool (steps past the episode's end repeat its last action).
    """

    def __init__(
        self,
        roots: list[str],
        policy: str,
        max_episodes: int | None,
        chunk_size: int,
        cache_dir=None,
        label_stride: int = 1,
    ):
        self.chunk_size = chunk_size
        self.roots = [str(r) for r in roots]
        self.frames, self.samples, self.states, self.actions, self.bounds = [], [], [], [], []
        self.episodes: list[tuple[str, int]] = []
        left = max_episodes
        for root in (Path(r) for r in roots):
            info = read_info(root)
            check_features(
                root, info, image_size=info["features"][OBS_IMAGE]["shape"][0], require_actions=True
            )
            wanted = _policy_index(root, policy)
            dagger = GT_EXPERT_ACTION in info["features"]
            label = GT_EXPERT_ACTION if dagger else ACTION
            stride = label_stride if dagger else 1
            table = read_frame_table(
                root, [OBS_STATE, label, GT_POLICY] if wanted is not None else [OBS_STATE, label]
            )
            episodes = table["episode_index"].to_numpy()
            if wanted is not None:
                policy_of = np.stack(table[GT_POLICY].to_numpy()).reshape(len(table), -1)[:, 0]
                chosen = sorted(set(episodes[policy_of == wanted].tolist()))
            else:
                chosen = sorted(set(episodes.tolist()))
            if left is not None:
                chosen = chosen[:left]
                left -= len(chosen)
            if not chosen:
                continue
            self.frames.append(
                np.load(load_frame_cache(root, info, episode_table(root), cache_dir), mmap_mode="r")
            )
            states = np.stack(table[OBS_STATE].to_numpy()).astype(np.float32)
            actions = np.stack(table[label].to_numpy()).astype(np.float32)
            index = table["index"].to_numpy()
            self.states.append(states)
            self.actions.append(actions)
            for episode in chosen:
                rows = np.flatnonzero(episodes == episode)
                first, end = int(rows.min()), int(rows.max()) + 1
                self.episodes.append((str(root), int(episode)))
                for row in range(first, end, stride):
                    self.samples.append((len(self.frames) - 1, int(index[row]), row, end))
            if left == 0:
                break
        if not self.samples:
            raise DojoError(
                f"no {policy} episodes in {', '.join(map(str, roots))}: record some, or use policy_episodes=all"
            )

    def stats(self) -> dict[str, dict[str, Any]]:
        """lerobot-style min/max stats of the chosen frames' states and actions."""
        rows = {}
        for key, arrays in ((OBS_STATE, self.states), (ACTION, self.actions)):
            used = np.concatenate([arrays[p][r : r + 1] for p, _, r, _ in self.samples])
            rows[key] = {"min": torch.from_numpy(used.min(0)), "max": torch.from_numpy(used.max(0))}
        return rows

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        part, frame, row, end = self.samples[i]
        steps = np.arange(row, row + self.chunk_size)
        pad = steps >= end
        actions = self.actions[part][np.minimum(steps, end - 1)]  # (chunk, A)
        image = torch.from_numpy(np.array(self.frames[part][frame])).permute(2, 0, 1).float() / 255.0
        return {
            OBS_IMAGE: image,
            OBS_STATE: torch.from_numpy(self.states[part][row]),
            ACTION: torch.from_numpy(actions),
            "action_is_pad": torch.from_numpy(pad),
        }


def save_steps_of(cfg: TrainConfig) -> list[int]:
    steps = sorted({int(s) for s in (cfg.save_steps or [])} | {cfg.max_steps})
    if steps[0] < 1:
        raise UsageError(f"save_steps must be positive, got {cfg.save_steps}")
    if steps[-1] > cfg.max_steps:
        raise UsageError(f"save_steps {cfg.save_steps} go past max_steps={cfg.max_steps}")
    return steps


def policy_inputs(cfg: TrainConfig, train_roots, validation_roots):
    """(the policy's settings, its behaviour-cloning samples): the datasets read and their frames decoded (into
    the user cache), so damaged data is one line before out is written."""
    settings = dict(cfg.policy)
    if "channels" in settings:
        settings["channels"] = tuple(int(c) for c in settings["channels"])
    if cfg.learning_rate:
        settings["optimizer_lr"] = cfg.learning_rate
    if settings.get("lr_schedule") == "cosine" and not settings.get("lr_decay_steps"):
        settings["lr_decay_steps"] = cfg.max_steps  # decay over the whole run unless told otherwise
    chunk_size = int(settings.get("chunk_size", 8))
    dataset = BCDataset(
        train_roots, cfg.policy_episodes, cfg.max_episodes, chunk_size, cfg.cache_dir, cfg.label_stride
    )
    return settings, dataset


class LitPolicy(L.LightningModule):
    """The pixel policy as a Lightning module: lerobot's loss on preprocessed batches, AdamW with the policy's
    learning rate and weight decay, lerobot's scheduler preset stepped every step, and the weights that are saved:
    the raw ones, or their exponential moving average (``ema_decay`` > 0), kept as the ``ema`` submodule so that
    checkpoints carry it."""

    def __init__(self, policy, preprocessor, max_steps: int):
        super().__init__()
        self.policy = policy
        self.preprocessor = preprocessor  # lerobot's processor pipeline (not a module): normalisation, device
        self.max_steps = max_steps
        decay = policy.config.ema_decay
        self.ema = (
            torch.optim.swa_utils.AveragedModel(
                policy, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay)
            )
            if decay > 0
            else None
        )

    @property
    def saved_policy(self):
        """The policy whose weights are written: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.policy

    def training_step(self, batch, _index):
        loss, _ = self.policy.forward(self.preprocessor(batch))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:  # here, not on_train_batch_end: callbacks saving this step see its average
            self.ema.update_parameters(self.policy)

    def configure_optimizers(self):
        config = self.policy.config
        optimizer = torch.optim.AdamW(
            self.policy.parameters(), lr=config.optimizer_lr, weight_decay=config.optimizer_weight_decay
        )
        preset = config.get_scheduler_preset()
        if preset is None:
            return optimizer
        scheduler = preset.build(optimizer, self.max_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class SaveAtSteps(Callback):
    """Writes the saved policy as a LeRobot ``pretrained_model`` folder after each of ``steps``, with its
    ``training.json`` (the step, and whether the run was resumed before it: then not bit-identical)."""

    def __init__(self, out: Path, steps: list[int], postprocessor, provenance: dict[str, Any]):
        self.out, self.steps, self.postprocessor = out, set(steps), postprocessor
        self.provenance, self.start = provenance, 0

    def folder(self, step: int) -> Path:
        return self.out / CHECKPOINT_DIR / f"step-{step}" / "pretrained_model"

    def on_train_start(self, trainer, _module) -> None:
        self.start = trainer.global_step

    def on_train_batch_end(self, trainer, module: LitPolicy, *_args) -> None:
        step = trainer.global_step
        if step in self.steps:
            folder = self.folder(step)
            save_pretrained_model(module.saved_policy.eval(), module.preprocessor, self.postprocessor, folder)
            module.policy.train()
            record = {**self.provenance, "steps": step, "resume": resume_record(self.start)}
            (folder / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n")


def run_policy_stage(cfg: TrainConfig, run, inputs, callbacks=None) -> dict[str, Any]:
    """Train the policy on ``inputs`` (``policy_inputs``) into ``run``'s out dir."""
    out = run.path
    device = "cuda" if resolve_accelerator(cfg.device)[0] == "gpu" else "cpu"
    settings, dataset = inputs
    torch.manual_seed(cfg.seed)
    try:
        policy, preprocessor, postprocessor = make_pixel_policy(dataset.stats(), device=device, **settings)
    except (TypeError, ValueError) as error:
        raise UsageError(f"bad policy settings: {error}") from None
    module = LitPolicy(policy, preprocessor, cfg.max_steps)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(dataset) >= cfg.batch_size,
        num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    provenance = {"stage": "policy", "data": dataset.roots, "policy_episodes": cfg.policy_episodes,
                  "episodes": len(dataset.episodes), "seed": cfg.seed}  # fmt: skip
    save_at = SaveAtSteps(out, save_steps_of(cfg), postprocessor, provenance)
    trainer, start, seconds, accelerator, precision = fit_loaders(
        cfg, module, loader, None, out, run.resumed, [save_at, *(callbacks or [])]
    )
    step = trainer.global_step
    release = out / RELEASE_DIR
    save_pretrained_model(module.saved_policy.eval(), preprocessor, postprocessor, release)
    resume = resume_record(start)
    record = {**provenance, "steps": step, "resume": resume}
    (release / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n")
    saved = {s: str(save_at.folder(s)) for s in sorted(save_at.steps) if save_at.folder(s).is_dir()}
    return {
        "stage": "policy",
        "release": str(release),
        "checkpoint": saved[step],
        "checkpoints": {str(k): v for k, v in saved.items()},
        "steps": step,
        "resumed_from_step": start,
        "resume": resume,
        "seconds": round(seconds, 2),
        "samples_per_second": round((step - start) * cfg.batch_size / seconds, 2) if seconds > 0 else None,
        "accelerator": accelerator,
        "precision": precision,
        "episodes": len(dataset.episodes),
        "train_frames": len(dataset),
        "policy_config": {
            k: v
            for k, v in asdict(policy.config).items()
            if k in ("chunk_size", "n_action_steps", "hidden_dim", "encoder", "lr_schedule", "ema_decay")
        },
        "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()},
    }
