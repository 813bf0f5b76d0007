"""What an evaluation keeps for its report besides the episode rows: progress curves and a few frame strips.

    recorder = MediaRecorder(out_dir, media_seeds=seeds[:4], value_fn=lambda f: value.score(f)[0])
    run_missing(store, policies, RenderOnly(real, seeds[:4]), seeds, ..., recorder=recorder, on_batch=recorder.flush)
    write_curves(out_dir)                                            # curves/part-*.parquet -> curves.parquet

Layout under the run dir (reports/ reads it; nothing here is needed to compute a metric):

- ``curves/part-*.parquet`` (one per batch, written atomically) and ``curves.parquet`` (all of them, one episode
  kept once: the last part that holds it wins, so a resumed run never shows an episode twice). Columns: policy,
  seed, world, step (1-based: the action count after which the frame was scored), progress (the world's own
  scorer: ground truth in the real world, the value model in imagination), value_progress (the value model on that
  world's frames: equal to progress in imagination; in the real world only for the media episodes, else NaN).
- ``media/<policy slug>/<world>_<seed>.npz`` for the first ``media_episodes`` seeds of every policy: ``frames``
  (T, H, W, 3) uint8 (every ``frame_stride``-th frame and the last one), ``steps`` (T,) int64, ``progress`` and
  ``value_progress`` (T,) float64 at those steps.

The real world renders per-step frames only when asked (rendering costs more than the physics): ``RenderOnly``
turns rendering on only for the batches that hold a media seed. Recording never changes an episode's outcome.
Episodes finished before a resume may lack media (their batch ended before the recorder flushed).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dojo_bench.core.arrays import to_numpy
from dojo_bench.core.files import atomic_write
from dojo_bench.engine.rollout import REAL, EpisodeRecord

CURVES_DIR = "curves"
CURVES_FILE = "curves.parquet"
MEDIA_DIR = "media"
FRAME_STRIDE = 2
CURVES_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("seed", pa.int64()),
        ("world", pa.string()),
        ("step", pa.int64()),
        ("progress", pa.float64()),
        ("value_progress", pa.float64()),
    ]
)


def policy_slug(name: str) -> str:
    """A safe, unique file-name part for a policy label: its letters, digits, '.', '_' and '-' (at most 40), then
    a short hash of the whole label, so labels that differ only in other characters never share a file."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40].strip("-.") or "policy"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def media_path(out_dir: str | Path, policy: str, world: str, seed: int) -> Path:
    return Path(out_dir) / MEDIA_DIR / policy_slug(policy) / f"{world}_{int(seed)}.npz"


class RenderOnly:
    """A ``RealWorlds`` that renders per-step frames only in the batches holding one of ``seeds``."""

    def __init__(self, world: Any, seeds: Collection[int]) -> None:
        self.world = world
        self.seeds = {int(s) for s in seeds}
        self.name = world.name
        self.action_dim = world.action_dim
        self.chunk_multiple = world.chunk_multiple

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        self.world.render_frames = bool(self.seeds & {int(s) for s in seeds})
        return self.world.reset(seeds)

    def step(self, action_chunk: np.ndarray, active: np.ndarray | None = None):
        return self.world.step(action_chunk, active)


class MediaRecorder:
    """A ``rollout.StepRecorder`` that buffers one batch and writes its curves and media at ``flush(records)``.

    ``value_fn``: frames (N, H, W, 3) uint8 -> progress (N,) (array or tensor); scores the real world's media
    frames so that a report can set the value model's view of reality beside its view of imagination."""

    def __init__(
        self,
        out_dir: str | Path,
        media_seeds: Collection[int] = (),
        value_fn: Callable[[np.ndarray], Any] | None = None,
        frame_stride: int = FRAME_STRIDE,
    ) -> None:
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        self.out_dir = Path(out_dir)
        self.media_seeds = {int(s) for s in media_seeds}
        self.value_fn = value_fn
        self.frame_stride = frame_stride
        self._reset_buffers()

    def _reset_buffers(self) -> None:
        self._seeds: list[int] = []
        self._steps: dict[int, list[int]] = {}
        self._progress: dict[int, list[float]] = {}
        self._frames: dict[int, list[np.ndarray]] = {}

    def __call__(
        self, seeds: list[int], t: int, info: dict[str, Any], progress: np.ndarray, valid: np.ndarray
    ) -> None:
        if seeds != self._seeds:  # a new batch (flush was not called for the last one: drop it)
            self._reset_buffers()
            self._seeds = list(seeds)
        frames = info.get("frames")
        for i, seed in enumerate(seeds):
            columns = np.flatnonzero(valid[i])
            if not columns.size:
                continue
            self._steps.setdefault(seed, []).extend(int(t + j + 1) for j in columns)
            self._progress.setdefault(seed, []).extend(float(progress[i, j]) for j in columns)
            if frames is not None and seed in self.media_seeds:
                self._frames.setdefault(seed, []).extend(np.asarray(frames[i, j], np.uint8) for j in columns)

    def flush(self, records: list[EpisodeRecord]) -> None:
        """Write the buffered batch, labelled by ``records`` (run_missing's ``on_batch``)."""
        rows = []
        for record in records:
            seed = int(record.seed)
            steps = np.asarray(self._steps.get(seed, []), dtype=np.int64)
            progress = np.asarray(self._progress.get(seed, []), dtype=np.float64)
            value = progress if record.world != REAL else np.full(len(steps), np.nan)
            frames = self._frames.get(seed)
            if frames:
                stack = np.stack(frames)  # (T, H, W, 3) uint8
                if record.world == REAL and self.value_fn is not None:
                    value = value.copy()
                    value[:] = to_numpy(self.value_fn(stack)).astype(np.float64).reshape(-1)
                keep = _subsample(len(stack), self.frame_stride)
                _write_npz(
                    media_path(self.out_dir, record.policy, record.world, seed),
                    frames=stack[keep],
                    steps=steps[keep],
                    progress=progress[keep],
                    value_progress=value[keep],
                )
            rows.extend(
                {"policy": record.policy, "seed": seed, "world": record.world, "step": int(s),
                 "progress": float(p), "value_progress": float(v)}
                for s, p, v in zip(steps, progress, value, strict=True)
            )  # fmt: skip
        if rows:
            parts = self.out_dir / CURVES_DIR
            parts.mkdir(parents=True, exist_ok=True)
            index = len(list(parts.glob("part-*.parquet")))
            table = pa.Table.from_pylist(rows, schema=CURVES_SCHEMA)
            atomic_write(
                parts / f"part-{index:06d}-{uuid.uuid4().hex[:8]}.parquet", lambda p: pq.write_table(table, p)
            )
        self._reset_buffers()


def write_curves(out_dir: str | Path, policies: Sequence[str] | None = None) -> Path | None:
    """Concatenate the curve parts into ``curves.parquet`` (an episode in several parts: the last part wins), only
    ``policies``' episodes when given; returns its path, None when no part exists."""
    out_dir = Path(out_dir)
    parts = sorted((out_dir / CURVES_DIR).glob("part-*.parquet"))
    if not parts:
        return None
    frames = []
    for index, part in enumerate(parts):
        frame = pq.read_table(part, schema=CURVES_SCHEMA).to_pandas()
        frame["_part"] = index
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    last = frame.groupby(["policy", "seed", "world"])["_part"].transform("max")
    frame = frame[frame["_part"] == last].drop(columns="_part")
    if policies is not None:
        frame = frame[frame["policy"].isin(list(policies))]
    frame = frame.sort_values(["policy", "world", "seed", "step"], kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame, schema=CURVES_SCHEMA, preserve_index=False)
    path = out_dir / CURVES_FILE
    atomic_write(path, lambda p: pq.write_table(table, p))
    return path


def media_index(out_dir: str | Path, policies: Sequence[str]) -> dict[str, list[str]]:
    """{policy: [its media files, relative to the run dir]} of what exists now."""
    out_dir = Path(out_dir)
    index = {}
    for policy in policies:
        folder = out_dir / MEDIA_DIR / policy_slug(policy)
        index[policy] = sorted(str(f.relative_to(out_dir)) for f in folder.glob("*.npz"))
    return index


def _subsample(n: int, stride: int) -> np.ndarray:
    keep = np.arange(stride - 1, n, stride)
    if n and (not keep.size or keep[-1] != n - 1):
        keep = np.append(keep, n - 1)  # the episode's last frame: the one that decided it
    return keep


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(path, save)
