"""``dojo-bench calibrate``: the success threshold on imagined progress at which a world model and a value model,
replaying held-out recorded episodes, succeed as often as those episodes did for real.

Why: a world model that keeps the order of what happens but wears the objects' edges (the CPU pixel model's T
blurs over 200 steps) makes the value model read progress low, and imagined success at the task's own threshold
(85% coverage) then under-predicts every policy alike. The threshold is fitted once per pair of models, on episodes
neither model trained on and never on the policies being evaluated: every episode of the held-out datasets is
started from its first recorded frame and state, its recorded actions are replayed to its end (the model's own
predictions carried, as in any imagined rollout), the value model reads every imagined frame, and
``metrics.calibrated_threshold`` puts the threshold where as many replays reach it as episodes succeeded for real.

``evaluate calibration=OUT`` then scores imagination with it (and with the shipped models, the shipped calibration
is used when neither ``success_threshold=`` nor ``calibration=`` is given). The calibration records the sha256 of
both models' files, so it is refused for any other pair.

Layout of ``out=DIR``: ``run.json``; ``calibration.json`` (the threshold, the rates and agreements behind it, the
models' hashes, the data); ``episodes.csv`` (one row per replayed episode).
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dojo_bench.core.checks import check_int
from dojo_bench.core.devices import check_device, resolve_device
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.keys import GT_PROGRESS, GT_SUCCESS
from dojo_bench.core.manifest import file_hashes
from dojo_bench.core.metrics import calibrated_threshold
from dojo_bench.core.progress import make_progress
from dojo_bench.core.run_dir import prepare_run_dir, write_json
from dojo_bench.dojo.tasks import get_task
from dojo_bench.value.value_model import load_value_model, read_frame_table, scalar_column
from dojo_bench.verbs.inputs import CALIBRATION_FILE, load_env
from dojo_bench.verbs.wm_eval import check_dataset, find_eval_datasets, open_clips, start_observations
from world_model.data import ClipDataset, read_info

EPISODES_FILE = "episodes.csv"


@dataclass
class CalibrateConfig:
    """What ``dojo-bench calibrate`` fits. Built by the CLI from Hydra (conf/calibrate); validated here."""

    out: str = ""  # directory to write calibration.json, episodes.csv (required)
    world_model: str | None = None  # a world-model release dir; null: the shipped default
    value_model: str | None = None  # a value-model release dir; null: the shipped default
    data: str | list[str] | None = None  # held-out dataset root(s) or `dojo-bench data` out dir(s) with the
    #   dojo's ground truth (their validation/counterfactual splits, else all); never rollouts of the policies
    #   you will evaluate (required)
    episodes: int = 200  # at most this many episodes per dataset (chosen with seed)
    batch_size: int = 25  # episodes replayed together
    task: str = "pusht_bench"  # the task whose own threshold the summary compares against
    seed: int = 0  # chooses the episodes
    device: str = "auto"  # auto | cpu | cuda
    cache_dir: str | None = None  # decoded-frame caches; null: $DOJO_BENCH_CACHE/frames or
    #   ~/.cache/dojo-bench/frames

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write calibration.json")
        if not self.world_model or not self.value_model:
            raise UsageError("calibrate needs world_model=DIR and value_model=DIR")
        if self.data is None or self.data == []:
            raise UsageError(
                "data=DIR is required: held-out recorded episodes with gt.success (`dojo-bench data`)"
            )
        check_device(self.device)
        for name in ("episodes", "batch_size"):
            check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)
        get_task(self.task)  # one line for an unknown task


# ----------------------------------------------------------------------------------------------------------------------
# Replays
# ----------------------------------------------------------------------------------------------------------------------


def replay_dataset(
    env, score, root: Path, dataset: ClipDataset, table, cfg: CalibrateConfig, progress=None
) -> list[dict[str, Any]]:
    """Each chosen episode of ``root`` (its clips ``dataset`` and its frame table ``table`` with the ground truth,
    read before out is written) replayed whole in ``env``: one row per episode with its length, real success and
    highest real progress (ground truth), and the value model's highest reading of the imagined frames."""
    c = env.chunk_size
    index = table["index"].to_numpy()
    truth_progress = np.zeros(int(index.max()) + 1)  # by global frame index, as the clip dataset counts
    truth_success = np.zeros(int(index.max()) + 1, dtype=bool)
    truth_progress[index] = scalar_column(table, GT_PROGRESS)
    truth_success[index] = scalar_column(table, GT_SUCCESS) > 0.5
    bounds = [(a, b) for a, b in dataset.episode_bounds if b - a >= 2]
    if not bounds:
        raise DojoError(f"{root} has no episode of 2 frames or more: nothing to replay")
    rng = np.random.default_rng(cfg.seed)
    picks = rng.choice(len(bounds), size=min(cfg.episodes, len(bounds)), replace=False)
    bounds = sorted(
        (bounds[i] for i in picks), key=lambda ab: ab[1] - ab[0]
    )  # similar lengths batch together
    task = progress.add_task(root.name, total=len(bounds)) if progress else None
    rows = []
    for i in range(0, len(bounds), cfg.batch_size):
        batch = bounds[i : i + cfg.batch_size]
        starts = np.array([a for a, _ in batch])
        ends = np.array([b for _, b in batch])
        steps = -(-(int((ends - starts).max()) - 1) // c) * c  # whole chunks covering the longest episode
        index = np.minimum(
            starts[:, None] + np.arange(steps), ends[:, None] - 1
        )  # past its end: its last action
        actions = dataset.actions[index]  # (B, steps, A)
        env.reset(start_observations(dataset, starts, np.asarray(dataset.frames[starts])), seed=cfg.seed + i)
        frames = np.concatenate(
            [env.step(actions[:, s : s + c])[1]["frames"] for s in range(0, steps, c)], axis=1
        )  # (B, steps, H, W, 3) uint8: imagined frame k follows recorded frame start + k
        for j, (a, b) in enumerate(batch):
            imagined = frames[j, : b - a - 1]
            reading = np.asarray(score(imagined)[0], dtype=np.float64)
            rows.append({
                "dataset": str(root),
                "episode_start": int(a),
                "frames": int(b - a),
                "real_success": bool(truth_success[a:b].any()),
                "real_max_progress": float(np.clip(truth_progress[a:b], 0, 1).max()),
                "imagined_max_progress": float(np.clip(reading, 0, 1).max()),
            })  # fmt: skip
        if progress:
            progress.advance(task, len(batch))
    return rows


def agreement_at(rows: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    """Imagined success rate and per-episode agreement with the real outcome at ``threshold``."""
    imagined = np.array([r["imagined_max_progress"] >= threshold for r in rows])
    real = np.array([r["real_success"] for r in rows])
    return {"imagined_success_rate": float(imagined.mean()), "agreement": float((imagined == real).mean())}


# ----------------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------------


def run_calibrate(cfg: CalibrateConfig, overwrite: bool = False) -> dict[str, Any]:
    """Fit the threshold of ``cfg.world_model`` + ``cfg.value_model`` on ``cfg.data`` into ``cfg.out``."""
    device = resolve_device(cfg.device)
    # Every input is checked before out is written (a bad input leaves no half-made run).
    value = load_value_model(cfg.value_model, device)
    env = load_env(cfg.world_model, device, {}, cfg.seed, key="world_model")
    roots = find_eval_datasets(cfg.data)
    opened = {}
    for root in roots:
        check_dataset(root, env, cfg.world_model)
        features = read_info(root).get("features", {})
        if GT_SUCCESS not in features or GT_PROGRESS not in features:
            raise DojoError(
                f"{root} has no {GT_SUCCESS}/{GT_PROGRESS}: calibrate needs the dojo's ground truth"
            )
        opened[root] = open_clips(root, env, cfg.cache_dir), read_frame_table(root, [GT_PROGRESS, GT_SUCCESS])
    run = prepare_run_dir(cfg.out, "calibrate", asdict(cfg), overwrite)
    out = run.path

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with make_progress() as progress:
        for root, (dataset, table) in opened.items():
            rows += replay_dataset(env, value.score, root, dataset, table, cfg, progress)
    imagined = np.array([r["imagined_max_progress"] for r in rows])
    real = np.array([r["real_success"] for r in rows])
    threshold = calibrated_threshold(imagined, real)
    task_threshold = get_task(cfg.task).success_threshold
    result = {
        "success_threshold": threshold,
        "task_threshold": task_threshold,
        "episodes": len(rows),
        "real_success_rate": float(real.mean()),
        "at_calibrated_threshold": agreement_at(rows, threshold),
        "at_task_threshold": agreement_at(rows, task_threshold),
        "world_model": {
            "path": str(Path(cfg.world_model).resolve()),
            "files": file_hashes(Path(cfg.world_model)),
        },
        "value_model": {
            "path": str(Path(cfg.value_model).resolve()),
            "files": file_hashes(Path(cfg.value_model)),
        },
        "data": [str(r) for r in roots],
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(out / CALIBRATION_FILE, result)
    with open(out / EPISODES_FILE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run.finish({k: v for k, v in result.items() if k not in ("world_model", "value_model")})
    return result


def print_calibration(result: dict[str, Any]) -> None:
    fitted, task = result["at_calibrated_threshold"], result["at_task_threshold"]
    print(
        f"{result['episodes']} held-out episodes, {result['real_success_rate']:.0%} real success; "
        f"at the task's threshold {result['task_threshold']:.2f}: {task['imagined_success_rate']:.0%} imagined, "
        f"{task['agreement']:.0%} of episodes agree; at the calibrated threshold {result['success_threshold']:.3f}: "
        f"{fitted['imagined_success_rate']:.0%} imagined, {fitted['agreement']:.0%} agree"
    )


__all__ = ["CALIBRATION_FILE", "CalibrateConfig", "print_calibration", "replay_dataset", "run_calibrate"]
