"""``dojo-bench train``: train the video tokenizer (``stage=tokenizer``), the latent world model
(``stage=world_model``) or the pixel world model for CPUs (``stage=pixel_world_model``), and, through train_stages.py, the value model (``stage=value_model``) and zoo policies (``stage=policy``).

One Lightning loop for both stages and every device: the accelerator comes from ``device``, bf16 mixed precision is
used on CUDA only, and CPU runs the same code in float32. ``out=DIR`` follows the run-directory contract
(run_dir.py): an unfinished run of the same config resumes from ``DIR/checkpoints/last.ckpt`` (Lightning checkpoints,
written by this code only), a finished one is refused unless ``overwrite=true``.

Layout of ``out=DIR``:
- ``run.json``: config, status and the final summary;
- ``checkpoints/last.ckpt``: the Lightning checkpoint to resume from; ``logs/``: CSV metrics;
- ``release/``: the safetensors + JSON checkpoint (world_model/checkpoint.py) that other verbs load;
- ``data/`` (size=tiny without data=): a tiny robot dataset recorded for the run;
- ``tokenizer/`` (stage=world_model without tokenizer=): the tokenizer run trained first, inline.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dojo_bench.errors import DojoError, UsageError
from dojo_bench.run_dir import is_finished, prepare_run_dir

# lerobot's dataset tools draw tqdm bars of their own; ours are rich. tqdm reads this when it is imported.
os.environ.setdefault("TQDM_DISABLE", "1")

STAGES = ("tokenizer", "world_model", "pixel_world_model", "value_model", "policy")
ACTION_STAGES = ("world_model", "pixel_world_model")  # stages whose clips need actions and states
DEVICES = ("auto", "cpu", "cuda")
FRAME_STAGES = ("value_model", "policy")  # single-frame stages, run by train_stages.py
RELEASE_DIR = "release"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainConfig:
    """What ``dojo-bench train`` trains. Built by the CLI from Hydra (conf/train); validated here."""

    stage: str = "world_model"
    out: str = ""
    data: str | list[str] | None = (
        None  # dataset root(s), or a `dojo-bench data` out dir holding train/ validation/
    )
    validation: str | list[str] | None = None
    tokenizer: str | None = None  # a tokenizer release directory (stage=world_model)
    preset: str = "default"  # the size preset, recorded by the CLI
    seed: int = 0
    device: str = "auto"
    devices: int | str = 1  # Lightning devices (several GPUs: e.g. 2 with strategy=ddp)
    strategy: str = "auto"  # Lightning strategy
    max_steps: int = 10000
    batch_size: int = 32
    clip_length: int = 13
    learning_rate: float | None = None  # None: the LightningModule's default
    num_workers: int = 0
    val_every: int = 1000
    val_batches: int = 4
    checkpoint_every: int = 1000
    cache_dir: str | None = None
    tokenizer_model: dict[str, Any] = field(default_factory=dict)  # TokenizerConfig fields (stage=tokenizer)
    dit: dict[str, Any] = field(default_factory=dict)  # DiTConfig fields
    world_model: dict[str, Any] = field(default_factory=dict)  # relative_actions, num_context_frames, ...
    flow: dict[str, Any] = field(default_factory=dict)  # FlowConfig fields
    sampler: dict[str, Any] = field(default_factory=dict)  # SamplerConfig fields (validation rollouts)
    tiny_data: dict[str, Any] = field(default_factory=dict)  # DataConfig fields for the self-recorded dataset
    value_model: dict[str, Any] = field(default_factory=dict)  # ValueModelConfig fields (stage=value_model)
    policy: dict[str, Any] = field(default_factory=dict)  # PixelConfig fields (stage=policy)
    # LitPixelWorldModelConfig fields (stage=pixel_world_model)
    pixel: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # stage=pixel_world_model: start from this release's weights (architecture kept)
    policy_episodes: str = (
        "expert"  # stage=policy: clone this data policy's episodes (meta/dojo.json), or "all"
    )
    max_episodes: int | None = None  # stage=policy|value_model: train on the first N chosen episodes only
    save_steps: list[int] | None = None  # stage=policy: also save pretrained_model folders at these steps
    label_stride: int = 1  # stage=policy, DAgger datasets: train on frames at multiples of this (their chunk)
    compile: str = "auto"  # torch.compile the trained network: auto (CUDA only) | true | false

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise UsageError(f"unknown stage={self.stage!r}; choose one of {', '.join(STAGES)}")
        if not self.out:
            raise UsageError("out=DIR is required: where to write checkpoints")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device={self.device!r}; choose one of {', '.join(DEVICES)}")
        for name in ("max_steps", "batch_size", "val_every", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.val_batches < 0 or self.num_workers < 0:
            raise UsageError("val_batches and num_workers must be >= 0")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise UsageError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.max_episodes is not None and (
            not isinstance(self.max_episodes, int) or self.max_episodes < 1
        ):
            raise UsageError(f"max_episodes must be a positive integer or null, got {self.max_episodes!r}")
        if not isinstance(self.label_stride, int) or self.label_stride < 1:
            raise UsageError(f"label_stride must be a positive integer, got {self.label_stride!r}")
        if self.save_steps is not None:
            steps = [self.save_steps] if isinstance(self.save_steps, int) else list(self.save_steps)
            if not all(isinstance(s, int) and 1 <= s <= self.max_steps for s in steps):
                raise UsageError(
                    f"save_steps must be integers in 1..max_steps={self.max_steps}, got {self.save_steps!r}"
                )
            self.save_steps = steps
        from world_model.compile import normalise_compile

        self.compile = normalise_compile(self.compile)
        if self.init is not None and self.stage != "pixel_world_model":
            raise UsageError("init= (start from a release's weights) is for stage=pixel_world_model")
        if self.stage == "tokenizer" and self.tokenizer is not None:
            raise UsageError("tokenizer= is for stage=world_model; stage=tokenizer trains a new one")

    @property
    def tiny(self) -> bool:
        return self.preset == "tiny"


# ----------------------------------------------------------------------------------------------------------------------
# Inputs: data roots, device, tokenizer
# ----------------------------------------------------------------------------------------------------------------------


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str | Path) else [str(v) for v in value]


def resolve_data(cfg: TrainConfig, out: Path) -> tuple[list[str], list[str]]:
    """(train roots, validation roots). A `dojo-bench data` out dir gives its train/ and validation/; with
    size=tiny and no data= a tiny robot dataset is recorded into out/data first."""
    from dojo_bench.dojo.inspect import is_lerobot_dataset

    data = _as_list(cfg.data)
    if not data:
        if not cfg.tiny:
            raise UsageError("data=DIR is required (a LeRobot dataset or a `dojo-bench data` out dir)")
        data = [str(record_tiny_data(cfg, out / "data"))]
    train, validation = [], []
    for entry in data:
        path = Path(entry).expanduser()
        if is_lerobot_dataset(path):
            train.append(str(path))
        elif is_lerobot_dataset(path / "train"):
            train.append(str(path / "train"))
            if is_lerobot_dataset(path / "validation"):
                validation.append(str(path / "validation"))
        elif not path.is_dir():
            raise DojoError(f"data={path} does not exist or is not a directory")
        else:
            raise DojoError(
                f"data={path} is not a LeRobot dataset (no meta/info.json) nor a `dojo-bench data` out dir "
                "(no train/ dataset)"
            )
    if cfg.validation is not None:
        validation = [str(Path(v).expanduser()) for v in _as_list(cfg.validation)]
    return train, validation


def record_tiny_data(cfg: TrainConfig, path: Path) -> Path:
    """A tiny robot dataset for a self-sufficient size=tiny run (reused when already recorded)."""
    from dojo_bench.dojo.generate import run_data
    from dojo_bench.dojo.recording import DataConfig

    if not is_finished(path):
        # stage=policy clones one data policy: record only its episodes so the tiny run always has some.
        cloned = (
            {"policy": cfg.policy_episodes} if cfg.stage == "policy" and cfg.policy_episodes != "all" else {}
        )
        settings = {"kind": "robot", "episodes": 4, "max_steps": 20, "workers": 1, **cloned, **cfg.tiny_data}
        run_data(DataConfig(**{**settings, "out": str(path), "seed": cfg.seed}), overwrite=path.exists())
    return path


def resolve_accelerator(device: str) -> tuple[str, str]:
    """(Lightning accelerator, precision): bf16 mixed precision on CUDA only."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device=cuda but no CUDA device is available; use device=auto or device=cpu")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return ("gpu", "bf16-mixed") if use_cuda else ("cpu", "32-true")


def load_tokenizer(path: str | Path, image_size: int):
    """The tokenizer of a release checkpoint; mismatches become one DojoError line."""
    from world_model.checkpoint import CheckpointError, load_world_model

    try:
        loaded = load_world_model(path, expected_image_size=image_size, require=("tokenizer",))
    except CheckpointError as error:
        raise DojoError(str(error)) from None
    return loaded.tokenizer


def train_inline_tokenizer(cfg: TrainConfig, out: Path, train: list[str], validation: list[str]) -> Path:
    """stage=world_model without tokenizer=: train one with the same data, size and seed into out/tokenizer."""
    path = out / "tokenizer"
    if not is_finished(path):
        tok_cfg = dataclasses.replace(
            cfg, stage="tokenizer", out=str(path), data=train, validation=validation, tokenizer=None
        )
        run_train(tok_cfg, overwrite=False)
    return path / RELEASE_DIR


# ----------------------------------------------------------------------------------------------------------------------
# Building the modules
# ----------------------------------------------------------------------------------------------------------------------


def _config_error(error: Exception) -> DojoError:
    return UsageError(f"bad model settings: {error}")


def build_tokenizer_module(cfg: TrainConfig, image_size: int):
    from world_model.lit_tokenizer import LitTokenizer, LitTokenizerConfig
    from world_model.tokenizer import TokenizerConfig

    try:
        tokenizer = TokenizerConfig(
            **{"temporal_compression": 4, **cfg.tokenizer_model, "image_size": image_size}
        )
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        return LitTokenizer(LitTokenizerConfig(tokenizer=tokenizer, **extra))
    except (TypeError, ValueError) as error:
        raise _config_error(error) from None


def build_pixel_module(cfg: TrainConfig, datamodule):
    """The pixel world model's Lightning module, normalised by the training data (relative actions, states and
    one step's state change)."""
    import numpy as np

    from world_model.lit_pixel_model import LitPixelWorldModel, LitPixelWorldModelConfig

    changes = [
        np.diff(part.states[first:end], axis=0)
        for part in datamodule.train_parts
        for first, end in part.episode_bounds
        if end - first > 1
    ]
    delta_scale = float(max(np.concatenate(changes).std(), 1e-3)) if changes else 1.0
    settings = dict(cfg.pixel)
    model = {
        **settings.pop("model", {}),
        **datamodule.stats,
        "delta_scale": delta_scale,
        "action_dim": datamodule.action_dim,
        "state_dim": datamodule.state_dim,
        "image_size": datamodule.cfg.image_size,
    }
    start = load_pixel_release(cfg.init, datamodule) if cfg.init else None
    if start is not None:
        model = dataclasses.asdict(start.cfg)  # fine-tuning keeps the architecture and the normalisation
    try:
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        module = LitPixelWorldModel(
            LitPixelWorldModelConfig(**{**settings, **extra, "model": model, "max_steps": cfg.max_steps})
        )
    except (TypeError, ValueError) as error:
        raise _config_error(error) from None
    if start is not None:
        module.model.load_state_dict(start.state_dict())
    return module


def load_pixel_release(path: str, datamodule):
    """The pixel world model of a release (``init=``), checked against the data; one DojoError line otherwise."""
    from world_model.checkpoint import CheckpointError, load_world_model

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


def build_world_model_module(cfg: TrainConfig, tokenizer, datamodule):
    from world_model.dit import make_dit_config
    from world_model.flow import FlowConfig
    from world_model.lit_world_model import LitWorldModel, LitWorldModelConfig, estimate_latent_scale
    from world_model.sampler import SamplerConfig

    tok = tokenizer.cfg
    dit_overrides = {k: v for k, v in cfg.dit.items() if k != "size"}
    try:
        dit = make_dit_config(
            cfg.dit.get("size", "default"),
            **{
                "max_latent_frames": max(16, tok.num_latent_frames(cfg.clip_length)),
                **dit_overrides,
                "latent_channels": tok.latent_channels,
                "latent_size": tok.latent_size,
                "action_dim": datamodule.action_dim,
                "state_dim": datamodule.state_dim,
                "action_chunk_size": tok.temporal_compression,
            },
        )
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        module_cfg = LitWorldModelConfig(
            dit=dit,
            flow=FlowConfig(**cfg.flow),
            sampler=SamplerConfig(**cfg.sampler),
            **cfg.world_model,
            **datamodule.stats,
            latent_scale=estimate_latent_scale(tokenizer, datamodule.sample_images(16)),
            seed=cfg.seed,
            **extra,
        )
        return LitWorldModel(module_cfg, tokenizer)
    except (TypeError, ValueError) as error:
        raise _config_error(error) from None


# ----------------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------------


def make_datamodule(cfg: TrainConfig, train: list[str], validation: list[str], tokenizer=None):
    """Clips for the stage; decodes (or finds) the frame caches and checks the datasets' keys and image size."""
    from world_model.data import ClipDataConfig, ClipDataModule

    image_size = int(cfg.tokenizer_model.get("image_size", 96))
    if tokenizer is not None:
        temporal_compression = tokenizer.cfg.temporal_compression
    elif cfg.stage == "pixel_world_model":
        temporal_compression = 1  # one frame per action: any clip length
    else:
        temporal_compression = int(cfg.tokenizer_model.get("temporal_compression", 4))
    data_cfg = ClipDataConfig(
        train_roots=train,
        validation_roots=validation,
        clip_length=cfg.clip_length,
        temporal_compression=temporal_compression,
        image_size=image_size,
        require_actions=cfg.stage in ACTION_STAGES,
        relative_actions=bool(cfg.world_model.get("relative_actions", True)),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        cache_dir=cfg.cache_dir,
        seed=cfg.seed,
    )
    return ClipDataModule(data_cfg)


def run_train(cfg: TrainConfig, overwrite: bool = False, callbacks: list | None = None) -> dict[str, Any]:
    """Train ``cfg.stage`` into ``cfg.out``; returns the summary also stored in ``run.json``.

    ``callbacks`` are extra Lightning callbacks (tests use one to interrupt a run).
    """
    import lightning as L

    # Check what the user handed in before anything is written to out (a bad input leaves no half-made run).
    accelerator, precision = resolve_accelerator(cfg.device)
    image_size = int(cfg.tokenizer_model.get("image_size", 96))
    tokenizer_path = cfg.tokenizer
    tokenizer = load_tokenizer(tokenizer_path, image_size) if tokenizer_path else None
    given_data = cfg.data is not None
    if given_data:
        train_roots, validation_roots = resolve_data(cfg, Path(cfg.out))
    if given_data and cfg.stage == "policy":
        from dojo_bench.train_stages import check_policy_episodes

        check_policy_episodes(cfg, train_roots)
    if given_data and cfg.stage not in FRAME_STAGES:
        datamodule = make_datamodule(cfg, train_roots, validation_roots, tokenizer)
        if cfg.init:
            load_pixel_release(cfg.init, datamodule)  # a wrong init= is refused before out is written

    run = prepare_run_dir(cfg.out, "train", asdict(cfg), overwrite)
    out = run.path
    if not given_data:
        train_roots, validation_roots = resolve_data(cfg, out)  # size=tiny: records out/data
    if cfg.stage in FRAME_STAGES:
        from dojo_bench import train_stages

        stage = (
            train_stages.run_value_model_stage
            if cfg.stage == "value_model"
            else train_stages.run_policy_stage
        )
        summary = stage(cfg, run, train_roots, validation_roots, callbacks)
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
        module = build_pixel_module(cfg, datamodule)
    else:
        module = build_world_model_module(cfg, tokenizer, datamodule)

    from world_model.compile import maybe_compile

    network = {"tokenizer": "tokenizer", "pixel_world_model": "model"}.get(cfg.stage, "dit")
    compiled = maybe_compile(getattr(module, network), cfg.compile, accelerator)
    has_validation = datamodule.val_set is not None and cfg.val_batches > 0
    trainer, resumed_from, seconds = fit_module(
        cfg, module, out, run.resumed, callbacks, has_validation, datamodule=datamodule
    )
    last = out / CHECKPOINT_DIR / "last.ckpt"

    release = out / RELEASE_DIR
    provenance = {"stage": cfg.stage, "steps": trainer.global_step, "data": train_roots, "seed": cfg.seed}
    if cfg.stage == "tokenizer":
        from world_model.checkpoint import save_world_model

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


def _start_step_callback():
    """A callback recording the global step training starts from (> 0 when resumed from a checkpoint)."""
    from lightning.pytorch.callbacks import Callback

    class StartStep(Callback):
        step = 0

        def on_train_start(self, trainer, module) -> None:
            self.step = trainer.global_step

    return StartStep()


def fit_module(cfg, module, out: Path, resumed: bool, callbacks, has_validation: bool, **data):
    """Fit ``module`` with the project's trainer settings; resumes from ``out/checkpoints/last.ckpt``.

    ``data`` is what ``Trainer.fit`` takes: ``datamodule=`` or ``train_dataloaders=`` / ``val_dataloaders=``.
    Returns (trainer, the step it started from, seconds).
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from dojo_bench.progress import quiet_libraries

    quiet_libraries()  # after Lightning's import, which sets its loggers to INFO
    accelerator, precision = resolve_accelerator(cfg.device)
    checkpoints = out / CHECKPOINT_DIR
    last = checkpoints / "last.ckpt"
    start_step = _start_step_callback()
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
        logger=CSVLogger(out, name="logs", version=0),
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
    return trainer, start_step.step, time.perf_counter() - started
