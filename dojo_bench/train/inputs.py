"""What a training run reads: its data roots (a tiny dataset recorded for size=tiny without data=) and the clips of
the clip stages."""

from __future__ import annotations

from pathlib import Path

from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.run_dir import is_finished
from dojo_bench.dojo.generate import run_data
from dojo_bench.dojo.inspect import is_lerobot_dataset
from dojo_bench.train.config import ACTION_STAGES, TrainConfig
from world_model.checkpoint import CheckpointError, read_config
from world_model.data import ClipDataConfig, ClipDataModule


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str | Path) else [str(v) for v in value]


def resolve_data(cfg: TrainConfig, out: Path) -> tuple[list[str], list[str]]:
    """(train roots, validation roots). A `dojo-bench data` out dir gives its train/ and validation/; with
    size=tiny and no data= a tiny robot dataset is recorded into out/data first."""
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
    if not is_finished(path):
        run_data(cfg.tiny_data_config(str(path)), overwrite=path.exists())
    return path


def make_datamodule(cfg: TrainConfig, train: list[str], validation: list[str], tokenizer=None):
    """Clips for the stage; decodes (or finds) the frame caches and checks the datasets' keys and image size."""
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
        object_pose=cfg.stage == "pixel_world_model" and wants_object_pose(cfg),
        relative_actions=bool(cfg.world_model.get("relative_actions", True)),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        cache_dir=cfg.cache_dir,
        seed=cfg.seed,
    )
    return ClipDataModule(data_cfg)


def wants_object_pose(cfg: TrainConfig) -> bool:
    """Whether the pixel world model carries the object's pose: asked for, or in the ``init=`` release."""
    if (cfg.pixel.get("model") or {}).get("object_shape"):
        return True
    if cfg.init:
        try:
            return bool(read_config(cfg.init)["components"].get("pixel", {}).get("object_shape"))
        except CheckpointError:  # a wrong init= is reported, in one line, when the release is loaded
            return False
    return False


def config_error(error: Exception) -> DojoError:
    return UsageError(f"bad model settings: {error}")
