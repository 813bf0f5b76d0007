"""Load a recorded dataset back with lerobot, check that it decodes, and summarise it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dojo_bench.core.errors import DojoError
from dojo_bench.core.files import read_input_json
from dojo_bench.core.keys import ACTION, DOJO_META_FILE, OBS_IMAGE
from dojo_bench.core.metrics import success_rate
from world_model.data import missing_parts as missing_tables


def is_lerobot_dataset(path: Path) -> bool:
    return (path / "meta" / "info.json").is_file()


def find_datasets(path: Path) -> list[Path]:
    """``path`` itself if it is a LeRobot dataset, else its immediate sub-directories that are."""
    if not path.is_dir():
        raise DojoError(f"{path} does not exist or is not a directory")
    if is_lerobot_dataset(path):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and is_lerobot_dataset(p))
    if not found:
        raise DojoError(f"{path} is not a LeRobot dataset (no meta/info.json) and holds none")
    return found


def load_dataset(root: Path, delta_timestamps: dict[str, list[float]] | None = None):
    """``LeRobotDataset`` from a local root, offline, decoding video with PyAV."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lerobot.datasets.lerobot_dataset import (
        LeRobotDataset,  # lerobot is slow to import: only when loading
    )

    if not is_lerobot_dataset(root):
        raise DojoError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    missing = missing_parts(root)
    if missing:
        raise DojoError(
            f"{root} is a damaged LeRobot dataset: no {', '.join(missing)}; record or copy it again"
        )
    try:
        return LeRobotDataset(
            f"dojo/{root.name}", root=root, video_backend="pyav", delta_timestamps=delta_timestamps
        )
    except Exception as error:  # lerobot raises many kinds; the user needs one line
        text = str(error)
        if "offline" in text.lower() or "huggingface.co" in text:
            # lerobot falls back to the hub when a local file is missing or unreadable; dojo-bench never downloads.
            raise DojoError(
                f"{root} could not be read as a LeRobot dataset (a file lerobot needs is missing or damaged); "
                "record or copy it again"
            ) from error
        raise DojoError(f"{root} could not be loaded as a LeRobot dataset: {text}") from error


def missing_parts(root: Path) -> list[str]:
    """The files a local LeRobot dataset needs that ``root`` lacks (lerobot would go to the hub for them)."""
    tasks = [] if (root / "meta" / "tasks.parquet").is_file() else ["meta/tasks.parquet"]
    return tasks + missing_tables(root)


def inspect_dataset(root: Path, decode: bool = True) -> dict[str, Any]:
    """Episodes, frames, features, per-policy success; with ``decode``, every episode's first and last frame."""
    info = read_input_json(root / "meta" / "info.json") if is_lerobot_dataset(root) else {}
    features = info.get("features", {})
    delta = {key: [-0.1, 0.0] for key in (OBS_IMAGE,) if key in features}
    delta.update({ACTION: [0.0, 0.1]} if ACTION in features else {})
    dataset = load_dataset(root, delta_timestamps=delta or None)
    decoded = 0
    if decode and OBS_IMAGE in features:
        for ep in range(dataset.num_episodes):
            start = int(dataset.meta.episodes["dataset_from_index"][ep])
            end = int(dataset.meta.episodes["dataset_to_index"][ep]) - 1
            for index in (start, end):
                try:
                    frame = dataset[index][OBS_IMAGE]
                except Exception as error:  # lerobot and PyAV raise many kinds for a damaged video
                    reason = (
                        str(error).strip().splitlines()[0][:160]
                        if str(error).strip()
                        else type(error).__name__
                    )
                    raise DojoError(f"{root}: frame {index} cannot be decoded ({reason}): damaged?") from None
                if tuple(frame.shape) != (2, 3, 96, 96):
                    raise DojoError(f"{root}: frame {index} decoded with shape {tuple(frame.shape)}")
                decoded += 1
    summary: dict[str, Any] = {
        "path": str(root),
        "episodes": dataset.num_episodes,
        "frames": dataset.num_frames,
        "fps": dataset.fps,
        "features": sorted(
            k
            for k in features
            if k not in ("timestamp", "frame_index", "episode_index", "index", "task_index")
        ),
        "decoded_frames": decoded,
    }
    meta_path = root / DOJO_META_FILE
    if meta_path.is_file():
        meta = read_input_json(meta_path)
        by_policy: dict[str, list[bool]] = {}
        for record in meta["episodes"]:
            by_policy.setdefault(record["policy"], []).append(record["success"])
        summary["kind"], summary["role"] = meta["kind"], meta["role"]
        summary["success"] = {
            policy: {"rate": round(r.rate, 3), "low": round(r.low, 3), "high": round(r.high, 3), "n": r.n}
            for policy, r in ((p, success_rate(s)) for p, s in sorted(by_policy.items()))
        }
    return summary
