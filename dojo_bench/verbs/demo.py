"""``dojo-bench demo``: the main job on a CPU in minutes: the shipped zoo ranked in imagination, and planning.

By default the demo uses what ships with the package: a spread subset of the reference zoo (``zoo_checkpoints``,
picked across its real success rates) and the default world and value models. ``train=true`` instead builds
everything at small scale first (data, tokenizer, world model, value model, a policy run saved at several steps).

Stages, each a run directory of its own verb under ``out=DIR`` (a finished stage is reused, so an interrupted demo
resumes where it stopped):

1. ``train=true`` only: ``data/`` (robot episodes of the scripted policies), ``tokenizer/`` and ``world_model/``
   (the latent DiT), ``value_model/``, ``policies/`` (one pixel-policy run, saved at several steps);
5. ``evaluate/``: every checkpoint rolled out in imagination and in the real dojo on the same seeds;
6. ``plan/``: best-of-N over the checkpoints' proposals in imagination, beside the single policies, uniform choice
   and the oracle;
7. ``report/`` (the evaluation) and ``plan/report/``: the HTML reports.

The world model and the value model learn from the scripted policies' episodes only, never from rollouts of the
checkpoints they judge. Every stage's settings live in conf/demo (the ``size`` presets pick the budget); this
module turns them into the typed configs of the verbs and runs them in order.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dojo_bench.core.checks import check_int
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.run_dir import RUN_FILE, Stages, prepare_run_dir, write_json
from dojo_bench.dojo.generate import run_data
from dojo_bench.dojo.recording import DataConfig
from dojo_bench.shipped import shipped_model
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.run import run_train
from dojo_bench.verbs.evaluate import EvaluateConfig, run_evaluation
from dojo_bench.verbs.plan import PlanConfig, run_plan
from dojo_bench.verbs.zoo import select_spread
from policies.zoo import shipped_zoo
from reports.report import INDEX_FILE, ReportConfig, run_report

DEMO_FILE = "demo.json"


@dataclass
class DemoConfig:
    """What ``dojo-bench demo`` runs. Built by the CLI from Hydra (its keys: dojo_bench/schemas.py); validated
    here."""

    out: str = ""  # where every stage's run and the reports go
    task: str = "pusht_bench"  # the dojo task
    seed: int = 0  # every stage's seed
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 2  # processes for recording and the single policies' real rollouts
    preset: str = "default"  # the size preset, set by size=default|tiny
    train: bool = False  # true: build data, models and policies first (the settings below) instead of the
    #   shipped ones
    zoo_checkpoints: int = 6  # shipped zoo checkpoints to rank, spread over their real success (0: all)
    data: dict[str, Any] = field(
        default_factory=dict
    )  # train=true: `dojo-bench data kind=robot` (policy mix:
    #   expert, noisy, random)
    tokenizer: dict[str, Any] = field(default_factory=dict)  # `dojo-bench train stage=tokenizer`
    world_model: dict[str, Any] = field(default_factory=dict)  # `dojo-bench train stage=world_model`
    value_model: dict[str, Any] = field(default_factory=dict)  # `dojo-bench train stage=value_model`
    policies: dict[str, Any] = field(default_factory=dict)  # `dojo-bench train stage=policy`: one run on the
    #   expert episodes, saved at several steps
    evaluate: dict[str, Any] = field(default_factory=dict)  # `dojo-bench evaluate` on the checkpoints:
    #   imagined and real episodes on the same seeds
    plan: dict[str, Any] = field(default_factory=dict)  # `dojo-bench plan` with the checkpoints as the
    #   ensemble

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write the demo's runs and reports")
        check_int("workers", self.workers, minimum=0)
        check_int("seed", self.seed, minimum=0)
        if isinstance(self.zoo_checkpoints, bool) or self.zoo_checkpoints == 1:
            raise UsageError(
                f"zoo_checkpoints must be 0 (all) or an integer >= 2, got {self.zoo_checkpoints!r}"
            )
        check_int("zoo_checkpoints", self.zoo_checkpoints, minimum=0, hint=" (0: all; not 1)")
        if not isinstance(self.train, bool):
            raise UsageError(f"train must be true or false, got {self.train!r}")
        for stage, config_class in STAGES.items():  # unknown keys are refused before anything is written
            unknown = sorted(set(getattr(self, stage)) - {f.name for f in fields(config_class)})
            if unknown:
                raise UsageError(
                    f"demo {stage}: unknown key(s) {', '.join(unknown)} (see `dojo-bench demo --help`)"
                )
        # Every stage's config built now, with stand-ins for the paths earlier stages make: a bad value is one
        # line before out is written, not an error halfway through the chain.
        stand_in = str(Path(self.out) / "stand-in")
        models = {"policies": [stand_in], "world_model": stand_in, "value_model": stand_in}
        for stage in STAGES:
            paths = models if stage in ("evaluate", "plan") else {} if stage == "data" else {"data": stand_in}
            if stage == "world_model":
                paths = {**paths, "tokenizer": stand_in}
            stage_config(self, stage, out=stand_in, **paths)


STAGES = {"data": DataConfig, "tokenizer": TrainConfig, "world_model": TrainConfig, "value_model": TrainConfig,
          "policies": TrainConfig, "evaluate": EvaluateConfig, "plan": PlanConfig}  # fmt: skip
TRAIN_STAGE = {"tokenizer": "tokenizer", "world_model": "world_model", "value_model": "value_model",
               "policies": "policy"}  # fmt: skip


def stage_config(cfg: DemoConfig, stage: str, **paths: Any):
    """The typed config of ``stage``: its settings in the demo's config, the values every stage shares, then
    ``paths`` (out=, and the inputs earlier stages made); a bad value is one UsageError line naming the stage."""
    common = {"seed": cfg.seed, "device": cfg.device}
    if stage == "data":
        values = {"kind": "robot", "task": cfg.task, "workers": cfg.workers, "seed": cfg.seed, **cfg.data}
    elif stage in TRAIN_STAGE:
        values = {**getattr(cfg, stage), **common, "stage": TRAIN_STAGE[stage]}
    else:  # evaluate, plan
        values = {**getattr(cfg, stage), "task": cfg.task, **common, "workers": cfg.workers}
    try:
        return STAGES[stage](**{**values, **paths})
    except (TypeError, DojoError) as error:
        raise UsageError(f"demo {stage}: {error}") from None


def _train_inputs(cfg: DemoConfig, out: Path, stage) -> tuple[list[str], str, str]:
    """train=true: data, tokenizer, world model, value model and a policy run, each a stage under ``out``."""
    data = stage(
        "data", out / "data", lambda p: run_data(stage_config(cfg, "data", out=str(p)), overwrite=False)
    )

    def train(name: str, path: Path, **inputs: Any) -> Path:
        return stage(name, path, lambda p: run_train(stage_config(cfg, name, data=str(data), out=str(p), **inputs),
                                                     overwrite=False))  # fmt: skip

    tokenizer = train("tokenizer", out / "tokenizer")
    world_model = train("world_model", out / "world_model", tokenizer=str(tokenizer / "release"))
    value_model = train("value_model", out / "value_model")
    policy_run = train("policies", out / "policies")
    summary = json.loads((policy_run / RUN_FILE).read_text())["summary"]
    checkpoints = [summary["checkpoints"][step] for step in sorted(summary["checkpoints"], key=int)]

    return checkpoints, str(world_model / "release"), str(value_model / "release")


def _shipped_inputs(cfg: DemoConfig, log) -> tuple[list[str], str, str]:
    """The shipped zoo's spread subset and the default models."""
    zoo = shipped_zoo()
    rates = zoo.real_success()
    names = zoo.names
    if cfg.zoo_checkpoints and cfg.zoo_checkpoints < len(names):
        names = select_spread(rates, dict.fromkeys(rates, "zoo"), cfg.zoo_checkpoints, 0.0, 1.0, 0.0)
    log(f"demo: ranking {len(names)} shipped zoo checkpoints (real success "
        f"{', '.join(f'{rates[n]:.0%}' for n in names)}) with the default world and value models")  # fmt: skip
    return zoo.paths(names), shipped_model("world_model"), shipped_model("value_model")


def run_demo(cfg: DemoConfig, overwrite: bool = False, log=print) -> dict[str, Any]:
    """Run every stage into ``cfg.out``; returns (and writes to demo.json) the stage times and the report paths."""
    started = time.perf_counter()
    run = prepare_run_dir(cfg.out, "demo", asdict(cfg), overwrite)
    out = run.path
    stage = Stages("demo", log)
    seconds = stage.seconds

    if cfg.train:
        checkpoints, world_model, value_model = _train_inputs(cfg, out, stage)
    else:
        checkpoints, world_model, value_model = _shipped_inputs(cfg, log)

    inputs = {"policies": checkpoints, "world_model": world_model, "value_model": value_model}
    evaluation = stage("evaluate", out / "evaluate",
                       lambda p: run_evaluation(stage_config(cfg, "evaluate", **inputs, out=str(p))))  # fmt: skip
    planning = stage(
        "plan", out / "plan", lambda p: run_plan(stage_config(cfg, "plan", **inputs, out=str(p)))
    )

    reports = {}
    t = time.perf_counter()
    for name, source, target in (
        ("evaluate", evaluation, out / "report"),
        ("plan", planning, planning / "report"),
    ):
        run_report(ReportConfig(run=str(source), out=str(target)), overwrite=True)
        reports[name] = str((target / INDEX_FILE).resolve())
    seconds["report"] = round(time.perf_counter() - t, 1)

    result = {
        "reports": reports,
        "stage_seconds": seconds,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "checkpoints": checkpoints,
        "evaluation": str(evaluation / "summary.json"),
        "planning": str(planning / "summary.json"),
    }
    write_json(out / DEMO_FILE, result)
    run.finish(result)
    return result


__all__ = ["DemoConfig", "run_demo"]
