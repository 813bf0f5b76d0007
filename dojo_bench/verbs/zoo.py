"""``dojo-bench zoo``: rebuild the reference zoo of policy checkpoints from nothing, resumably.

The zoo is the yardstick every world model is judged on: checkpoints of the project's pixel policy whose real
success on the benchmark task spreads over 10-90%. This module records the data, trains the policies, measures
every saved checkpoint in the real dojo and picks the shipped set, with no person between stages. Each stage is a
run directory of its own under ``out=DIR`` (core/run_dir.py); a finished stage is reused, so an interrupted build,
started again with the same command, continues where it stopped (the data stage keeps its finished shards, the
real-success stage its finished episodes, a policy run resumes from its last Lightning checkpoint).

Stages (``out=DIR`` layout):

1. ``data/expert``: the re-planning expert (look-ahead labels per chunk, ``label_chunk``), DAgger's round 0;
2. for each round ``i`` in ``rounds``: ``data/dagger{i}`` (i >= 1: the previous round's checkpoint drives, the
   expert labels) and ``policies/round{i}`` (trained on the expert data and every DAgger round so far, saved at
   ``save_steps``);
3. ``real/``: every saved checkpoint in the real dojo on seeds ``0 .. real_seeds-1`` (``episodes.parquet``);
4. ``zoo/``: the selected checkpoints (``select_spread``), stored in fp16 where that moves their success by at
   most ``max_fp16_change`` on the same seeds (every candidate's fp16 copy is measured in ``real/`` too, and
   checkpoints that can be stored in fp16 are preferred among equally spread ones), with ``manifest.json``.
   ``dojo-bench zoo ship zoo_dir=OUT/zoo`` copies it into the package.

The world and value models never see these rollouts: the zoo is what they are judged on.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from dojo_bench.core.checks import check_int, check_number
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.manifest import MANIFEST_FILE, file_hashes
from dojo_bench.core.run_dir import RUN_FILE, Stages, prepare_run_dir, write_json
from dojo_bench.dojo.generate import run_data
from dojo_bench.dojo.recording import DataConfig
from dojo_bench.dojo.tasks import get_task
from dojo_bench.engine.results import ResultStore, run_missing
from dojo_bench.engine.rollout import REAL, GroundTruthScorer, RealWorlds
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.run import run_train
from policies.loading import load_policy

ZOO_DIR = "zoo"
FP16_SUFFIX = "@fp16"
SELECTION_KEYS = frozenset({"count", "low", "high", "min_gap", "min_runs", "fp16", "max_fp16_change"})


@dataclass
class ZooConfig:
    """What ``dojo-bench zoo`` builds. Built by the CLI from Hydra (its keys: dojo_bench/schemas.py); validated
    here."""

    out: str | None = None  # where every stage goes (required to build); the shipped set ends in out/zoo
    task: str = "pusht_bench"  # the dojo task
    seed: int = 0  # the data stages' seed where their settings give none (round i's DAgger data: + 1000 i)
    device: str = "auto"  # auto | cpu | cuda (policy training)
    workers: int = 2  # processes for recording and the real rollouts
    preset: str = "default"  # the size preset, set by size=default|tiny
    expert_data: dict[str, Any] = field(default_factory=dict)  # `dojo-bench data kind=robot policy=expert
    #   label_chunk=8`: DAgger's round 0
    dagger_data: dict[str, Any] = field(default_factory=dict)  # each round's `dojo-bench data ...
    #   learner=<the previous round's checkpoint>`
    train: dict[str, Any] = field(default_factory=dict)  # `dojo-bench train stage=policy` settings shared by
    #   every round (the measured recipe)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # round 0 trains on the expert data; round i
    #   also records DAgger data first, driven by round i-1's checkpoint at learner_step (null: its last), and
    #   trains on all data so far
    real_seeds: int = 100  # real episodes per checkpoint (dojo seeds 0..real_seeds-1)
    batch_size: int = 25  # real episodes rolled out together
    real_max_steps: int | None = None  # cap on real episode length; null: the task's horizon
    count: int = 10  # checkpoints to ship (25 MB budget)
    low: float = 0.10  # shipped checkpoints' real success lies in [low, high] ...
    high: float = 0.90  # ... (see low)
    min_gap: float = 0.05  # ... no two closer than this where avoidable ...
    min_runs: int = 3  # ... from at least this many rounds where possible
    fp16: bool = True  # store weights in float16 where that moves real success by at most max_fp16_change
    max_fp16_change: float = 0.02  # keep the fp32 weights where fp16 moves real success by more than this

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write the zoo's data, runs and checkpoints")
        get_task(self.task)
        for key in ("workers", "seed"):
            check_int(key, getattr(self, key), minimum=0)
        for key in ("real_seeds", "batch_size", "count", "min_runs"):
            check_int(key, getattr(self, key))
        check_int("real_max_steps", self.real_max_steps, optional=True)
        for key in ("low", "high"):
            check_number(key, getattr(self, key), "in [0, 1] (a success rate)", lambda x: 0 <= x <= 1)
        if not self.low < self.high:
            raise UsageError(f"need 0 <= low < high <= 1, got low={self.low} high={self.high}")
        for key in ("min_gap", "max_fp16_change"):
            check_number(key, getattr(self, key), "in [0, 1)", lambda x: 0 <= x < 1)
        if not isinstance(self.fp16, bool):
            raise UsageError(f"fp16 must be true or false, got {self.fp16!r}")
        if not self.rounds:
            raise UsageError("rounds= must list at least one training round")
        if not all(isinstance(r, dict) for r in self.rounds):
            raise UsageError(
                "rounds= must list mappings of training settings, e.g. rounds=[{seed: 1, max_steps: 100}]"
            )

        names = {f.name for f in _fields(TrainConfig)} | {"learner_step"}
        checks = [("expert_data", self.expert_data, {f.name for f in _fields(DataConfig)}),
                  ("dagger_data", self.dagger_data, {f.name for f in _fields(DataConfig)}),
                  ("train", self.train, names)]  # fmt: skip
        checks += [(f"rounds[{i}]", dict(r), names) for i, r in enumerate(self.rounds)]
        for stage, settings, allowed in checks:  # unknown keys are refused before anything is written
            unknown = sorted(set(settings) - allowed)
            if unknown:
                raise UsageError(
                    f"zoo {stage}: unknown key(s) {', '.join(unknown)} (see `dojo-bench zoo --help`)"
                )
        # Every stage's config built now, with stand-ins for the paths earlier stages make: a bad value is one
        # line before out is written, not an error hours into the build.
        stand_in = Path(self.out) / "stand-in"
        data_config(self, "expert", self.expert_data, stand_in, label_chunk=self.chunk_size)
        data_config(self, "dagger1", self.dagger_data, stand_in)
        previous = None
        for i in range(len(self.rounds)):
            config, learner_step = round_config(self, i, [str(stand_in)], stand_in)
            if previous is not None and learner_step is not None and learner_step not in previous:
                raise UsageError(
                    f"zoo rounds[{i}]: learner_step={learner_step} is not a saved step of round {i - 1} "
                    f"({', '.join(map(str, previous))})"
                )
            previous = sorted({*(config.save_steps or []), config.max_steps})

    @property
    def chunk_size(self) -> int:
        """The policies' chunk: the look-ahead of the expert's labels and the label stride."""
        return int(self.train.get("policy", {}).get("chunk_size", 8))


def _fields(config_class: type):
    return fields(config_class)


# -- selection (pure) ------------------------------------------------------------------------------------------
def select_spread(
    rates: dict[str, float],
    runs: dict[str, str],
    count: int,
    low: float,
    high: float,
    min_gap: float,
    min_runs: int = 1,
    prefer: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Labels of at most ``count`` checkpoints whose rates lie in [low, high], spread as evenly as possible.

    Greedy max-min: start from the lowest and highest rate in range (or a preferred one within half a gap of
    them), then repeatedly add the candidate farthest
    from every chosen rate, never one closer than the current gap. The gap starts at ``min_gap``; when no candidate
    respects it and fewer than ``count`` are chosen, it is halved (down to 0), so ``count`` is met whenever there
    are enough candidates and two close rates are chosen only when that is unavoidable. Among candidates within half
    a gap of the farthest, one from a run not yet represented goes first while fewer than ``min_runs`` runs are;
    remaining ties go to the label that sorts first, so the choice is deterministic. Returned sorted by rate.
    """
    candidates = sorted((r, k) for k, r in rates.items() if low <= r <= high)
    if not candidates or count <= 0:
        return []

    def end(rates_from_end: list[tuple[float, str]]) -> tuple[float, str]:
        """The first of a sorted end of the range, or a preferred one within half a gap of it."""
        near = [c for c in rates_from_end if abs(c[0] - rates_from_end[0][0]) <= min_gap / 2 + 1e-12]
        return next((c for c in near if c[1] in prefer), rates_from_end[0])

    chosen = [end(candidates)]
    if count > 1 and len(candidates) > 1:
        chosen.append(end(candidates[::-1]))
    gap = min_gap
    while len(chosen) < min(count, len(candidates)):
        scored = []
        for rate, label in candidates:
            distance = min(abs(rate - r) for r, _ in chosen)
            if (rate, label) not in chosen and distance >= gap:
                scored.append((distance, rate, label))
        if not scored:
            gap = gap / 2 if gap > 1e-4 else 0.0
            continue
        farthest = max(d for d, _, _ in scored)
        pool = [c for c in scored if c[0] >= farthest - gap / 2]
        represented = {runs[k] for _, k in chosen}
        fresh = [c for c in pool if runs[c[2]] not in represented]
        if len(represented) < min_runs and fresh:
            pool = fresh
        preferred = [c for c in pool if c[2] in prefer]
        _, rate, label = min(preferred or pool, key=lambda c: (-c[0], c[2]))
        chosen.append((rate, label))
    return [label for _, label in sorted(chosen)]


# -- fp16 ------------------------------------------------------------------------------------------------------
def write_fp16_copy(source: Path, target: Path) -> None:
    """Copy a ``pretrained_model`` folder with its model weights stored in float16 (processor files as they are).
    Loading upcasts them into the float32 parameters, so the copy loads through the same loader."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    weights = load_file(str(source / "model.safetensors"))
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    save_file(half, str(target / "model.safetensors"), metadata={"format": "pt"})


# -- the build -------------------------------------------------------------------------------------------------
def data_config(cfg: ZooConfig, name: str, settings: dict[str, Any], out: Path, **extra: Any) -> DataConfig:
    """The `dojo-bench data` config of the data stage ``name`` (expert, dagger1, ...) with its ``settings``."""
    values = {"kind": "robot", "task": cfg.task, "policy": "expert", "workers": cfg.workers, "seed": cfg.seed,
              **settings, **extra, "out": str(out)}  # fmt: skip
    return _build(DataConfig, values, f"data/{name}")


def round_config(cfg: ZooConfig, i: int, datasets: list[str], out: Path) -> tuple[TrainConfig, int | None]:
    """Round ``i``'s `dojo-bench train stage=policy` config on ``datasets``, and its learner_step."""
    settings = dict(cfg.rounds[i])
    learner_step = settings.pop("learner_step", None)
    values = {"stage": "policy", "device": cfg.device, "policy_episodes": "all", "label_stride": cfg.chunk_size,
              **cfg.train, **settings, "data": datasets, "out": str(out)}  # fmt: skip
    return _build(TrainConfig, values, f"rounds[{i}]"), learner_step


def _build(config_class: type, settings: dict[str, Any], stage: str):
    try:
        return config_class(**settings)
    except (TypeError, DojoError) as error:
        raise UsageError(f"zoo {stage}: {error}") from None


def run_zoo(cfg: ZooConfig, overwrite: bool = False, log=print, command: str = "") -> dict[str, Any]:
    """Build every stage into ``cfg.out``; returns (and writes to ``zoo/manifest.json``) the shipped set."""
    started = time.perf_counter()
    # The selection settings only shape the last stage, which is always redone: changing them re-selects from
    # the measured checkpoints instead of rebuilding (resume an unfinished build, or a finished one with them).
    run = prepare_run_dir(cfg.out, "zoo", asdict(cfg), overwrite, neutral=SELECTION_KEYS,
                          reopen_finished=True)  # fmt: skip
    out = run.path
    stage = Stages("zoo", log)
    seconds = stage.seconds

    def record(name: str, settings: dict[str, Any], **extra: Any) -> Path:
        path = out / "data" / name
        return stage(f"data/{name}", path,
                     lambda p: run_data(data_config(cfg, name, settings, p, **extra), overwrite=False))  # fmt: skip

    datasets = [record("expert", cfg.expert_data, label_chunk=cfg.chunk_size)]
    checkpoints: dict[str, str] = {}  # label -> pretrained_model folder
    made: dict[str, dict[str, Any]] = {}  # label -> how it was made
    previous: dict[str, str] | None = None
    for i in range(len(cfg.rounds)):
        name = f"round{i}"
        path = out / "policies" / name
        if i > 0:
            assert previous is not None
            learner_step = cfg.rounds[i].get("learner_step")  # a saved step of the round before (checked)
            step = str(learner_step) if learner_step is not None else max(previous, key=int)
            datasets.append(record(f"dagger{i}", cfg.dagger_data, learner=previous[step],
                                   seed=cfg.seed + 1000 * i))  # fmt: skip
        config, _ = round_config(cfg, i, [str(d) for d in datasets], path)
        stage(f"policies/{name}", path, lambda p, c=config: run_train(c, overwrite=False))
        summary = json.loads((path / RUN_FILE).read_text())["summary"]
        previous = dict(summary["checkpoints"])
        for step, folder in previous.items():
            label = f"{name}-step{int(step):05d}"
            checkpoints[label] = folder
            made[label] = {"run": name, "step": int(step), "seed": config.seed,
                           "data": [Path(d).name for d in datasets], "max_steps": config.max_steps}  # fmt: skip

    real_dir = out / "real"
    rates = measure_real(cfg, checkpoints, real_dir, log)
    candidates = [k for k, v in rates.items() if cfg.low <= v["rate"] <= cfg.high]
    halves = measure_fp16(cfg, {k: checkpoints[k] for k in candidates}, real_dir, log) if cfg.fp16 else {}
    fp16_ok = {
        k for k, h in halves.items() if abs(h["rate"] - rates[k]["rate"]) <= cfg.max_fp16_change + 1e-9
    }
    seconds["real"] = round(time.perf_counter() - started - sum(seconds.values()), 1)
    labels = select_spread({k: v["rate"] for k, v in rates.items()}, {k: made[k]["run"] for k in rates},
                           cfg.count, cfg.low, cfg.high, cfg.min_gap, cfg.min_runs, prefer=fp16_ok)  # fmt: skip
    if not labels:
        raise UsageError(f"no checkpoint's real success lies in [{cfg.low}, {cfg.high}]: nothing to ship")
    manifest = export_zoo(
        cfg, labels, checkpoints, made, rates, halves, fp16_ok, real_dir, out / ZOO_DIR, command
    )
    manifest["build"] = {"stage_seconds": seconds, "wall_time_s": round(time.perf_counter() - started, 1)}
    write_json(out / ZOO_DIR / MANIFEST_FILE, manifest)
    run.finish({"checkpoints": labels, "manifest": str(out / ZOO_DIR / MANIFEST_FILE), **manifest["build"]})
    return manifest


def measure_real(
    cfg: ZooConfig, checkpoints: dict[str, str], real_dir: Path, log
) -> dict[str, dict[str, Any]]:
    """Real success of every checkpoint on dojo seeds 0 .. real_seeds-1; finished episodes are never redone."""
    task = get_task(cfg.task)
    store = ResultStore(real_dir)
    seeds = list(range(cfg.real_seeds))
    factories = {label: (lambda p=path: load_policy(p, device="cpu")) for label, path in checkpoints.items()}
    log(f"zoo: real success of {len(checkpoints)} checkpoints x {len(seeds)} seeds -> {real_dir}")
    with RealWorlds(task, workers=cfg.workers) as world:
        max_steps = cfg.real_max_steps or task.horizon
        run_missing(store, factories, world, seeds, max_steps, GroundTruthScorer(), cfg.batch_size)
    summary = store.summary(seeds=seeds)
    return {label: _rate(summary["policies"][label][REAL]) for label in checkpoints}


def _rate(row: dict[str, Any]) -> dict[str, Any]:
    return {"rate": row["success_rate"], "low": row["ci_low"], "high": row["ci_high"], "n": row["n_episodes"]}


def measure_fp16(
    cfg: ZooConfig, checkpoints: dict[str, str], real_dir: Path, log
) -> dict[str, dict[str, Any]]:
    """Real success of fp16 copies (``real_dir/fp16/LABEL``) of ``checkpoints`` on the same seeds."""
    staging = real_dir / "fp16"
    for label, path in checkpoints.items():
        if not (staging / label / "model.safetensors").is_file():
            write_fp16_copy(Path(path), staging / label)
    half = measure_real(cfg, {f"{k}{FP16_SUFFIX}": str(staging / k) for k in checkpoints}, real_dir, log)
    return {k: half[f"{k}{FP16_SUFFIX}"] for k in checkpoints}


def export_zoo(
    cfg, labels, checkpoints, made, rates, halves, fp16_ok, real_dir, target: Path, command: str
) -> dict:
    """Write the selected checkpoints (fp16 where ``fp16_ok`` has them) and their manifest entries into ``target``."""
    if target.exists():
        shutil.rmtree(target)  # the last stage is always redone whole
    target.mkdir(parents=True)
    entries = []
    for label in labels:
        half = halves.get(label)
        use_half = label in fp16_ok
        source = real_dir / "fp16" / label if use_half else Path(checkpoints[label])
        folder = target / label
        shutil.copytree(source, folder)
        files = file_hashes(folder)
        entries.append({
            "name": label,
            "files": files,
            "dtype": "float16" if use_half else "float32",
            "made": made[label],
            "real": {"task": cfg.task, "seeds": f"0-{cfg.real_seeds - 1}", "fp32": rates[label],
                     **({"fp16": half} if half is not None else {})},
            "measured_by": f"{command or 'dojo-bench zoo'} (stage real/: episodes.parquet rows of {label})",
        })  # fmt: skip
    return {"task": cfg.task, "command": command, "checkpoints": entries}


__all__ = ["ZooConfig", "measure_fp16", "measure_real", "run_zoo", "select_spread", "write_fp16_copy"]
