"""``dojo-bench evaluate``: rank policy checkpoints in imagination and check the ranking against real success.

Every policy (a LeRobot ``pretrained_model`` folder) is rolled out on the same seeds in the real dojo (scored by
its ground truth) and in imagination (``ImaginedEnv`` over a world-model release, started from the real env's
start observations, scored by a value model with a success threshold on progress). ``real_csv=`` (columns
``policy,success_rate``) replaces the real rollouts with a user's real success rates.

Layout of ``out=DIR`` (the run-directory contract of run_dir.py; an unfinished run of the same config resumes
without redoing finished episodes, and a run, finished or not, reopened with other ``policies=`` runs only the
episodes of the policies it has not run; ``checkpoints.json`` keeps each label's checkpoint hash):
- ``episodes/`` + ``episodes.parquet``: one row per (policy, seed, world) (engine/results.py);
- ``summary.json``: per-policy rates with Wilson intervals, provenance, and an ``agreement`` block: predicted vs
  real success per policy, Pearson / Spearman / Kendall / MMRV(sim, real) with bootstrap intervals over episodes,
  calibration MAE (NaN values are written as null);
- ``inputs/`` (size=tiny without policies/world_model/value_model): tiny data, policies and models built here;
- ``curves.parquet`` (per-step progress of every episode) and ``media/<policy slug>/<world>_<seed>.npz`` (frame
  strips of the first ``media_episodes`` seeds per policy), for reports (dojo_bench/engine/media.py); the summary's
  ``media`` block indexes them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from dojo_bench.core.checks import check_int, check_number, check_parts
from dojo_bench.core.devices import check_device
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.files import read_input_text
from dojo_bench.core.metrics import (
    bootstrap_ci,
    calibration_mae,
    calibration_mae_fitted,
    kendall,
    mmrv,
    paired_agreement,
    pearson,
    sampling_ceiling,
    spearman,
)
from dojo_bench.core.run_dir import RUN_FILE, read_record, write_json
from dojo_bench.dojo.tasks import GOAL_POSE
from dojo_bench.engine.media import MediaRecorder, RenderOnly, media_index, write_curves
from dojo_bench.engine.pose_scorer import PoseScorer
from dojo_bench.engine.results import SUMMARY_FILE, ResultStore, run_missing, write_summary_json
from dojo_bench.engine.rollout import (
    IMAGINED,
    REAL,
    GroundTruthScorer,
    ImaginedWorld,
    RealWorlds,
    ReferenceWorld,
    ValueScorer,
)
from dojo_bench.engine.starts import DatasetStarts, DojoStarts, dojo_reset_seeds
from dojo_bench.verbs.inputs import (
    REFERENCE_WORLD,
    TinyInputs,
    open_run,
    resumed_training,
    run_settings,
    success_threshold,
)
from policies.loading import checkpoint_hash
from world_model.sampler import SamplerConfig

SUCCESS_SOURCES = ("value", "pose")  # what reads imagined success (EvaluateConfig.success_from)


@dataclass
class EvaluateConfig:
    """What ``dojo-bench evaluate`` evaluates. Built by the CLI from Hydra (conf/evaluate); validated here."""

    out: str = ""  # directory to write episodes.parquet, summary.json (required)
    policies: list[str] | None = None  # pretrained_model folders: policies=[DIR1,DIR2,...]; labels come from
    #   the folder names
    world_model: str | None = None  # a world-model release dir (`dojo-bench train stage=world_model`
    #   OUT/release)
    value_model: str | None = None  # a value-model release dir (`dojo-bench train stage=value_model`
    #   OUT/release); size=tiny builds tiny policies and models into out/inputs when these are null
    real_csv: str | None = None  # a CSV with columns policy,success_rate: real success rates instead of real
    #   rollouts
    starts: str | None = None  # a LeRobot dataset root: seed i starts from its episode i (a dojo dataset also
    #   resets the real dojo there; other datasets need real_csv=); null: dojo seeds
    task: str = "pusht_bench"  # the dojo task (real env and start observations)
    seeds: int = 50  # episodes per policy and world: seeds seed .. seed+seeds-1
    seed: int = 0  # the first seed
    max_steps: int | None = None  # steps per episode; null: the task's horizon
    batch_size: int = 8  # episodes rolled together
    success_threshold: float | None = None  # imagined success when value-model progress reaches this; null:
    #   calibration='s, else the shipped calibration when both models are the shipped defaults, else the
    #   task's threshold
    calibration: str | None = None  # a `dojo-bench calibrate` out dir fitted for these world and value models
    success_from: str = "value"  # value: the value model reads the imagined frames | pose: the goal's
    #   coverage by the imagined object's pose (world models with pixel.model.object_shape), task's threshold
    workers: int = 0  # real-world worker processes (0: in this process)
    device: str = "auto"  # auto | cpu | cuda
    bootstrap: int = 1000  # bootstrap resamples over episodes for the intervals
    confidence: float = 0.95  # of the intervals
    preset: str = "default"  # the size preset, set by size=default|tiny
    sampler: dict[str, Any] = field(default_factory=dict)  # world-model sampler overrides (null: the
    #   release's own)
    media_episodes: int = 4  # frame strips (for `dojo-bench report`) of the first N seeds per policy and
    #   world; 0: none

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write the results")
        check_device(self.device)
        if isinstance(self.policies, str):
            self.policies = [self.policies]
        for name in ("seeds", "batch_size", "bootstrap"):
            check_int(name, getattr(self, name))
        check_int("workers", self.workers, minimum=0)
        check_int("seed", self.seed, minimum=0, hint=" (the first dojo seed)")
        check_number("confidence", self.confidence, "in (0, 1)", lambda x: 0 < x < 1)
        check_int("media_episodes", self.media_episodes, minimum=0)
        check_int("max_steps", self.max_steps, optional=True)
        check_number(
            "success_threshold", self.success_threshold, "in (0, 1]", lambda x: 0 < x <= 1, optional=True
        )
        check_parts({"sampler": lambda s: SamplerConfig(**s)}, vars(self))
        if self.success_threshold is not None and self.calibration is not None:
            raise UsageError("give success_threshold= or calibration=, not both")
        if self.success_from not in SUCCESS_SOURCES:
            raise UsageError(
                f"success_from must be one of {', '.join(SUCCESS_SOURCES)}, got {self.success_from!r}"
            )
        if self.success_from == "pose" and (
            self.calibration is not None or self.world_model == REFERENCE_WORLD
        ):
            raise UsageError(
                "success_from=pose reads the imagined object's pose at the task's threshold: it takes no "
                "calibration= and needs a learned world model, not world_model=dojo"
            )
        if self.world_model == REFERENCE_WORLD and (self.starts is not None or self.real_csv is not None):
            raise UsageError(
                "world_model=dojo (the state-space reference) runs the dojo's own starts: drop starts= and real_csv="
            )
        if self.preset != "tiny":
            missing = [k for k in ("policies", "world_model", "value_model") if not getattr(self, k)]
            if missing:
                raise UsageError(
                    f"{', '.join(k + '=' for k in missing)} required (size=tiny builds tiny ones when not given)"
                )


# ----------------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------------


def read_real_csv(path: str | Path, labels: list[str]) -> dict[str, float]:
    """{policy: real success rate} from a CSV with columns policy,success_rate; one line on any problem."""
    path = Path(path)
    if not path.is_file():
        raise DojoError(f"real_csv={path} does not exist")
    reader = csv.DictReader(io.StringIO(read_input_text(path), newline=""))
    if not {"policy", "success_rate"} <= set(reader.fieldnames or []):
        raise DojoError(f"real_csv={path} needs columns policy,success_rate; got {reader.fieldnames}")
    rows = list(reader)
    rates: dict[str, float] = {}
    for row in rows:
        try:
            rate = float(row["success_rate"])
        except (TypeError, ValueError):
            raise DojoError(
                f"real_csv={path}: success_rate {row['success_rate']!r} is not a number"
            ) from None
        if not 0 <= rate <= 1:
            raise DojoError(f"real_csv={path}: success_rate {rate} of {row['policy']} is not in [0, 1]")
        name = str(row["policy"]).strip()
        if name in rates:  # two rates for one policy: which one is real is not ours to guess
            raise DojoError(f"real_csv={path} names policy {name} twice")
        rates[name] = rate
    unknown = sorted(set(rates) - set(labels))
    if unknown:
        raise DojoError(
            f"real_csv={path} names unknown policies {', '.join(unknown)}; evaluated policies: {', '.join(labels)}"
        )
    missing = [label for label in labels if label not in rates]
    if missing:
        raise DojoError(f"real_csv={path} has no success_rate for {', '.join(missing)}")
    return rates


def start_observations(cfg: EvaluateConfig, task, env, seeds: list[int]):
    """Where imagined episodes start: the real env's start states on the same seeds, or (``starts=``) the first
    frames of a LeRobot dataset's episodes (seed i = episode i)."""
    if cfg.starts is None:
        return RealWorlds(task).reset

    initial = DatasetStarts(cfg.starts, env.image_size)
    initial.check_seeds(seeds)
    if cfg.real_csv is None:
        dojo_reset_seeds(cfg.starts)  # the real dojo must be able to start there too: refuse now, not mid-run
    return initial


# ----------------------------------------------------------------------------------------------------------------------
# Other policies on the same run dir
# ----------------------------------------------------------------------------------------------------------------------
# ``policies`` is a neutral key: a run dir may be reopened, finished or not, with policies added or dropped; the
# episodes of every policy it has run are kept and only the missing ones run (each batch of seeds is reproducible
# on its own, so the episodes are those a fresh run would give). A label whose checkpoint changed is refused.
NEUTRAL = frozenset({"policies"})
HASHES_FILE = "checkpoints.json"  # {label: checkpoint hash} of every policy with episodes in the run dir


def recorded_hashes(out: Path) -> dict[str, str]:
    """{label: checkpoint hash} of the policies with episodes in ``out``: ``checkpoints.json``, else (a run from
    before that file) the summary's provenance; empty for a new out dir."""
    for path, keys in ((out / HASHES_FILE, ()), (out / SUMMARY_FILE, ("provenance", "checkpoint_hashes"))):
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for key in keys:
            payload = payload.get(key) if isinstance(payload, dict) else None
        if isinstance(payload, dict):
            return {str(label): str(digest) for label, digest in payload.items()}
    return {}


def check_same_checkpoints(out: Path, hashes: dict[str, str]) -> None:
    """Refuse a policy whose label has episodes in ``out`` from another checkpoint (e.g. a folder retrained under
    the same name): reusing them would report the old checkpoint's success as the new one's."""
    recorded = recorded_hashes(out)
    for label, digest in hashes.items():
        if recorded.get(label, digest) != digest:
            raise UsageError(
                f"out={out} holds episodes of {label} from another checkpoint (hash {recorded[label][:12]}, now "
                f"{digest[:12]}): choose another out= or pass overwrite=true"
            )


def policies_changed(out: Path, policies: list[str] | None) -> bool:
    """Whether ``out`` holds a run of other policies than ``policies`` (then a finished run is reopened)."""
    record = read_record(out / RUN_FILE)
    config = record.get("config") if record is not None else None
    return isinstance(config, dict) and config.get("policies") != policies


# ----------------------------------------------------------------------------------------------------------------------
# Agreement
# ----------------------------------------------------------------------------------------------------------------------


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def agreement(
    sim_episodes: dict[str, np.ndarray],
    real_episodes: dict[str, np.ndarray],
    bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Predicted vs real success per policy and the agreement metrics, with bootstrap intervals over episodes.

    ``*_episodes``: {policy: per-episode success (0/1)}, the same policies in both; a real entry holding one
    rate (real_csv) is a fixed number that the bootstrap does not resample."""
    labels = list(sim_episodes)
    sim = [np.asarray(sim_episodes[p], dtype=np.float64) for p in labels]
    real = [np.asarray(real_episodes[p], dtype=np.float64) for p in labels]
    result: dict[str, Any] = {
        "policies": {
            p: {
                "predicted": float(s.mean()),
                "real": float(r.mean()),
                "n_sim": int(s.size),
                "n_real": int(r.size),
            }
            for p, s, r in zip(labels, sim, real, strict=True)
        },
        "n_policies": len(labels),
        "bootstrap_resamples": bootstrap,
        "confidence": confidence,
    }
    metrics = {"pearson": pearson, "spearman": spearman, "kendall": kendall, "mmrv": mmrv}
    for name, fn in metrics.items():
        if len(labels) < 2:
            result[name] = {"value": None, "low": None, "high": None}
            continue
        ci = bootstrap_ci(fn, sim, real, n_resamples=bootstrap, confidence=confidence, seed=seed)
        result[name] = {"value": _clean(ci.point), "low": _clean(ci.low), "high": _clean(ci.high)}
    ci = bootstrap_ci(calibration_mae, sim, real, n_resamples=bootstrap, confidence=confidence, seed=seed)
    result["calibration_mae"] = {"value": _clean(ci.point), "low": _clean(ci.low), "high": _clean(ci.high)}
    result["calibration_mae_fitted"] = {"value": _clean(leave_one_out_calibration(
        [float(s.mean()) for s in sim], [float(r.mean()) for r in real]))}  # fmt: skip
    return result


def paired_block(frame, labels: list[str]) -> dict[str, Any]:
    """Per policy and over all episodes: imagined vs real outcome of the same (policy, seed) (``paired_agreement``)."""
    columns = ["policy", "seed", "success", "max_progress"]
    pairs = frame[frame["world"] == IMAGINED][columns].merge(
        frame[frame["world"] == REAL][columns], on=["policy", "seed"], suffixes=("_sim", "_real")
    )

    def score(rows) -> dict[str, Any]:
        return paired_agreement(rows["success_sim"], rows["success_real"], rows["max_progress_sim"],
                                rows["max_progress_real"])  # fmt: skip

    policies = {
        label: score(pairs[pairs["policy"] == label]) for label in labels if (pairs["policy"] == label).any()
    }
    return {"overall": score(pairs) if len(pairs) else None, "policies": policies}


def leave_one_out_calibration(predicted: list[float], real: list[float]) -> float | None:
    """Calibration MAE after a linear fit on held-out policies: each policy's prediction is mapped through the line
    fitted on all the others (leave one out), then compared with its real success. None when fewer than 3
    policies or when the held-out predictions are all equal (the line is undefined)."""
    if len(predicted) < 3:
        return None
    errors = []
    for i in range(len(predicted)):
        rest = [j for j in range(len(predicted)) if j != i]
        try:
            errors.append(calibration_mae_fitted(
                [predicted[j] for j in rest], [real[j] for j in rest], [predicted[i]], [real[i]]))  # fmt: skip
        except ValueError:
            return None
    return float(np.mean(errors))


# ----------------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------------


def run_evaluation(
    cfg: EvaluateConfig, overwrite: bool = False, tiny_inputs: TinyInputs | None = None
) -> dict[str, Any]:
    """Evaluate ``cfg.policies`` into ``cfg.out``; returns the summary also written to summary.json.

    ``tiny_inputs`` (verbs/tiny.py) builds the inputs for size=tiny without inputs."""
    started = time.perf_counter()
    task, device, max_steps, seeds = run_settings(cfg)
    if cfg.success_from == "pose":
        threshold = cfg.success_threshold or task.success_threshold
        threshold_source = "given as success_threshold=" if cfg.success_threshold else "the task threshold"
    else:
        threshold, threshold_source = success_threshold(
            cfg.success_threshold, cfg.calibration, task, cfg.world_model, cfg.value_model
        )

    def check(loaded, env):
        rates = read_real_csv(cfg.real_csv, list(loaded)) if cfg.real_csv is not None else None
        hashes = None  # given checkpoints are hashed once, here; tiny ones after they are built
        if cfg.policies:
            hashes = {label: checkpoint_hash(path) for label, path in zip(loaded, cfg.policies, strict=True)}
            if not overwrite:
                check_same_checkpoints(Path(cfg.out), hashes)
        return rates, start_observations(cfg, task, env, seeds), hashes

    run, (policies, world_model, value_model), (loaded, env, value), (real_rates, initial, hashes) = open_run(
        cfg,
        "evaluate",
        overwrite,
        tiny_inputs,
        device,
        check,
        NEUTRAL,
        policies_changed(Path(cfg.out), cfg.policies),
    )
    out = run.path
    shape = getattr(env, "object_shape", "") if cfg.success_from == "pose" else ""
    if cfg.success_from == "pose" and not shape:  # refused before any episode runs
        raise DojoError(
            f"success_from=pose needs a world model that carries the object's pose; {world_model} does not "
            "(train it with pixel.model.object_shape=tee)"
        )

    store = ResultStore(out)
    if hashes is None:
        hashes = {label: checkpoint_hash(path) for label, path in zip(loaded, policies, strict=True)}
    write_json(out / HASHES_FILE, {**recorded_hashes(out), **hashes})
    ran = {}
    media_seeds = seeds[: cfg.media_episodes]
    recorder = MediaRecorder(out, media_seeds, value_fn=lambda frames: value.score(frames)[0])
    with RealWorlds(task, workers=cfg.workers) as real:
        if real_rates is None:
            if cfg.starts is not None:
                real = DojoStarts(real, initial)
            world = RenderOnly(real, media_seeds)
            ran[REAL] = run_missing(store, loaded, world, seeds, max_steps, GroundTruthScorer(),
                                    cfg.batch_size, on_batch=recorder.flush, recorder=recorder)  # fmt: skip
        if world_model == REFERENCE_WORLD:
            imagined = ReferenceWorld(task, workers=cfg.workers)
        else:
            imagined = ImaginedWorld(env, initial, noise_seed=cfg.seed)
        scorer = PoseScorer(GOAL_POSE, threshold, shape) if shape else ValueScorer(value.score, threshold)
        imagine_started = time.perf_counter()
        ran[IMAGINED] = run_missing(store, loaded, imagined, seeds, max_steps, scorer, cfg.batch_size,
                                    on_batch=recorder.flush, recorder=recorder)  # fmt: skip
        imagine_seconds = time.perf_counter() - imagine_started
    curves = write_curves(out, list(loaded))

    frame = store.read()
    frame = frame[frame["policy"].isin(list(loaded))]
    sim_episodes, real_episodes = {}, {}
    for label in loaded:
        rows = frame[frame["policy"] == label]
        sim_episodes[label] = rows[rows["world"] == IMAGINED]["success"].astype(float).to_numpy()
        if real_rates is None:
            real_episodes[label] = rows[rows["world"] == REAL]["success"].astype(float).to_numpy()
        else:
            real_episodes[label] = np.array([real_rates[label]])
    block = agreement(sim_episodes, real_episodes, cfg.bootstrap, cfg.confidence, cfg.seed)
    if real_rates is None:
        block["paired"] = paired_block(frame, list(loaded))
    # The ceiling of a ranking's agreement: none for a single policy (nothing to rank).
    block["ceiling"] = sampling_ceiling([row["real"] for row in block["policies"].values()], len(seeds),
                                        confidence=cfg.confidence) if len(loaded) > 1 else None  # fmt: skip
    block["real_source"] = str(cfg.real_csv) if real_rates is not None else "dojo"
    block["success_threshold"] = threshold
    block["success_from"] = cfg.success_from
    block["success_threshold_source"] = threshold_source
    block["inputs"] = {"policies": dict(zip(loaded, policies, strict=True)), "world_model": world_model,
                       "value_model": value_model}  # fmt: skip
    block["episodes_run_now"] = ran
    # The whole closed loop (policy + world model + value model), over the imagined episodes run now.
    block["closed_loop"] = {
        "imagined_frames": imagined.frames_stepped,
        "seconds": round(imagine_seconds, 3),
        "frames_per_second": round(imagined.frames_stepped / imagine_seconds, 3)
        if imagined.frames_stepped
        else None,
        "batch_size": cfg.batch_size,
        "device": device,
        "sampler": asdict(env.sampler.cfg),
    }
    wall = time.perf_counter() - started
    summary = store.summary(config=asdict(cfg), checkpoint_hashes=hashes, seeds=seeds, wall_time_s=wall,
                            policies=list(loaded))  # fmt: skip
    summary["agreement"] = block
    summary["provenance"]["resumed_training"] = resumed_training(world_model, value_model, policies)
    summary["media"] = {
        "curves": curves.name if curves is not None else None,
        "frame_stride": recorder.frame_stride,
        "media_seeds": media_seeds,
        "files": media_index(out, list(loaded)),
    }
    write_summary_json(summary, out / SUMMARY_FILE)
    run.finish({"summary": str(out / SUMMARY_FILE), "episodes": summary["n_episodes"], "episodes_run_now": ran,
                "wall_time_s": round(wall, 2)})  # fmt: skip
    return summary


def print_table(summary: dict[str, Any]) -> None:
    block = summary["agreement"]
    table = Table(title=f"predicted (imagined) vs real success ({block['real_source']})")
    for column in ("policy", "predicted", "real", "episodes (sim / real)"):
        table.add_column(column, justify="left" if column == "policy" else "right", overflow="fold")
    for policy, row in block["policies"].items():
        table.add_row(
            policy, f"{row['predicted']:.1%}", f"{row['real']:.1%}", f"{row['n_sim']} / {row['n_real']}"
        )
    console = Console()
    console.print(table)
    if "success_threshold" in block:
        reading = "object-pose coverage" if block.get("success_from") == "pose" else "value-model progress"
        console.print(
            f"imagined success: {reading} >= {block['success_threshold']:.3f} "
            f"({block.get('success_threshold_source', 'the task threshold')})"
        )

    def show(m: dict[str, Any]) -> str:
        if m["value"] is None:
            return "n/a"
        low = "n/a" if m["low"] is None else f"{m['low']:.3f}"
        high = "n/a" if m["high"] is None else f"{m['high']:.3f}"
        return f"{m['value']:.3f} [{low}, {high}]"

    level = f"{block['confidence']:.0%}"
    console.print(
        ", ".join(f"{name} {show(block[name])}" for name in ("pearson", "spearman", "kendall", "mmrv"))
        + f", calibration MAE {show(block['calibration_mae'])} ({level} bootstrap intervals)"
    )
    paired, ceiling = block.get("paired", {}).get("overall"), block.get("ceiling")
    if paired:
        console.print(
            f"paired episodes (same policy and seed): imagined and real outcome agree in {paired['accuracy']:.1%} "
            f"of {paired['n']}; mean max-progress gap {paired['progress_gap']:.3f}"
        )
    if ceiling:
        console.print(
            f"sampling ceiling at {ceiling['seeds']} seeds (right rates, unrelated episodes): pearson "
            f"{ceiling['pearson']:.3f} [{ceiling['pearson_low']:.3f}, {ceiling['pearson_high']:.3f}], mmrv "
            f"{ceiling['mmrv']:.3f} [{ceiling['mmrv_low']:.3f}, {ceiling['mmrv_high']:.3f}]"
        )
    fitted = block.get("calibration_mae_fitted", {}).get("value")
    loop = block.get("closed_loop", {})
    console.print(
        f"calibration MAE after a leave-one-out linear fit: {'n/a' if fitted is None else f'{fitted:.3f}'}; "
        f"closed loop (policy + world model + value model): {loop.get('frames_per_second')} imagined frames/s "
        f"at batch {loop.get('batch_size')} on {loop.get('device')}"
    )


__all__ = ["EvaluateConfig", "run_evaluation", "print_table", "read_real_csv", "agreement"]
