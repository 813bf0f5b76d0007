"""``dojo-bench plan``: does search over ensemble proposals in the world model beat the best single policy?

Every planner runs in the real dojo on the same seeds, each episode scored by the dojo's ground truth:

- ``singles``: each policy alone (rows ``single/<label>``), the plain rollout engine;
- ``uniform``: at each decision one of the N proposals at random (DreamDojo's "uniform sampling" baseline);
- ``best_of_n``: the N proposals imagined in one batched world-model call, scored by the value model, the best
  executed (planners/best_of_n.py);
- ``oracle``: the same N proposals scored by the real simulator itself, cloned (the upper bound of selection);
- ``cem``: best-of-N followed by CEM refinement through the world model (planners/cem.py).

N proposals per decision come from the policies as an ensemble (planners/proposals.py): each member's own chunk,
then noisy copies (``noise_std``) until there are ``num_proposals``. Each decision executes K actions, the
policies' chunk cut to a multiple of the world model's action chunk, and replans.

Layout of ``out=DIR`` (run_dir.py contract; an unfinished run of the same config resumes without redoing finished
(planner, seed) episodes):
- ``episodes/`` + ``episodes.parquet``: one row per (planner, seed, world="real") (engine/results.py);
- ``planning_time.json``: decisions and seconds per planner, accumulated over resumed invocations;
- ``summary.json``: per-planner success rates with Wilson intervals (``policies``), provenance, and a ``planning``
  block: mean planning seconds per decision per planner, N, K, and the ``timing`` curve (seconds per decision
  against N, per planner and device) when ``timing_ns`` is set;
- ``inputs/`` (size=tiny without policies/world_model/value_model): tiny data, policies and models built here.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from dojo_bench.core.checks import check_int, check_number, check_parts
from dojo_bench.core.devices import check_device
from dojo_bench.core.errors import UsageError
from dojo_bench.core.progress import make_progress
from dojo_bench.core.run_dir import write_json
from dojo_bench.engine.results import SUMMARY_FILE, ResultStore, run_missing, write_summary_json
from dojo_bench.engine.rollout import (
    REAL,
    GroundTruthScorer,
    RealWorlds,
    batches,
    executed_chunk_length,
    run_episodes,
    to_policy_observation,
)
from dojo_bench.verbs.inputs import TinyInputs, load_inputs, open_run, resumed_training, run_settings
from planners.best_of_n import ImaginationScorer, OracleScorer, Planner, UniformScorer
from planners.cem import CEMConfig, CEMRefiner
from planners.proposals import ProposalSampler
from policies.loading import checkpoint_hash
from world_model.sampler import SamplerConfig

SINGLES = "singles"
SINGLE_PREFIX = "single/"
PLANNERS = (SINGLES, "uniform", "best_of_n", "oracle", "cem")
SEARCH_PLANNERS = PLANNERS[1:]
SCORE_REDUCTIONS = ("last", "max")
TIMING_FILE = "planning_time.json"


@dataclass
class PlanConfig:
    """What ``dojo-bench plan`` runs. Built by the CLI from Hydra (conf/plan); validated here."""

    out: str = ""  # directory to write episodes.parquet, summary.json (required)
    policies: list[str] | None = None  # pretrained_model folders, the ensemble: policies=[DIR1,DIR2,...]
    #   (same action dim and chunk)
    world_model: str | None = None  # a world-model release dir (`dojo-bench train stage=world_model`
    #   OUT/release)
    value_model: str | None = None  # a value-model release dir (`dojo-bench train stage=value_model`
    #   OUT/release); size=tiny builds tiny policies and models into out/inputs when these are null
    task: str = "pusht_bench"  # the dojo task
    seeds: int = 100  # episodes per planner: seeds seed .. seed+seeds-1
    seed: int = 0  # the first seed
    max_steps: int | None = None  # steps per episode; null: the task's horizon
    batch_size: int = 8  # real episodes planned together (B); imagination runs B x N rows at once
    planners: list[str] = field(default_factory=lambda: list(PLANNERS))  # any of these; singles = each policy
    #   alone
    num_proposals: int = 8  # N proposals per decision: each policy's own chunk, then noisy copies
    noise_std: float = 10.0  # std of the noise of the extra copies, in action units (arena pixels)
    score: str = "last"  # an imagined chunk's value: progress of its last frame (last) or the max over its
    #   frames (max)
    imagine_batch: int | None = None  # most imagined rows per world-model call (null: all B x N); lower it
    #   when memory is short
    cem_iterations: int = 2  # CEM refit rounds after best-of-N
    cem_samples: int = 16  # new chunks per env and round
    cem_elites: int = 4  # best candidates each Gaussian is fitted to
    cem_min_std: float = 4.0  # floor of the CEM std (action units)
    timing_ns: list[int] = field(default_factory=list)  # N values for the planning-time curve (e.g.
    #   [1,2,4,8,16]); []: none
    timing_decisions: int = 3  # timed decisions per (planner, N, device), after one warm-up
    timing_devices: list[str] | None = None  # [cpu] | [cuda] | [cpu,cuda]; null: the run's device (cuda is
    #   skipped without a GPU)
    workers: int = 0  # real-world worker processes for the single-policy baselines (0: in this process)
    device: str = "auto"  # auto | cpu | cuda
    confidence: float = 0.95  # of the Wilson intervals
    preset: str = "default"  # the size preset, set by size=default|tiny
    sampler: dict[str, Any] = field(default_factory=dict)  # world-model sampler overrides (null: the
    #   release's own)

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write the results")
        if self.world_model == "dojo":
            raise UsageError(
                "world_model=dojo is evaluate's state-space reference; plan's oracle planner scores with the simulator"
            )
        check_device(self.device)
        if isinstance(self.policies, str):
            self.policies = [self.policies]
        if isinstance(self.planners, str):
            self.planners = [self.planners]
        self.planners = list(self.planners)
        unknown = [p for p in self.planners if p not in PLANNERS]
        if unknown or not self.planners:
            raise UsageError(
                f"unknown planners {unknown or '[]'}; choose from {', '.join(PLANNERS)} (e.g. planners=[uniform,best_of_n])"
            )
        for name in ("seeds", "batch_size", "num_proposals", "timing_decisions", "cem_iterations", "cem_samples",
                     "cem_elites"):  # fmt: skip
            check_int(name, getattr(self, name))
        check_int("workers", self.workers, minimum=0)
        check_int("seed", self.seed, minimum=0, hint=" (the first dojo seed)")
        for name in ("max_steps", "imagine_batch"):
            check_int(name, getattr(self, name), optional=True)
        for name in ("noise_std", "cem_min_std"):
            check_number(name, getattr(self, name), "a number >= 0 (action units)", lambda x: x >= 0)
        check_number("confidence", self.confidence, "in (0, 1)", lambda x: 0 < x < 1)
        check_parts({"sampler": lambda s: SamplerConfig(**s)}, vars(self))
        if self.score not in SCORE_REDUCTIONS:
            raise UsageError(f"unknown score={self.score!r}; choose one of {', '.join(SCORE_REDUCTIONS)}")
        self.timing_ns = [self.timing_ns] if isinstance(self.timing_ns, int) else list(self.timing_ns)
        for n in self.timing_ns:
            check_int("timing_ns", n, hint=" in every entry (N proposals)")
        if self.timing_devices is not None:
            if isinstance(self.timing_devices, str):
                self.timing_devices = [self.timing_devices]
            bad = [d for d in self.timing_devices if d not in ("cpu", "cuda")]
            if bad:
                raise UsageError(f"timing_devices must be cpu and/or cuda, got {bad}")
        if self.preset != "tiny":
            missing = [k for k in ("policies", "world_model", "value_model") if not getattr(self, k)]
            if missing:
                raise UsageError(
                    f"{', '.join(k + '=' for k in missing)} required (size=tiny builds tiny ones when not given)"
                )


# ----------------------------------------------------------------------------------------------------------------------
# Planners
# ----------------------------------------------------------------------------------------------------------------------


def make_planner(name: str, cfg: PlanConfig, sampler, env, value, real, chunk_size: int):
    """The ``Planner`` called ``name`` (one of SEARCH_PLANNERS) over ``sampler``'s proposals."""

    def imagination() -> ImaginationScorer:
        return ImaginationScorer(env, lambda frames: value.score(frames)[0], cfg.score, cfg.imagine_batch)

    refiner = None
    if name == "uniform":
        scorer = UniformScorer(cfg.seed)
    elif name == "best_of_n":
        scorer = imagination()
    elif name == "oracle":
        scorer = OracleScorer(real, cfg.score)
    elif name == "cem":
        scorer = imagination()
        cem = CEMConfig(cfg.cem_iterations, cfg.cem_samples, cfg.cem_elites, cfg.cem_min_std)
        refiner = CEMRefiner(scorer, cem)
    else:
        raise UsageError(f"unknown planner {name!r}; choose from {', '.join(SEARCH_PLANNERS)}")
    return Planner(name, sampler, scorer, chunk_size, refiner=refiner, seed=cfg.seed)


def _read_timing(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def run_planner(store, planner, real, seeds: list[int], max_steps: int, batch_size: int, timing_path: Path,
                on_batch=None) -> int:  # fmt: skip
    """Run ``planner`` on every seed the store has not finished, batch by batch (rows labelled ``planner.name``),
    adding its decisions and planning seconds to ``timing_path``. Returns the number of episodes run."""
    done = store.done_keys()
    todo = [int(s) for s in seeds if (planner.name, int(s), REAL) not in done]
    for batch in batches(todo, batch_size) if todo else []:
        planner.episode_seeds = batch
        planner.decision_seconds = []
        records = run_episodes(planner, real, batch, max_steps=max_steps, scorer=GroundTruthScorer())
        store.append(records)
        timing = _read_timing(timing_path)
        entry = timing.setdefault(planner.name, {"decisions": 0, "seconds": 0.0})
        entry["decisions"] += len(planner.decision_seconds)
        entry["seconds"] += float(sum(planner.decision_seconds))
        write_json(timing_path, timing)
        if on_batch is not None:
            on_batch(records)
    return len(todo)


def time_planners(cfg: PlanConfig, names: list[str], policies: dict, env, value, real, seeds: list[int],
                  device: str) -> list[dict[str, Any]]:  # fmt: skip
    """Planning seconds per decision against N: for each N in ``cfg.timing_ns`` and planner in ``names``, one
    warm-up decision then ``cfg.timing_decisions`` timed ones from the start observations of ``seeds`` (B envs)."""
    rows = []
    observation = to_policy_observation(real.reset(seeds))
    for n in cfg.timing_ns:
        sampler = ProposalSampler(list(policies.values()), n, cfg.noise_std)
        chunk = executed_chunk_length(sampler.chunk_size, int(env.chunk_size))
        for name in names:
            planner = make_planner(name, cfg, sampler, env, value, real, chunk)
            planner.episode_seeds = list(seeds)
            planner.predict_chunk(observation)  # warm-up: allocations, kernels, caches
            planner.decision_seconds = []
            for _ in range(cfg.timing_decisions):
                planner.predict_chunk(observation)
            seconds = sum(planner.decision_seconds) / len(planner.decision_seconds)
            rows.append({"planner": name, "n": n, "batch_size": len(seeds), "device": device,
                         "seconds_per_decision": seconds})  # fmt: skip
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------------


def run_plan(
    cfg: PlanConfig, overwrite: bool = False, tiny_inputs: TinyInputs | None = None
) -> dict[str, Any]:
    """Run ``cfg.planners`` into ``cfg.out``; returns the summary also written to summary.json.

    ``tiny_inputs`` (verbs/tiny.py) builds the inputs for size=tiny without inputs."""
    started = time.perf_counter()
    task, device, max_steps, seeds = run_settings(cfg)
    run, (policies, world_model, value_model), (loaded, env, value), sampler = open_run(
        cfg, "plan", overwrite, tiny_inputs, device,
        lambda loaded, env: ProposalSampler(list(loaded.values()), cfg.num_proposals, cfg.noise_std),
    )  # fmt: skip
    out = run.path
    chunk = executed_chunk_length(sampler.chunk_size, int(env.chunk_size))

    store = ResultStore(out)
    hashes = {label: checkpoint_hash(path) for label, path in zip(loaded, policies, strict=True)}
    search = [p for p in cfg.planners if p != SINGLES]
    total = len(seeds) * (len(search) + (len(loaded) if SINGLES in cfg.planners else 0))
    ran: dict[str, int] = {}
    with make_progress() as bar:
        task_id = bar.add_task("plan", total=total, completed=len(store.done_keys()))

        def advance(records) -> None:
            bar.update(task_id, advance=len(records))

        if SINGLES in cfg.planners:
            singles = {f"{SINGLE_PREFIX}{label}": policy for label, policy in loaded.items()}
            with RealWorlds(task, workers=cfg.workers) as real:
                ran[SINGLES] = run_missing(store, singles, real, seeds, max_steps, GroundTruthScorer(),
                                           cfg.batch_size, on_batch=advance)  # fmt: skip
        real = RealWorlds(task)  # in this process: the oracle clones its envs
        for name in search:
            planner = make_planner(name, cfg, sampler, env, value, real, chunk)
            ran[name] = run_planner(store, planner, real, seeds, max_steps, cfg.batch_size, out / TIMING_FILE,
                                    on_batch=advance)  # fmt: skip

    timing = []
    if cfg.timing_ns and search:
        for timing_device in cfg.timing_devices or [device]:
            if timing_device == "cuda" and not _cuda():
                continue  # the curve is measured where a GPU is available
            models = (loaded, env, value)
            if timing_device != device:
                models = load_inputs(cfg, policies, world_model, value_model, timing_device)
            timing += time_planners(
                cfg, search, *models, RealWorlds(task), seeds[: cfg.batch_size], timing_device
            )

    wall = time.perf_counter() - started
    summary = store.summary(config=asdict(cfg), checkpoint_hashes=hashes, seeds=seeds, wall_time_s=wall,
                            confidence=cfg.confidence)  # fmt: skip
    summary["provenance"]["resumed_training"] = resumed_training(world_model, value_model, policies)
    decisions = _read_timing(out / TIMING_FILE)
    summary["planning"] = {
        "num_proposals": cfg.num_proposals,
        "executed_chunk": chunk,
        "proposal_members": sampler.proposal_members,
        "score": cfg.score,
        "device": device,
        "planners": {
            name: {
                "decisions": int(d["decisions"]),
                "seconds_per_decision": d["seconds"] / d["decisions"] if d["decisions"] else None,
            }
            for name, d in decisions.items()
        },
        "timing": timing,
        "inputs": {
            "policies": dict(zip(loaded, policies, strict=True)),
            "world_model": world_model,
            "value_model": value_model,
        },
        "episodes_run_now": ran,
    }
    write_summary_json(summary, out / SUMMARY_FILE)
    run.finish({"summary": str(out / SUMMARY_FILE), "episodes": summary["n_episodes"], "episodes_run_now": ran,
                "wall_time_s": round(wall, 2)})  # fmt: skip
    return summary


def _cuda() -> bool:
    return torch.cuda.is_available()


def planner_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per planner for tables: singles first, then the search planners in PLANNERS order."""
    order = {name: i for i, name in enumerate(PLANNERS)}
    timing = summary.get("planning", {}).get("planners", {})
    rows = []
    for label, worlds in summary["policies"].items():
        real = worlds.get("real")
        if real is None:
            continue
        rows.append({"planner": label, **real,
                     "seconds_per_decision": timing.get(label, {}).get("seconds_per_decision")})  # fmt: skip
    return sorted(rows, key=lambda r: (order.get(r["planner"], 0), r["planner"]))


def print_table(summary: dict[str, Any]) -> None:
    planning = summary["planning"]
    level = f"{summary['confidence']:.0%}"
    table = Table(title=f"planning in the real dojo: N={planning['num_proposals']} proposals, "
                        f"{planning['executed_chunk']} actions per decision")  # fmt: skip
    for column in ("planner", "episodes", "success", f"{level} Wilson interval", "s / decision"):
        table.add_column(column, justify="left" if column == "planner" else "right", overflow="fold")
    for row in planner_rows(summary):
        seconds = row["seconds_per_decision"]
        table.add_row(row["planner"], str(row["n_episodes"]), f"{row['success_rate']:.1%}",
                      f"{row['ci_low']:.1%} - {row['ci_high']:.1%}",
                      "-" if seconds is None else f"{seconds:.3f}")  # fmt: skip
    console = Console()
    console.print(table)
    if planning["timing"]:
        curve = Table(title="planning time per decision against N")
        for column in ("planner", "device", "N", "batch", "s / decision"):
            curve.add_column(column, justify="left" if column in ("planner", "device") else "right")
        for row in planning["timing"]:
            curve.add_row(row["planner"], row["device"], str(row["n"]), str(row["batch_size"]),
                          f"{row['seconds_per_decision']:.3f}")  # fmt: skip
        console.print(curve)


__all__ = [
    "PLANNERS",
    "PlanConfig",
    "make_planner",
    "print_table",
    "run_plan",
    "run_planner",
    "time_planners",
]
