"""Run ``dojo-bench data``: plan shards, record the missing ones in parallel, merge, summarise."""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dojo_bench.core.metrics import success_rate
from dojo_bench.core.progress import make_progress
from dojo_bench.core.run_dir import prepare_run_dir
from dojo_bench.dojo.recording import (
    DataConfig,
    dataset_dirs,
    merge_split,
    plan_shards,
    plan_splits,
    read_done,
    record_shards,
)

WORK_DIR = ".work"


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def summarise(config: DataConfig, records: dict[str, list[dict]], out: Path, timing: dict) -> dict[str, Any]:
    """Success per split and policy (Wilson 95 %), frames, disk use and throughput."""
    splits = {}
    for split, episodes in records.items():
        by_policy = defaultdict(list)
        for r in episodes:
            by_policy[r["policy"]].append(r["success"])
        frames = sum(r["length"] for r in episodes)
        size = sum(directory_bytes(out / d) for d in dataset_dirs(config.kind, split).values())
        splits[split] = {
            "episodes": len(episodes),
            "frames": frames,
            "bytes": size,
            "mb_per_10k_frames": round(size / 1e6 / frames * 1e4, 2) if frames else None,
            "success": {
                policy: {k: round(v, 4) for k, v in asdict(success_rate(s)).items()}
                for policy, s in sorted(by_policy.items())
            },
        }
    return {"kind": config.kind, "task": config.task, "splits": splits, **timing}


def run_data(config: DataConfig, overwrite: bool = False) -> dict[str, Any]:
    """Record the datasets of ``config`` under ``config.out``; resumes an interrupted run of the same config."""
    run = prepare_run_dir(config.out, "data", asdict(config), overwrite)
    out, work = run.path, run.path / WORK_DIR
    shards = plan_shards(config)
    todo = [s for s in shards if read_done(s, work) is None]
    per_index = 3 if config.kind == "counterfactual" else 1
    total = sum(len(s.indices) for s in shards)
    started = time.perf_counter()
    with make_progress() as progress:
        bar = progress.add_task(f"recording {config.kind} episodes", total=total)
        progress.update(bar, completed=total - sum(len(s.indices) for s in todo))
        record_shards(config, todo, work, advance=lambda n: progress.advance(bar, n))
    record_seconds = time.perf_counter() - started
    done = [read_done(s, work) for s in shards]
    busy_seconds = sum(d["seconds"] for d in done)
    frames = sum(d["frames"] for d in done)
    started = time.perf_counter()
    records = {split.name: merge_split(config, split, shards, work, out) for split in plan_splits(config)}
    merge_seconds = time.perf_counter() - started
    timing = {
        "workers": config.num_workers(),
        "episodes_recorded_now": sum(len(s.indices) for s in todo) * per_index,
        "record_seconds": round(record_seconds, 2),
        "merge_seconds": round(merge_seconds, 2),
        # env steps (= recorded frames) per second of one worker, simulation + rendering + encoding included
        "steps_per_second_per_process": round(frames / busy_seconds, 1) if busy_seconds else None,
    }
    summary = summarise(config, records, out, timing)
    shutil.rmtree(work)
    run.finish(summary)
    return summary
