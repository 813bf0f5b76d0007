"""The shared Lightning fit of every stage: trainer settings, accelerator and precision from ``device``, resume from
``out/checkpoints/last.ckpt``."""

from __future__ import annotations

import pickle
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger

from dojo_bench.core.devices import resolve_device
from dojo_bench.core.errors import DojoError
from dojo_bench.core.progress import quiet_libraries
from dojo_bench.train.config import CHECKPOINT_DIR, TrainConfig
from world_model.checkpoint import release_resume

# Lightning restores weights, optimiser and step from last.ckpt, but not where the data order and the random draws
# were: a resumed run goes on with other clips and noise than an uninterrupted one would.
NOT_IDENTICAL = (
    "the steps after it draw other clips and noise than an uninterrupted run would, so the weights are not "
    "bit-identical to an uninterrupted run's (recorded as resume.bit_identical=false in run.json and the release)"
)


def resume_record(from_step: int, inputs: list[str | Path] = ()) -> dict[str, Any]:
    """A run's resume provenance (its run.json summary and its release): the step training picked up from (0: the
    start), the releases it started from (``inputs``: a tokenizer, init=) that are not bit-identical themselves,
    and whether the weights are bit-identical to an uninterrupted run's (only from step 0 and identical inputs)."""
    upstream = [str(path) for path in inputs if not release_resume(path).get("bit_identical", True)]
    record = {
        "resumed": from_step > 0,
        "from_step": from_step,
        "bit_identical": from_step == 0 and not upstream,
    }
    return {**record, "inputs_not_bit_identical": upstream} if upstream else record


def resolve_accelerator(device: str) -> tuple[str, str]:
    """(Lightning accelerator, precision): bf16 mixed precision on CUDA only."""
    return ("gpu", "bf16-mixed") if resolve_device(device) == "cuda" else ("cpu", "32-true")


class _StartStep(Callback):
    """Records the global step training starts from (> 0 when resumed from a checkpoint)."""

    step = 0

    def on_train_start(self, trainer, module) -> None:
        self.step = trainer.global_step


def fit_module(cfg, module, out: Path, resumed: bool, callbacks, has_validation: bool, **data):
    """Fit ``module`` with the project's trainer settings; resumes from ``out/checkpoints/last.ckpt``.

    ``data`` is what ``Trainer.fit`` takes: ``datamodule=`` or ``train_dataloaders=`` / ``val_dataloaders=``.
    Returns (trainer, the step it started from, seconds).
    """
    quiet_libraries()  # after Lightning's import, which sets its loggers to INFO
    accelerator, precision = resolve_accelerator(cfg.device)
    checkpoints = out / CHECKPOINT_DIR
    last = checkpoints / "last.ckpt"
    start_step = _StartStep()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        precision=precision,
        max_steps=cfg.max_steps,
        max_epochs=-1,
        val_check_interval=min(cfg.val_every, cfg.max_steps) if has_validation else None,
        check_val_every_n_epoch=None,
        limit_val_batches=cfg.val_batches if has_validation else 0,
        num_sanity_val_steps=0,
        callbacks=[
            ModelCheckpoint(
                dirpath=checkpoints, save_last=True, save_top_k=0, every_n_train_steps=cfg.checkpoint_every
            ),
            RichProgressBar(leave=True),
            start_step,
            *(callbacks or []),
        ],
        logger=CSVLogger(out, name="logs"),  # logs/version_N: a resumed run writes the next N, keeps the old
        log_every_n_steps=max(1, min(50, cfg.max_steps // 4)),
        enable_model_summary=False,
        default_root_dir=out,
    )
    started = time.perf_counter()
    try:
        # weights_only: the checkpoint is tensors and plain containers; never unpickle objects from a file.
        trainer.fit(module, ckpt_path=last if resumed and last.is_file() else None, weights_only=True, **data)
    except pickle.UnpicklingError as error:
        raise DojoError(
            f"{last} is not a checkpoint this code wrote (weights-only loading refused it: "
            f"{str(error).splitlines()[0][:120]}); pass overwrite=true to start again"
        ) from None
    except SystemExit:
        # Lightning turns Ctrl-C into sys.exit(1) after ignoring SIGINT: give the CLI its KeyboardInterrupt back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from None
    if start_step.step > 0:
        print(f"{cfg.stage}: resumed at step {start_step.step} from {last}: {NOT_IDENTICAL}")
    return trainer, start_step.step, time.perf_counter() - started


def fit_loaders(cfg: TrainConfig, module, train_loader, val_loader, out: Path, resumed: bool, callbacks):
    """Fit ``module`` with train.py's trainer; returns (trainer, start step, seconds, accelerator, precision)."""
    has_validation = val_loader is not None and cfg.val_batches > 0
    trainer, start_step, seconds = fit_module(
        cfg,
        module,
        out,
        resumed,
        callbacks,
        has_validation,
        train_dataloaders=train_loader,
        val_dataloaders=val_loader if has_validation else None,
    )
    return (trainer, start_step, seconds, *resolve_accelerator(cfg.device))
