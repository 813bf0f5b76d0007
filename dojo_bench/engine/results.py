"""Storage of evaluation results: one parquet row per episode, a JSON summary with provenance, resume.

    store = ResultStore(out_dir)
    run_missing(store, {"ckpt_a": lambda: load_policy(a)}, world, seeds, max_steps=200, scorer=scorer)
    store.summary(config=cfg, checkpoint_hashes={"ckpt_a": "..."}, seeds=seeds)   # writes summary.json

Layout of ``out_dir``:

- ``episodes/part-NNNNNN-<id>.parquet``: one file per appended batch, written to a temporary name and renamed, so a
  killed run leaves whole part files only. Reading concatenates all parts; a key written twice keeps its last row.
- ``episodes.parquet``: all rows in one file, rewritten (atomically) by ``summary``.
- ``summary.json``: per (policy, world) success rate with a Wilson interval (``dojo_bench.core.metrics.success_rate``),
  mean max progress, flagged episodes, and a provenance block (config, git SHA, checkpoint hashes, seeds, hardware,
  wall time).

Columns (the contract, ``SCHEMA`` below): policy (str), seed (int64), world ("real" | "imagined"), success (bool),
max_progress (float64), steps (int64), flags (str, comma-separated, "" when none).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dojo_bench.core.devices import hardware
from dojo_bench.core.files import atomic_write, atomic_write_text
from dojo_bench.core.metrics import success_rate
from dojo_bench.engine.rollout import (
    ChunkPolicy,
    EpisodeRecord,
    Scorer,
    StepRecorder,
    World,
    batches,
    resolve_policy,
    run_episodes,
)

PARTS_DIR = "episodes"
EPISODES_FILE = "episodes.parquet"
SUMMARY_FILE = "summary.json"
KEY_COLUMNS = ("policy", "seed", "world")
SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("seed", pa.int64()),
        ("world", pa.string()),
        ("success", pa.bool_()),
        ("max_progress", pa.float64()),
        ("steps", pa.int64()),
        ("flags", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names)


class ResultStore:
    """Episode rows of one evaluation under ``out_dir`` (see the module docstring)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.parts_dir = self.out_dir / PARTS_DIR
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()

    # -- writing ------------------------------------------------------------------------------------------------
    def append(self, records: Iterable[EpisodeRecord | Mapping[str, Any]]) -> Path | None:
        """Write ``records`` as one new part file (atomically); returns its path, None when there are none."""
        rows = [r.row() if isinstance(r, EpisodeRecord) else dict(r) for r in records]
        if not rows:
            return None
        table = pa.Table.from_pylist([{c: row[c] for c in COLUMNS} for row in rows], schema=SCHEMA)
        index = len(list(self.parts_dir.glob("part-*.parquet")))
        path = self.parts_dir / f"part-{index:06d}-{uuid.uuid4().hex[:8]}.parquet"
        _atomic_write_parquet(table, path)
        return path

    # -- reading ------------------------------------------------------------------------------------------------
    def read(self) -> pd.DataFrame:
        """All rows so far, one per (policy, seed, world) (the last written wins), sorted by key."""
        parts = sorted(self.parts_dir.glob("part-*.parquet"))
        if not parts:
            return SCHEMA.empty_table().to_pandas()
        table = pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts])
        frame = table.to_pandas()
        frame = frame.drop_duplicates(subset=list(KEY_COLUMNS), keep="last")
        return frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)

    def done_keys(self) -> set[tuple[str, int, str]]:
        """(policy, seed, world) of every finished episode: what a resumed run must not redo."""
        frame = self.read()
        return {
            (str(p), int(s), str(w))
            for p, s, w in zip(frame["policy"], frame["seed"], frame["world"], strict=True)
        }

    # -- summary ------------------------------------------------------------------------------------------------
    def summary(
        self,
        config: Mapping[str, Any] | None = None,
        checkpoint_hashes: Mapping[str, str] | None = None,
        seeds: Sequence[int] | None = None,
        wall_time_s: float | None = None,
        confidence: float = 0.95,
        write: bool = True,
        policies: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Per (policy, world) rates with Wilson intervals plus provenance; writes summary.json and
        episodes.parquet unless ``write=False``. ``wall_time_s`` defaults to this store's time since opening.
        ``policies``: only these policies' rows (a run dir keeps the episodes of policies dropped since)."""
        frame = self.read()
        if policies is not None:
            frame = frame[frame["policy"].isin(list(policies))].reset_index(drop=True)
        policies: dict[str, dict[str, Any]] = {}
        for (policy, world), group in frame.groupby(["policy", "world"], sort=True):
            rate = success_rate(group["success"].astype(bool).to_numpy(), confidence)
            flagged = group["flags"].astype(str) != ""
            policies.setdefault(str(policy), {})[str(world)] = {
                "success_rate": rate.rate,
                "ci_low": rate.low,
                "ci_high": rate.high,
                "n_episodes": rate.n,
                "n_success": int(group["success"].sum()),
                "n_flagged": int(flagged.sum()),
                "mean_max_progress": float(group["max_progress"].mean()),
                "mean_steps": float(group["steps"].mean()),
            }
        result = {
            "confidence": confidence,
            "n_episodes": len(frame),
            "policies": policies,
            "provenance": provenance(
                config=config,
                checkpoint_hashes=checkpoint_hashes,
                seeds=seeds,
                wall_time_s=time.monotonic() - self.started if wall_time_s is None else wall_time_s,
            ),
        }
        if write:
            _atomic_write_parquet(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False),
                                  self.out_dir / EPISODES_FILE)  # fmt: skip
            write_summary_json(result, self.out_dir / SUMMARY_FILE)
        return result


def run_missing(
    store: ResultStore,
    policies: Mapping[str, ChunkPolicy | Callable[[], ChunkPolicy]],
    world: World,
    seeds: Sequence[int],
    max_steps: int,
    scorer: Scorer,
    batch_size: int = 8,
    on_batch: Callable[[list[EpisodeRecord]], None] | None = None,
    recorder: StepRecorder | None = None,
) -> int:
    """Run every (policy, seed) of ``world`` that ``store`` has not finished, batch by batch, appending each batch
    as it finishes; a policy with nothing left is never loaded. Rows are labelled with the mapping's keys.
    ``recorder`` goes to ``run_episodes``; ``on_batch`` sees each batch's labelled records after they are stored.
    Returns the number of episodes run."""
    done = store.done_keys()
    count = 0
    for label, policy in policies.items():
        todo = [int(s) for s in seeds if (label, int(s), world.name) not in done]
        if not todo:
            continue
        loaded = resolve_policy(policy)
        for batch in batches(todo, batch_size):
            records = run_episodes(
                loaded, world, batch, max_steps=max_steps, scorer=scorer, recorder=recorder
            )
            for record in records:
                record.policy = label
            store.append(records)
            count += len(records)
            if on_batch is not None:
                on_batch(records)
    return count


# ----------------------------------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------------------------------


def git_sha(directory: str | Path | None = None) -> str | None:
    """HEAD of the git checkout holding ``directory`` (default: this package), with ``-dirty`` when it has
    uncommitted changes; None outside git or without a git binary."""
    cwd = Path(directory) if directory is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if status else sha or None


def provenance(
    config: Mapping[str, Any] | None = None,
    checkpoint_hashes: Mapping[str, str] | None = None,
    seeds: Sequence[int] | None = None,
    wall_time_s: float | None = None,
) -> dict[str, Any]:
    return {
        "config": dict(config or {}),
        "git_sha": git_sha(),
        "checkpoint_hashes": dict(checkpoint_hashes or {}),
        "seeds": [int(s) for s in seeds] if seeds is not None else None,
        "hardware": hardware(),
        "wall_time_s": wall_time_s,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _atomic_write_parquet(table: pa.Table, path: Path) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_summary_json(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` as indented JSON, atomically; numpy scalars and paths become plain values."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")
