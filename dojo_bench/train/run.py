"""``dojo-bench train``: the entry, which checks the inputs, opens the run directory and hands each stage to its
module: the video tokenizer (``stage=tokenizer``, train/tokenizer.py), the latent world model (``stage=world_model``,
train/world_model.py), the pixel world model for CPUs (``stage=pixel_world_model``, train/pixel_world_model.py), the
value model (``stage=value_model``, train/value_model.py) and zoo policies (``stage=policy``, train/policy.py).

One Lightning loop for every stage and device (train/fit.py): the accelerator comes from ``device``, bf16 mixed
precision is used on CUDA only, and CPU runs the same code in float32. ``out=DIR`` follows the run-directory contract
(dojo_bench/core/run_dir.py): an unfinished run of the same config resumes from ``DIR/checkpoints/last.ckpt``
(Lightning checkpoints, written by this code only), a finished one is refused unless ``overwrite=true``.

Layout of ``out=DIR``:
- ``run.json``: config, status and the final summary;
- ``checkpoints/last.ckpt``: the Lightning checkpoint to resume from; ``logs/``: CSV metrics;
- ``release/``: the safetensors + JSON checkpoint (world_model/checkpoint.py) that other verbs load;
- ``data/`` (size=tiny without data=): a tiny robot dataset recorded for the run;
- ``tokenizer/`` (stage=world_model without tokenizer=): the tokenizer run trained first, inline.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L

from dojo_bench.core.run_dir import is_finished, prepare_run_dir
from dojo_bench.train.config import CHECKPOINT_DIR, FRAME_STAGES, RELEASE_DIR, TrainConfig
from dojo_bench.train.fit import fit_module, resolve_accelerator, resume_record
from dojo_bench.train.inputs import make_datamodule, resolve_data
from dojo_bench.train.pixel_world_model import build_pixel_module, load_pixel_release
from dojo_bench.train.policy import check_policy_episodes, policy_inputs, run_policy_stage
from dojo_bench.train.tokenizer import build_tokenizer_module, load_tokenizer
from dojo_bench.train.value_model import run_value_model_stage, value_model_inputs
from dojo_bench.train.world_model import build_world_model_module
from world_model.checkpoint import save_world_model
from world_model.compile import maybe_compile

# The single-frame stages: (read their datasets, before out is written; train on what was read).
FRAME_STAGE = {
    "value_model": (value_model_inputs, run_value_model_stage),
    "policy": (policy_inputs, run_policy_stage),
}


def run_train(cfg: TrainConfig, overwrite: bool = False, callbacks: list | None = None) -> dict[str, Any]:
    """Train ``cfg.stage`` into ``cfg.out``; returns the summary also stored in ``run.json``.

    ``callbacks`` are extra Lightning callbacks (tests use one to interrupt a run).
    """
    # Check what the user handed in before anything is written to out (a bad input leaves no half-made run).
    accelerator, precision = resolve_accelerator(cfg.device)
    image_size = int(cfg.tokenizer_model.get("image_size", 96))
    tokenizer_path = cfg.tokenizer
    tokenizer = load_tokenizer(tokenizer_path, image_size) if tokenizer_path else None
    given_data = cfg.data is not None
    if given_data:
        train_roots, validation_roots = resolve_data(cfg, Path(cfg.out))
    if given_data and cfg.stage == "policy":
        check_policy_episodes(cfg, train_roots)
    if given_data and cfg.stage in FRAME_STAGES:
        frame_inputs = FRAME_STAGE[cfg.stage][0](cfg, train_roots, validation_roots)
    if given_data and cfg.stage not in FRAME_STAGES:
        datamodule = make_datamodule(cfg, train_roots, validation_roots, tokenizer)
        if cfg.init:
            load_pixel_release(cfg.init, datamodule)  # a wrong init= is refused before out is written

    run = prepare_run_dir(cfg.out, "train", asdict(cfg), overwrite)
    out = run.path
    if not given_data:
        train_roots, validation_roots = resolve_data(cfg, out)  # size=tiny: records out/data
    if cfg.stage in FRAME_STAGES:
        read, train = FRAME_STAGE[cfg.stage]
        if not given_data:
            frame_inputs = read(cfg, train_roots, validation_roots)
        summary = train(cfg, run, frame_inputs, callbacks)
        run.finish(summary)
        return summary
    if cfg.stage == "world_model" and tokenizer is None:
        tokenizer_path = train_inline_tokenizer(cfg, out, train_roots, validation_roots)
        tokenizer = load_tokenizer(tokenizer_path, image_size)
    if not given_data:
        datamodule = make_datamodule(cfg, train_roots, validation_roots, tokenizer)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.stage == "tokenizer":
        module = build_tokenizer_module(cfg, image_size)
    elif cfg.stage == "pixel_world_model":
        module = build_pixel_module(cfg, datamodule, resuming=run.resumed)
    else:
        module = build_world_model_module(cfg, tokenizer, datamodule)

    network = {"tokenizer": "tokenizer", "pixel_world_model": "model"}.get(cfg.stage, "dit")
    compiled = maybe_compile(getattr(module, network), cfg.compile, accelerator)
    has_validation = datamodule.val_set is not None and cfg.val_batches > 0
    trainer, resumed_from, seconds = fit_module(
        cfg, module, out, run.resumed, callbacks, has_validation, datamodule=datamodule
    )
    last = out / CHECKPOINT_DIR / "last.ckpt"

    release = out / RELEASE_DIR
    resume = resume_record(resumed_from, [p for p in (tokenizer_path, cfg.init) if p])
    if resume.get("inputs_not_bit_identical"):
        print(f"{cfg.stage}: trained from {', '.join(resume['inputs_not_bit_identical'])}, whose training was "
              "resumed mid-way: these weights are not bit-identical to an uninterrupted run's either "
              "(resume.bit_identical=false in run.json and the release)")  # fmt: skip
    provenance = {"stage": cfg.stage, "steps": trainer.global_step, "data": train_roots, "seed": cfg.seed,
                  "resume": resume}  # fmt: skip
    if cfg.stage == "tokenizer":
        save_world_model(release, tokenizer=module.tokenizer, extra={"training": provenance})
    elif cfg.stage == "pixel_world_model":
        module.export(
            release, extra={"training": {**provenance, "init": cfg.init}, "seconds": round(seconds, 1)}
        )
    else:
        module.export(release, extra={"training": provenance, "tokenizer_source": str(tokenizer_path)})
    steps_now = trainer.global_step - resumed_from
    summary = {
        "stage": cfg.stage,
        "release": str(release),
        "checkpoint": str(last),
        "steps": trainer.global_step,
        "resumed_from_step": resumed_from,
        "resume": resume,
        "seconds": round(seconds, 2),
        "samples_per_second": round(steps_now * cfg.batch_size / seconds, 2) if seconds > 0 else None,
        "accelerator": accelerator,
        "precision": precision,
        "compiled": compiled,
        "train_clips": len(datamodule.train_set),
        "validation_clips": len(datamodule.val_set) if datamodule.val_set is not None else 0,
        "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()},
    }
    run.finish(summary)
    return summary


def train_inline_tokenizer(cfg: TrainConfig, out: Path, train: list[str], validation: list[str]) -> Path:
    """stage=world_model without tokenizer=: train one with the same data, size and seed into out/tokenizer."""
    path = out / "tokenizer"
    if not is_finished(path):
        tok_cfg = dataclasses.replace(
            cfg, stage="tokenizer", out=str(path), data=train, validation=validation, tokenizer=None
        )
        run_train(tok_cfg, overwrite=False)
    return path / RELEASE_DIR
