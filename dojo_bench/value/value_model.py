"""The value model: frames -> task progress in [0, 1] and a success probability.

Contract: ``ValueModel.score(frames) -> (progress, success_prob)``, both (B,) float in [0, 1], for
frames (B, 3, H, W) or (B, H, W, 3) (the env's and ``ImaginedEnv``'s layout), uint8 in [0, 255] or float in [0, 1].

The network is small and ours (nothing to download): stride-2 convs with GroupNorm and SiLU, flattened (the
object's position against the goal region is what progress depends on, so no global pooling that would throw the
layout away), one hidden layer, then two heads: a progress head (sigmoid) and a success logit.

Training (``LitValueModel``) uses the dojo's per-frame ground truth of real frames: ``gt.progress`` (MSE) and
``gt.success`` (BCE with logits). ``FrameDataset`` reads frames from the world model's decoded-frame cache
(world_model/data.py) and the labels from the dataset's parquet files.

Checkpoints are a folder with ``config.json`` (the ``ValueModelConfig`` plus provenance) and ``model.safetensors``;
nothing is pickled, and ``load_value_model`` turns every bad file into one ``ValueModelError`` line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from dojo_bench.core.encoders import make_conv_stack
from dojo_bench.core.errors import DojoError
from dojo_bench.core.files import read_input_parquet
from dojo_bench.core.keys import GT_PROGRESS, GT_SUCCESS, OBS_IMAGE
from world_model.data import CachedFrames, check_features, episode_table, load_frame_cache, read_info

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "dojo_value_model"
FORMAT_VERSION = 1


class ValueModelError(DojoError):
    """A missing, corrupt or mismatched value-model checkpoint, or frames of the wrong shape."""


@dataclass
class ValueModelConfig:
    """The network's shape and the training loss.

    channels: output channels of the stride-2 conv layers (96 px -> 96 / 2**len(channels) px feature map).
    progress_weight / success_weight: weights of the MSE (progress) and BCE (success) terms.
    success_pos_weight: BCE ``pos_weight``; success frames are rare in short episodes, > 1 counters that.
    """

    image_size: int = 96
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden_dim: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    progress_weight: float = 1.0
    success_weight: float = 1.0
    success_pos_weight: float = 1.0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must name at least one positive width, got {self.channels}")
        if self.image_size < 2 ** len(self.channels):
            raise ValueError(
                f"image_size={self.image_size} is too small for {len(self.channels)} stride-2 layers"
            )
        if self.hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1, got {self.hidden_dim}")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        if (
            self.progress_weight < 0
            or self.success_weight < 0
            or self.progress_weight + self.success_weight == 0
        ):
            raise ValueError("progress_weight and success_weight must be >= 0, not both 0")
        if self.success_pos_weight <= 0:
            raise ValueError(f"success_pos_weight must be > 0, got {self.success_pos_weight}")


# ----------------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------------


def to_unit_frames(frames: Tensor | np.ndarray, image_size: int | None = None) -> Tensor:
    """(B, 3, H, W) or (B, H, W, 3), uint8 or float in [0, 1] -> (B, 3, H, W) float32 in [0, 1]."""
    frames = torch.as_tensor(frames)
    if frames.dim() != 4:
        raise ValueModelError(f"frames must be (B, 3, H, W) or (B, H, W, 3), got shape {tuple(frames.shape)}")
    if frames.shape[1] != 3 and frames.shape[-1] == 3:
        frames = frames.permute(0, 3, 1, 2)  # (B, H, W, 3) -> (B, 3, H, W)
    if frames.shape[1] != 3:
        raise ValueModelError(f"frames must have 3 colour channels, got shape {tuple(frames.shape)}")
    if image_size is not None and tuple(frames.shape[-2:]) != (image_size, image_size):
        raise ValueModelError(
            f"frames are {frames.shape[-2]}x{frames.shape[-1]} but the value model takes {image_size}x{image_size}"
        )
    if frames.dtype == torch.uint8:
        return frames.float() / 255.0
    return frames.float()


class ValueModel(nn.Module):
    """(B, 3, H, W) frames in [0, 1] -> (progress (B,) in [0, 1], success logit (B,))."""

    def __init__(self, cfg: ValueModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.convs = make_conv_stack(3, cfg.channels)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 3, cfg.image_size, cfg.image_size)).numel()
        self.trunk = nn.Sequential(nn.Linear(flat, cfg.hidden_dim), nn.SiLU())
        self.progress_head = nn.Linear(cfg.hidden_dim, 1)
        self.success_head = nn.Linear(cfg.hidden_dim, 1)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        features = self.convs(frames * 2.0 - 1.0)  # centre [0, 1] pixels on 0; (B, C, h, w)
        hidden = self.trunk(features.flatten(1))  # (B, hidden_dim)
        progress = torch.sigmoid(self.progress_head(hidden)).squeeze(-1)  # (B,)
        return progress, self.success_head(hidden).squeeze(-1)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def score(self, frames: Tensor | np.ndarray, batch_size: int = 256) -> tuple[Tensor, Tensor]:
        """Frames (any layout of ``to_unit_frames``) -> (progress, success probability), both (B,) on the CPU."""
        was_training = self.training
        self.eval()
        unit = to_unit_frames(frames, self.cfg.image_size)
        progress, success = [], []
        for start in range(0, len(unit), batch_size):
            p, logit = self(unit[start : start + batch_size].to(self.device))
            progress.append(p.float().cpu())
            success.append(torch.sigmoid(logit.float()).cpu())
        self.train(was_training)
        if not progress:
            return torch.zeros(0), torch.zeros(0)
        return torch.cat(progress), torch.cat(success)


def value_losses(model: ValueModel, frames: Tensor, progress: Tensor, success: Tensor) -> dict[str, Tensor]:
    """The training losses for frames (B, 3, H, W) in [0, 1] and labels progress (B,), success (B,) in {0, 1}."""
    cfg = model.cfg
    predicted, logit = model(frames)
    mse = F.mse_loss(predicted, progress)
    pos_weight = torch.tensor(cfg.success_pos_weight, device=logit.device)
    bce = F.binary_cross_entropy_with_logits(logit, success, pos_weight=pos_weight)
    return {
        "loss": cfg.progress_weight * mse + cfg.success_weight * bce,
        "progress_mse": mse,
        "success_bce": bce,
    }


# ----------------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------------


class LitValueModel(L.LightningModule):
    """Trains ``ValueModel`` on batches ``{"observation.image": uint8 (B, 3, H, W), "gt.progress": (B,),
    "gt.success": (B,)}`` (``FrameDataset``'s items, collated)."""

    def __init__(self, cfg: ValueModelConfig) -> None:
        super().__init__()
        self.save_hyperparameters({"value_model": asdict(cfg)})
        self.cfg = cfg
        self.model = ValueModel(cfg)

    def _step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        frames = to_unit_frames(batch[OBS_IMAGE])
        losses = value_losses(self.model, frames, batch[GT_PROGRESS].float(), batch[GT_SUCCESS].float())
        on_step = split == "train"
        for name, value in losses.items():
            self.log(f"{split}/{name}", value, prog_bar=name == "loss", on_step=on_step, on_epoch=not on_step)
        return losses["loss"]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.model.parameters(), lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay
        )

    def export(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        return save_value_model(path, self.model, extra)


# ----------------------------------------------------------------------------------------------------------------------
# Frames with ground truth
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class FrameLabels:
    """Per-frame labels of one dataset, indexed by the dataset's global frame index."""

    progress: np.ndarray  # (N,) float32
    success: np.ndarray  # (N,) float32 in {0, 1}
    episode: np.ndarray  # (N,) int64
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def read_frame_table(root: Path, columns: list[str]):
    """The dataset's per-frame parquet rows (``index`` order) with ``columns``; one DojoError line if any is missing."""
    files = sorted((root / "data").rglob("*.parquet"))
    if not files:
        raise DojoError(f"{root}: no data/*.parquet files")
    wanted = ["index", "episode_index", *columns]
    try:
        table = pd.concat([pd.read_parquet(f, columns=wanted) for f in files], ignore_index=True)
    except (KeyError, ValueError, OSError) as error:
        for f in files:
            read_input_parquet(f)  # a damaged file is named as such
        raise DojoError(f"{root}: its frames lack a column the value model needs ({error})") from None
    return table.sort_values("index").reset_index(drop=True)


def scalar_column(table, name: str) -> np.ndarray:
    values = table[name].to_numpy()
    if len(values) and isinstance(values[0], np.ndarray | list):
        values = np.stack(values)[:, 0]
    return values.astype(np.float32)


class FrameDataset(CachedFrames, Dataset):
    """Single frames of one LeRobot dojo dataset with their ground truth.

    Items: ``{"observation.image": uint8 (3, H, W), "gt.progress": float32 (), "gt.success": float32 ()}``.
    ``episodes``: keep only these episode indices (None: all).
    """

    def __init__(
        self, root: str | Path, image_size: int = 96, episodes: list[int] | None = None, cache_dir=None
    ):
        self.root = Path(root)
        info = read_info(self.root)
        check_features(self.root, info, image_size=image_size, require_actions=False)
        missing = [k for k in (GT_PROGRESS, GT_SUCCESS) if k not in info.get("features", {})]
        if missing:
            raise DojoError(
                f"{self.root} has no {', '.join(missing)}: the value model trains on the dojo's ground truth"
            )
        self.frames_path = load_frame_cache(self.root, info, episode_table(self.root), cache_dir)
        self._frames: np.ndarray | None = None
        table = read_frame_table(self.root, [GT_PROGRESS, GT_SUCCESS])
        self.labels = FrameLabels(
            progress=np.clip(scalar_column(table, GT_PROGRESS), 0.0, 1.0),
            success=scalar_column(table, GT_SUCCESS),
            episode=table["episode_index"].to_numpy().astype(np.int64),
        )
        keep = np.ones(len(table), bool) if episodes is None else np.isin(self.labels.episode, episodes)
        self.indices = table["index"].to_numpy().astype(np.int64)[keep]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        index = int(self.indices[i])
        image = torch.from_numpy(np.array(self.frames[index])).permute(2, 0, 1)  # (3, H, W)
        return {
            OBS_IMAGE: image.contiguous(),
            GT_PROGRESS: torch.tensor(self.labels.progress[index]),
            GT_SUCCESS: torch.tensor(self.labels.success[index]),
        }


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints: safetensors + JSON
# ----------------------------------------------------------------------------------------------------------------------


def save_value_model(path: str | Path, model: ValueModel, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path/config.json`` and ``path/model.safetensors`` (weights on the CPU, contiguous)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path / WEIGHTS_FILE), metadata={"format": FORMAT})
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "value_model": asdict(model.cfg),
        **({"extra": extra} if extra else {}),
    }
    (path / CONFIG_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def load_value_model(path: str | Path, device: str | torch.device = "cpu") -> ValueModel:
    """The value model saved at ``path`` (a folder from ``save_value_model``), in eval mode on ``device``."""
    path = Path(path)
    if not path.is_dir():
        raise ValueModelError(f"value model {path}: no such folder")
    config_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not config_file.is_file():
        raise ValueModelError(f"value model {path}: {CONFIG_FILE} is missing")
    if not weights.is_file():
        raise ValueModelError(f"value model {path}: {WEIGHTS_FILE} is missing")
    try:
        record = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueModelError(f"value model {path}: {CONFIG_FILE} is not valid JSON ({error})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueModelError(f"value model {path}: {CONFIG_FILE} is not a dojo-bench value model")
    if record.get("format_version") != FORMAT_VERSION:
        raise ValueModelError(
            f"value model {path}: format version {record.get('format_version')} is not {FORMAT_VERSION}"
        )
    try:
        cfg = ValueModelConfig(**record["value_model"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueModelError(f"value model {path}: bad config ({error})") from None
    model = ValueModel(cfg)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ValueModelError(f"value model {path}: {WEIGHTS_FILE} is corrupt ({error})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueModelError(
            f"value model {path}: {WEIGHTS_FILE} does not fit its config ({first})"
        ) from None
    return model.to(device).eval()


__all__ = [
    "FrameDataset",
    "LitValueModel",
    "ValueModel",
    "ValueModelConfig",
    "ValueModelError",
    "load_value_model",
    "save_value_model",
    "to_unit_frames",
    "value_losses",
]
