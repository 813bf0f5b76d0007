"""``dojo-bench wm-eval``: how well a world-model release predicts recorded video, per horizon: PSNR and SSIM, and
the probe's agent and T-centroid errors in pixels and T-angle error in degrees (world_model/probe.py), each beside
copy-last-frame.

For each dataset root, ``episodes`` episodes (chosen with ``seed`` among those long enough) are started in
``ImaginedEnv`` from their first recorded frame and state; the recorded actions are fed chunk by chunk
(``action_chunk_size`` at a time, the model's own predicted state carries over as in any imagined rollout), and
the predicted frames are compared with the recorded ones by ``video_metrics.horizon_table``, beside the
copy-last-frame baseline. ``action[t]`` is applied after frame t (batch.py), so predicted frame k (1-based) is
compared with recorded frame ``start + k``.

All selected episodes of a dataset are rolled for the same number of frames: the longest requested horizon rounded
up to whole chunks, or less when the shortest selected episode ends sooner (the table then stops there).

Layout of ``out=DIR``: ``run.json``; ``metrics.json`` (per dataset: root, episodes, frames, the horizon table);
``metrics.csv`` (one row per dataset and horizon); with ``size=tiny`` and no ``release=``, ``model/`` (a tiny
``dojo-bench train`` run whose release is evaluated on its own validation split).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from dojo_bench.core.arrays import to_numpy
from dojo_bench.core.checks import check_int, check_parts
from dojo_bench.core.devices import check_device, resolve_device
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.keys import ACTION, GT_OBJECT_POSE, GT_PROGRESS, OBS_IMAGE, OBS_STATE
from dojo_bench.core.progress import make_progress
from dojo_bench.core.run_dir import prepare_run_dir, write_json
from dojo_bench.dojo.inspect import find_datasets, is_lerobot_dataset
from dojo_bench.value.value_model import load_value_model, read_frame_table, scalar_column
from dojo_bench.verbs.inputs import TinyModel, load_env
from world_model.data import ClipDataConfig, ClipDataset, episode_table, read_info
from world_model.probe import probe_table
from world_model.sampler import SamplerConfig
from world_model.video_metrics import DEFAULT_HORIZONS, horizon_table, select_horizons

METRICS_FILE = "metrics.json"
CSV_FILE = "metrics.csv"
PROBE_COLUMNS = ("agent_px", "copy_agent_px", "tee_px", "copy_tee_px", "tee_deg", "copy_tee_deg")
CSV_COLUMNS = ("dataset", "horizon", "episodes", "psnr", "ssim", "copy_psnr", "copy_ssim", *PROBE_COLUMNS)


@dataclass
class WmEvalConfig:
    """What ``dojo-bench wm-eval`` evaluates. Built by the CLI from Hydra (conf/wm-eval); validated here."""

    out: str = ""  # directory to write metrics.json, metrics.csv (required)
    release: str | None = None  # a world-model release dir (`dojo-bench train` OUT/release); size=tiny trains
    #   one when null
    data: str | list[str] | None = None  # dataset root(s) or `dojo-bench data` out dir(s) (their
    #   validation/counterfactual splits); a list: data=[a,b]. size=tiny with no release uses the tiny model's
    #   own validation data
    horizons: list[int] = field(
        default_factory=lambda: list(DEFAULT_HORIZONS)
    )  # predicted frames at which to
    #   report; the longest rolled is always added
    episodes: int = 8  # episodes per dataset (chosen with seed among those long enough)
    batch_size: int = 8  # episodes imagined together
    seed: int = 0  # chooses the episodes
    device: str = "auto"  # auto | cpu | cuda
    preset: str = "default"  # the size preset, set by size=default|tiny
    sampler: dict[str, Any] = field(default_factory=dict)  # sampler overrides; null: the release's own (35
    #   Euler steps for the default model)
    cache_dir: str | None = None  # decoded-frame caches; null: $DOJO_BENCH_CACHE/frames or
    #   ~/.cache/dojo-bench/frames
    value_model: str | None = None  # a value-model release dir: also report its progress error on imagined vs
    #   real frames (needs gt.progress)

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write metrics.json")
        check_device(self.device)
        self.horizons = [self.horizons] if isinstance(self.horizons, int) else list(self.horizons)
        if not self.horizons:
            raise UsageError(
                "horizons must list at least one horizon (predicted frames), e.g. horizons=[1,4,12]"
            )
        for h in self.horizons:
            check_int("horizons", h, hint=" in every entry (predicted frames)")
        for name in ("episodes", "batch_size"):
            check_int(name, getattr(self, name))
        check_int("seed", self.seed, minimum=0)
        check_parts({"sampler": lambda s: SamplerConfig(**s)}, vars(self))
        if self.release is None and self.preset != "tiny":
            raise UsageError("release=DIR is required (size=tiny trains a tiny model when it is not given)")
        if self.data is None and not (self.preset == "tiny" and self.release is None):
            raise UsageError("data=DIR is required (a LeRobot dataset or a `dojo-bench data` out dir)")


# ----------------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------------


def find_eval_datasets(entries: str | list[str]) -> list[Path]:
    """Dataset roots: a root itself, or the sub-datasets of a `dojo-bench data` out dir without its ``train``
    split (the model saw it) when it has others (validation, counterfactual)."""
    roots: list[Path] = []
    for entry in [entries] if isinstance(entries, str | Path) else entries:
        path = Path(entry).expanduser()
        if is_lerobot_dataset(path):
            roots.append(path)
            continue
        found = find_datasets(path)  # one DojoError line when there is none
        held_out = [p for p in found if p.name != "train" and not p.name.endswith("_actions")]
        roots.extend(held_out or found)
    return roots


def check_dataset(root: Path, env, release: str | Path) -> None:
    """One clear line when the dataset cannot be rolled by the release: missing keys, another image size or
    action/state dimension."""
    features = read_info(root).get("features", {})
    missing = [key for key in (OBS_IMAGE, ACTION, OBS_STATE) if key not in features]
    if missing:
        raise DojoError(
            f"{root} has no {', '.join(missing)}: wm-eval feeds recorded actions and states to the world model"
        )
    shape = tuple(features[OBS_IMAGE].get("shape", ()))
    size = env.image_size
    if shape != (size, size, 3):
        raise DojoError(
            f"release {release} takes {size}x{size}x3 frames but {root} has {'x'.join(map(str, shape))}"
        )
    for key, dim in ((ACTION, env.action_dim), (OBS_STATE, env.state_dim)):
        got = tuple(features[key].get("shape", ()))
        if got != (dim,):
            raise DojoError(f"release {release} takes {key} of dimension {dim} but {root} has shape {got}")


def frames_to_predict(horizons: list[int], chunk_size: int) -> int:
    """Predicted frames per episode: the longest horizon, rounded up to whole action chunks."""
    return math.ceil(max(horizons) / chunk_size) * chunk_size


def check_horizons(root: Path, chunk_size: int, horizons: list[int]) -> None:
    """One line when no episode of ``root`` is long enough for the longest horizon (episodes are drawn among those
    that are; a horizon is never cut short without a word)."""
    need = 1 + frames_to_predict(horizons, chunk_size)
    longest = int(episode_table(root)["length"].max())
    if longest < need:
        reach = (longest - 1) // chunk_size * chunk_size
        raise DojoError(
            f"horizons up to {max(horizons)} need episodes of {need} frames, but the longest in {root} has "
            f"{longest}: choose horizons up to {reach}" + (" (or longer episodes)" if reach else "")
        )


# ----------------------------------------------------------------------------------------------------------------------
# Rollouts
# ----------------------------------------------------------------------------------------------------------------------


def value_model_agreement(
    score, predicted: np.ndarray, real: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    """How the value model reads imagined frames against the real frames of the same steps.

    ``score``: frames (N, H, W, 3) uint8 -> progress (N,); ``predicted``/``real``: (B, K, H, W, 3) uint8;
    ``truth``: the real frames' ground-truth progress (B, K). Mean absolute errors over every predicted step."""
    b, k = truth.shape

    def progress(frames: np.ndarray) -> np.ndarray:
        out = score(frames.reshape(b * k, *frames.shape[2:]))
        out = out[0] if isinstance(out, tuple) else out
        out = to_numpy(out)
        return out.astype(np.float64).reshape(b, k)

    on_imagined, on_real = progress(predicted), progress(real)
    return {
        "imagined_vs_truth_mae": float(np.abs(on_imagined - truth).mean()),
        "real_vs_truth_mae": float(np.abs(on_real - truth).mean()),
        "imagined_vs_real_mae": float(np.abs(on_imagined - on_real).mean()),
        "truth_mean": float(truth.mean()),
        "frames": int(b * k),
    }


def open_clips(root: Path, env, cache_dir: str | None) -> ClipDataset:
    """``root``'s frames, actions and states as ``env`` rolls them (one context frame, then action chunks),
    decoded into the frame cache: opened before out is written, so damaged data is one line and no run."""
    c = env.chunk_size
    data_cfg = ClipDataConfig(
        train_roots=[str(root)],
        clip_length=1 + c,
        temporal_compression=c,
        image_size=env.image_size,
        cache_dir=cache_dir,
        object_pose=GT_OBJECT_POSE in read_info(root)["features"],
    )
    return ClipDataset(root, data_cfg)


def start_observations(dataset: ClipDataset, starts: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """What an env resets from at the frames ``starts`` of ``dataset``: their frames (B, H, W, 3) and states, and
    the object's pose where the dataset records it (a world model with the object's pose starts from it)."""
    observations = {OBS_IMAGE: frames, OBS_STATE: dataset.states[starts]}
    if dataset.poses is not None:
        observations[GT_OBJECT_POSE] = dataset.poses[starts]
    return observations


def evaluate_dataset(
    env, root: Path, dataset: ClipDataset, cfg: WmEvalConfig, progress=None, value=None
) -> dict[str, Any]:
    """Roll ``cfg.episodes`` episodes of ``root`` (opened by ``open_clips``) in ``env``; returns {root, episodes,
    frames, horizons: table}, plus ``value_model`` (``value_model_agreement``) when a value model is given."""
    c = env.chunk_size
    length = frames_to_predict(cfg.horizons, c)  # predicted frames per episode, whole chunks
    bounds = [(a, b) for a, b in dataset.episode_bounds if b - a >= 1 + length]
    if not bounds:
        raise DojoError(
            f"{root} has no episode of {1 + length} frames for horizons up to {max(cfg.horizons)}"
        )
    rng = np.random.default_rng(cfg.seed)
    picks = sorted(rng.choice(len(bounds), size=min(cfg.episodes, len(bounds)), replace=False))
    bounds = [bounds[i] for i in picks]

    predicted, real, context = [], [], []
    task = progress.add_task(f"{root.name}", total=len(bounds)) if progress else None
    for i in range(0, len(bounds), cfg.batch_size):
        starts = np.array([a for a, _ in bounds[i : i + cfg.batch_size]])
        steps = np.arange(length)
        frames = np.asarray(dataset.frames[starts[:, None] + np.arange(length + 1)])  # (B, 1 + K, H, W, 3)
        actions = dataset.actions[starts[:, None] + steps]  # (B, K, A): action[t] makes frame t + 1
        env.reset(start_observations(dataset, starts, frames[:, 0]), seed=cfg.seed + i)
        chunks = [env.step(actions[:, s : s + c])[1]["frames"] for s in range(0, length, c)]
        predicted.append(np.concatenate(chunks, axis=1))  # (B, K, H, W, 3) uint8
        real.append(frames[:, 1:])
        context.append(frames[:, 0])
        if progress:
            progress.advance(task, len(starts))

    def layout(arrays: list[np.ndarray]) -> torch.Tensor:  # (..., H, W, 3) -> (..., 3, H, W)
        return torch.from_numpy(np.concatenate(arrays)).movedim(-1, -3)

    table = horizon_table(layout(predicted), layout(real), layout(context), cfg.horizons)
    probes = probe_table(
        np.concatenate(predicted), np.concatenate(real), np.concatenate(context), list(table)
    )
    for h, row in table.items():
        row.update(probes.get(h, {}))  # agent and T errors in pixels, beside copy-last's
    result = {"root": str(root), "episodes": len(bounds), "frames": length, "horizons": table}
    if value is not None:
        table = read_frame_table(root, [GT_PROGRESS])
        by_index = dict(
            zip(table["index"].to_numpy().tolist(), scalar_column(table, GT_PROGRESS), strict=True)
        )
        starts = np.array([a for a, _ in bounds])
        truth = np.vectorize(by_index.get)(starts[:, None] + 1 + np.arange(length)).astype(np.float64)
        result["value_model"] = value_model_agreement(
            value.score, np.concatenate(predicted), np.concatenate(real), np.clip(truth, 0.0, 1.0)
        )
    return result


# ----------------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------------


def run_wm_eval(
    cfg: WmEvalConfig, overwrite: bool = False, tiny_model: TinyModel | None = None
) -> dict[str, Any]:
    """Evaluate ``cfg.release`` on ``cfg.data`` into ``cfg.out``; returns the summary also stored in run.json.

    ``tiny_model`` (verbs/tiny.py) trains the model for size=tiny without release=.
    """
    device = resolve_device(cfg.device)
    # Check what the user handed in before anything is written to out (a bad input leaves no half-made run).
    env = value = None
    datasets: dict[Path, ClipDataset] = {}

    def open_all(roots: list[Path], release) -> None:
        for root in roots:
            check_dataset(root, env, release)
            check_horizons(root, env.chunk_size, cfg.horizons)
            datasets[root] = open_clips(root, env, cfg.cache_dir)

    if cfg.value_model is not None:
        value = load_value_model(cfg.value_model, device)
    if cfg.release is not None:
        env = load_env(cfg.release, device, cfg.sampler, cfg.seed)
        open_all(find_eval_datasets(cfg.data), cfg.release)
    run = prepare_run_dir(cfg.out, "wm-eval", asdict(cfg), overwrite)
    out = run.path
    release = cfg.release
    if release is None:
        if tiny_model is None:
            raise UsageError("release=DIR is required")
        release, tiny_data = tiny_model(out)
        env = load_env(release, device, cfg.sampler, cfg.seed)
        open_all(find_eval_datasets(cfg.data if cfg.data is not None else tiny_data), release)

    started = time.perf_counter()
    results: dict[str, Any] = {}
    with make_progress() as progress:
        for root, dataset in datasets.items():
            name = f"{root.parent.name}/{root.name}"
            results[name] = evaluate_dataset(env, root, dataset, cfg, progress, value)
    seconds = time.perf_counter() - started

    summary = {
        "release": str(release),
        "device": device,
        "sampler": asdict(env.sampler.cfg),
        "seed": cfg.seed,
        "requested_horizons": cfg.horizons,
        "seconds": round(seconds, 2),
        "datasets": results,
    }
    write_json(out / METRICS_FILE, summary)
    with open(out / CSV_FILE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for name, result in results.items():
            for h, m in result["horizons"].items():
                writer.writerow(
                    [name, h, result["episodes"]]
                    + [round(m[k], 4) for k in ("psnr", "ssim", "copy_psnr", "copy_ssim")]
                    + [None if m.get(k) is None else round(m[k], 3) for k in PROBE_COLUMNS]
                )
    run.finish({k: v for k, v in summary.items() if k != "datasets"} | {"metrics": str(out / METRICS_FILE)})
    return summary


def print_table(summary: dict[str, Any]) -> None:
    table = Table(title=f"world model vs copy-last-frame ({summary['release']})")
    columns = ("dataset", "episodes", "horizon", "PSNR", "copy PSNR", "SSIM", "copy SSIM",
               "agent px", "copy agent px", "T px", "copy T px", "T deg", "copy T deg")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "dataset" else "right", overflow="fold")
    for name, result in summary["datasets"].items():
        for h, m in result["horizons"].items():
            table.add_row(
                name,
                str(result["episodes"]),
                str(h),
                f"{m['psnr']:.2f}",
                f"{m['copy_psnr']:.2f}",
                f"{m['ssim']:.3f}",
                f"{m['copy_ssim']:.3f}",
                *("-" if m.get(k) is None else f"{m[k]:.2f}" for k in PROBE_COLUMNS),
            )
    console = Console()
    console.print(table)
    for name, result in summary["datasets"].items():
        if "value_model" in result:
            v = result["value_model"]
            console.print(
                f"{name}: value-model progress MAE vs ground truth on imagined frames {v['imagined_vs_truth_mae']:.3f}, "
                f"on the real frames of the same steps {v['real_vs_truth_mae']:.3f}; imagined vs real "
                f"{v['imagined_vs_real_mae']:.3f} ({v['frames']} frames)"
            )


__all__ = ["WmEvalConfig", "run_wm_eval", "print_table", "select_horizons"]
