"""Clips from LeRobot datasets for the world-model LightningModules, with a decoded-frame cache.

A clip is ``clip_length`` consecutive frames of one episode (never crossing an episode boundary), as a dict in the
batch.py layout (without the batch dimension):

- ``observation.image``: (T, 3, H, W) uint8
- ``action``: (T, A) float32, ``action[t]`` applied after frame t (the dataset's own convention)
- ``observation.state``: (T, S) float32

``clip_length`` is 1 + k * temporal_compression frames (the first frame alone, then whole tokenizer groups).

Decoded-frame cache: video decoding would bind training, so each dataset's frames are decoded once with PyAV (the
mp4 files, read front to back) into one uint8 ``.npy`` file (N, H, W, 3) that clips then read through a memmap.
The file name carries a hash of ``meta/info.json`` and the episode index files, so a re-recorded dataset gets a
new cache. It lives in the user cache (``$DOJO_BENCH_CACHE/frames``, default ``~/.cache/dojo-bench/frames``) unless
``cache_dir`` is given, never inside the dataset (inputs are read-only); it is written to a temporary name and
renamed, so an interrupted decode never leaves a cache that looks complete.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from dojo_bench.core.errors import DojoError
from dojo_bench.core.files import atomic_write, read_input_json, read_input_parquet
from dojo_bench.core.keys import ACTION, GT_OBJECT_POSE, OBS_IMAGE, OBS_STATE

CACHE_ENV = "DOJO_BENCH_CACHE"  # where decoded-frame caches go when cache_dir is not given


@dataclass
class ClipDataConfig:
    """Where the clips come from and how they are batched.

    ``train_roots``/``validation_roots`` are LeRobot dataset roots (directories holding ``meta/info.json``).
    ``require_actions``: the world model needs ``action`` and ``observation.state``; the tokenizer only frames.
    """

    train_roots: list[str] = field(default_factory=list)
    validation_roots: list[str] = field(default_factory=list)
    clip_length: int = 13
    temporal_compression: int = 4
    image_size: int = 96
    require_actions: bool = True
    object_pose: bool = False  # also read gt.object_pose (the dojo's ground truth), for models with an object
    relative_actions: bool = True  # normalisation stats are taken on the actions the model will see
    clip_stride: int = 1  # frames between the starts of consecutive clips of an episode
    batch_size: int = 32
    num_workers: int = 0
    cache_dir: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.train_roots, str | Path):
            self.train_roots = [self.train_roots]
        if isinstance(self.validation_roots, str | Path):
            self.validation_roots = [self.validation_roots]
        self.train_roots = [str(r) for r in self.train_roots]
        self.validation_roots = [str(r) for r in self.validation_roots]
        if not self.train_roots:
            raise DojoError("no training dataset given: pass at least one LeRobot dataset root")
        c = self.temporal_compression
        if self.clip_length < 2 or (self.clip_length - 1) % c:
            k = max(1, (self.clip_length - 1) // c)
            raise DojoError(
                f"clip_length={self.clip_length} does not fit temporal_compression={c}: use 1 + k*{c} frames "
                f"(e.g. {1 + k * c})"
            )
        if self.clip_stride < 1 or self.batch_size < 1 or self.num_workers < 0:
            raise DojoError("clip_stride and batch_size must be >= 1, num_workers >= 0")


# ----------------------------------------------------------------------------------------------------------------------
# Reading a dataset's metadata
# ----------------------------------------------------------------------------------------------------------------------


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json`` of a dataset whose tables are all there (every reader of a dataset starts here, so a
    damaged one is one line before anything is decoded or written)."""
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise DojoError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    info = read_input_json(path)
    if not isinstance(info, dict):
        raise DojoError(f"{path} does not hold a JSON object: damaged?")
    missing = missing_parts(root)
    if missing:
        raise DojoError(
            f"{root} is a damaged LeRobot dataset: no {', '.join(missing)}; record or copy it again"
        )
    return info


def missing_parts(root: Path) -> list[str]:
    """The tables of a local LeRobot v3 dataset that ``root`` lacks."""
    tables = {"meta/episodes/*.parquet": root / "meta" / "episodes", "data/*.parquet": root / "data"}
    return [name for name, folder in tables.items() if not any(folder.rglob("*.parquet"))]


def check_features(root: Path, info: dict[str, Any], *, image_size: int, require_actions: bool) -> None:
    """One clear line when the dataset lacks a key the model needs or has frames of another size."""
    features = info.get("features", {})
    needed = [OBS_IMAGE] + ([ACTION, OBS_STATE] if require_actions else [])
    missing = [key for key in needed if key not in features]
    if missing:
        hint = " (an action-free video dataset can train the tokenizer only)" if OBS_IMAGE in features else ""
        raise DojoError(
            f"{root} has no {', '.join(missing)}: the world model needs {', '.join(needed)}{hint}"
        )
    image = features[OBS_IMAGE]
    if image.get("dtype") != "video":
        raise DojoError(
            f"{root}: {OBS_IMAGE} is stored as {image.get('dtype')!r}; only video features are read"
        )
    shape = tuple(image.get("shape", ()))
    if shape != (image_size, image_size, 3):
        raise DojoError(
            f"{root}: frames are {'x'.join(map(str, shape))} but the model takes {image_size}x{image_size}x3"
        )


def episode_table(root: Path):
    files = sorted((root / "meta" / "episodes").rglob("*.parquet"))
    if not files:
        raise DojoError(f"{root} is not a LeRobot v3 dataset (no meta/episodes/*.parquet)")
    table = pd.concat([read_input_parquet(f) for f in files], ignore_index=True)
    return table.sort_values("episode_index").reset_index(drop=True)


def dataset_hash(root: Path) -> str:
    """Hash of what defines the frames: ``meta/info.json`` and the episode index files."""
    digest = hashlib.sha256((root / "meta" / "info.json").read_bytes())
    for f in sorted((root / "meta" / "episodes").rglob("*.parquet")):
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------------------
# Decoded-frame cache
# ----------------------------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dojo-bench") / "frames"


def cache_path(root: Path, cache_dir: str | Path | None = None) -> Path:
    """The cache file of ``root``'s frames: named by the dataset's folder, a hash of its absolute path and a hash
    of what defines its frames, in ``cache_dir`` (default: ``default_cache_dir()``)."""
    root = Path(root).resolve()
    where = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return Path(cache_dir or default_cache_dir()) / f"{root.name}-{where}-frames-{dataset_hash(root)}.npy"


def decode_frames(root: Path, info: dict[str, Any], episodes, target: np.ndarray) -> None:
    """Decode every frame of ``OBS_IMAGE`` into ``target`` (N, H, W, 3), indexed by the dataset's global index.

    Each video file holds consecutive episodes; a frame at time ts of the file belongs to the episode whose
    [from_timestamp, to_timestamp) holds it, at index ``from_index + round((ts - from_timestamp) * fps)``.
    """
    import av  # PyAV (video decoding) only when a frame cache is built

    fps = info["fps"]
    prefix = f"videos/{OBS_IMAGE}/"
    written = np.zeros(len(target), dtype=bool)
    by_file: dict[tuple[int, int], list] = {}
    for _, row in episodes.iterrows():
        key = (int(row[prefix + "chunk_index"]), int(row[prefix + "file_index"]))
        by_file.setdefault(key, []).append(
            (
                float(row[prefix + "from_timestamp"]),
                int(row["dataset_from_index"]),
                int(row["dataset_to_index"]),
            )
        )
    for (chunk, file), spans in sorted(by_file.items()):
        path = root / info["video_path"].format(video_key=OBS_IMAGE, chunk_index=chunk, file_index=file)
        if not path.is_file():
            raise DojoError(f"{root}: video file {path} is missing")
        spans.sort()
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for frame in container.decode(stream):
                    ts = float(frame.pts * stream.time_base)
                    for start_ts, first, end in reversed(spans):
                        if ts >= start_ts - 0.5 / fps:
                            index = first + round((ts - start_ts) * fps)
                            if first <= index < end:
                                target[index] = frame.to_ndarray(format="rgb24")
                                written[index] = True
                            break
        except av.error.FFmpegError as error:
            raise DojoError(f"{path}: cannot decode video ({error})") from None
    if not written.all():
        raise DojoError(
            f"{root}: {int((~written).sum())} of {len(target)} frames are missing from its videos"
        )


def load_frame_cache(root: Path, info: dict[str, Any], episodes, cache_dir=None) -> Path:
    """The path of the dataset's decoded-frame cache, decoding the videos first if it does not exist yet."""
    path = cache_path(root, cache_dir)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w, c = info["features"][OBS_IMAGE]["shape"]

    def write(tmp: Path) -> None:
        target = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(info["total_frames"], h, w, c)
        )
        decode_frames(root, info, episodes, target)
        target.flush()
        del target  # closes the memory map before the rename

    atomic_write(path, write)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------------------------------


class CachedFrames:
    """Lazy read access to a decoded-frame cache (``frames_path``, (N, H, W, 3) uint8 .npy) for a Dataset.

    The memmap is opened on first use and dropped when pickled, so each data-loader worker opens its own.
    """

    frames_path: Path
    _frames: np.ndarray | None = None

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = np.load(self.frames_path, mmap_mode="r")
        return self._frames

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_frames": None}


class ClipDataset(CachedFrames, Dataset):
    """Clips of ``clip_length`` frames from one LeRobot dataset root (see the module docstring)."""

    def __init__(self, root: str | Path, cfg: ClipDataConfig) -> None:
        self.root = Path(root)
        self.cfg = cfg
        if not self.root.is_dir():
            raise DojoError(f"{self.root} does not exist or is not a directory")
        info = read_info(self.root)
        check_features(self.root, info, image_size=cfg.image_size, require_actions=cfg.require_actions)
        episodes = episode_table(self.root)
        self.frames_path = load_frame_cache(self.root, info, episodes, cfg.cache_dir)
        self._frames: np.ndarray | None = None  # opened lazily: one memmap per worker process

        self.actions: np.ndarray | None = None
        self.states: np.ndarray | None = None
        self.poses: np.ndarray | None = None  # (N, 3) gt.object_pose with cfg.object_pose
        if cfg.object_pose and GT_OBJECT_POSE not in info["features"]:
            raise DojoError(
                f"{self.root} has no {GT_OBJECT_POSE}: a model with object_shape trains on the dojo's ground truth "
                "(record with `dojo-bench data`), or train without pixel.model.object_shape"
            )
        if cfg.require_actions:
            columns = ["index", ACTION, OBS_STATE] + ([GT_OBJECT_POSE] if cfg.object_pose else [])
            data_files = sorted((self.root / "data").rglob("*.parquet"))
            table = pd.concat(
                [read_input_parquet(f, columns=columns) for f in data_files], ignore_index=True
            ).sort_values("index")
            self.actions = np.stack(table[ACTION].to_numpy()).astype(np.float32)
            self.states = np.stack(table[OBS_STATE].to_numpy()).astype(np.float32)
            if cfg.object_pose:
                self.poses = np.stack(table[GT_OBJECT_POSE].to_numpy()).astype(np.float32)

        self.episode_bounds = [
            (int(a), int(b))
            for a, b in zip(episodes["dataset_from_index"], episodes["dataset_to_index"], strict=True)
        ]
        starts = [
            range(first, end - cfg.clip_length + 1, cfg.clip_stride) for first, end in self.episode_bounds
        ]
        self.starts = np.fromiter((s for r in starts for s in r), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        start = int(self.starts[i])
        stop = start + self.cfg.clip_length
        images = torch.from_numpy(np.array(self.frames[start:stop])).permute(0, 3, 1, 2)  # (T, 3, H, W)
        clip = {OBS_IMAGE: images.contiguous()}
        if self.actions is not None:
            clip[ACTION] = torch.from_numpy(self.actions[start:stop])
            clip[OBS_STATE] = torch.from_numpy(self.states[start:stop])
        if self.poses is not None:
            clip[GT_OBJECT_POSE] = torch.from_numpy(self.poses[start:stop])
        return clip


def normalization_stats(
    datasets: list[ClipDataset], chunk_size: int, relative_actions: bool
) -> dict[str, float]:
    """Scalar offsets and scales (mean, std over all elements) for actions and states, from the given datasets.

    With relative actions the stats are those of ``action[t] - state[t - j]`` for lags j in 0..chunk_size-1 inside
    an episode: every offset a chunk's action can have from the state at the chunk's start.
    """
    actions, states = [], []
    for ds in datasets:
        if ds.actions is None:
            continue
        states.append(ds.states)
        for first, end in ds.episode_bounds:
            a, s = ds.actions[first:end], ds.states[first:end]
            if not relative_actions:
                actions.append(a)
                continue
            for lag in range(min(chunk_size, len(a))):
                actions.append(a[lag:] - s[: len(s) - lag])
    if not actions:
        return {"action_offset": 0.0, "action_scale": 1.0, "state_offset": 0.0, "state_scale": 1.0}
    a, s = np.concatenate(actions), np.concatenate(states)
    return {
        "action_offset": float(a.mean()),
        "action_scale": float(max(a.std(), 1e-6)),
        "state_offset": float(s.mean()),
        "state_scale": float(max(s.std(), 1e-6)),
    }


def _make_split(roots: list[str], cfg: ClipDataConfig, split: str) -> tuple[list[ClipDataset], Dataset]:
    parts = [ClipDataset(root, cfg) for root in roots]
    if sum(len(p) for p in parts) == 0:
        longest = max((end - first for p in parts for first, end in p.episode_bounds), default=0)
        raise DojoError(
            f"the {split} data ({', '.join(roots)}) has no episode of {cfg.clip_length} frames (longest: "
            f"{longest}); record longer episodes or lower clip_length"
        )
    return parts, ConcatDataset(parts)


class ClipDataModule(L.LightningDataModule):
    """Train and validation clips over one or more LeRobot dataset roots each.

    Building it decodes (or finds) the frame caches, so its ``stats`` (normalisation for
    ``WorldModelConfig``) and ``action_dim``/``state_dim`` are known before the model is built.
    """

    def __init__(self, cfg: ClipDataConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.train_parts, self.train_set = _make_split(cfg.train_roots, cfg, "train")
        self.val_parts, self.val_set = (
            _make_split(cfg.validation_roots, cfg, "validation") if cfg.validation_roots else ([], None)
        )
        self.stats = normalization_stats(self.train_parts, cfg.temporal_compression, cfg.relative_actions)
        first = self.train_parts[0]
        self.action_dim = first.actions.shape[1] if first.actions is not None else 0
        self.state_dim = first.states.shape[1] if first.states is not None else 0
        for part in self.train_parts[1:] + self.val_parts:
            dims = (part.actions.shape[1], part.states.shape[1]) if part.actions is not None else (0, 0)
            if dims != (self.action_dim, self.state_dim):
                raise DojoError(
                    f"{part.root} has action/state dims {dims}, {first.root} has "
                    f"{(self.action_dim, self.state_dim)}: datasets of one run must share them"
                )

    def sample_images(self, num_clips: int = 16) -> Tensor:
        """(num_clips, T, 3, H, W) uint8 from evenly spaced training clips (e.g. for ``estimate_latent_scale``)."""
        picks = (
            np.linspace(0, len(self.train_set) - 1, min(num_clips, len(self.train_set))).round().astype(int)
        )
        return torch.stack([self.train_set[int(i)][OBS_IMAGE] for i in picks])

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.cfg.seed)
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.batch_size,
            shuffle=True,
            drop_last=len(self.train_set) >= self.cfg.batch_size,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            generator=generator,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(
            self.val_set, batch_size=self.cfg.batch_size, shuffle=False, num_workers=self.cfg.num_workers
        )
