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

from dojo_bench.core.errors import UsageError
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
    """What ``dojo-bench demo`` runs. Built by the CLI from Hydra (conf/demo); validated here."""

    out: str = ""
    task: str = "pusht_bench"
    seed: int = 0
    device: str = "auto"
    workers: int = 2  # processes for recording and for the real rollouts of single policies
    preset: str = "default"
    train: bool = False  # build data, models and policies first instead of using the shipped ones
    zoo_checkpoints: int = 6  # shipped zoo checkpoints to rank, spread over their real success (0: all)
    data: dict[str, Any] = field(default_factory=dict)  # DataConfig settings
    tokenizer: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings, stage=tokenizer
    world_model: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings, stage=world_model
    value_model: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings, stage=value_model
    policies: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings, stage=policy
    evaluate: dict[str, Any] = field(default_factory=dict)  # EvaluateConfig settings
    plan: dict[str, Any] = field(default_factory=dict)  # PlanConfig settings

    def __post_init__(self) -> None:
        if not self.out:
            raise UsageError("out=DIR is required: where to write the demo's runs and reports")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise UsageError(f"workers must be an integer >= 0, got {self.workers!r}")
        if not isinstance(self.zoo_checkpoints, int) or self.zoo_checkpoints < 0 or self.zoo_checkpoints == 1:
            raise UsageError(
                f"zoo_checkpoints must be 0 (all) or an integer >= 2, got {self.zoo_checkpoints!r}"
            )
        if not isinstance(self.train, bool):
            raise UsageError(f"train must be true or false, got {self.train!r}")

        stages = {"data": DataConfig, "tokenizer": TrainConfig, "world_model": TrainConfig,
                  "value_model": TrainConfig, "policies": TrainConfig, "evaluate": EvaluateConfig, "plan": PlanConfig}  # fmt: skip
        for stage, config_class in stages.items():  # unknown keys are refused before anything is written
            unknown = sorted(set(getattr(self, stage)) - {f.name for f in fields(config_class)})
            if unknown:
                raise UsageError(
                    f"demo {stage}: unknown key(s) {', '.join(unknown)} (see `dojo-bench demo --help`)"
                )


def _build(config_class: type, settings: dict[str, Any], stage: str):
    try:
        return config_class(**settings)
    except TypeError as error:
        raise UsageError(f"demo {stage}: {error}") from None


def _train_inputs(cfg: DemoConfig, out: Path, stage, common: dict[str, Any]) -> tuple[list[str], str, str]:
    """train=true: data, tokenizer, world model, value model and a policy run, each a stage under ``out``."""
    data = stage("data", out / "data", lambda p: run_data(_build(DataConfig, {
        "kind": "robot", "task": cfg.task, "workers": cfg.workers, "seed": cfg.seed, **cfg.data, "out": str(p),
    }, "data"), overwrite=False))  # fmt: skip

    def train(name: str, path: Path, stage_name: str, settings: dict[str, Any], **extra: Any) -> Path:
        values = {**settings, **common, **extra, "stage": stage_name, "data": str(data), "out": str(path)}
        return stage(name, path, lambda p: run_train(_build(TrainConfig, values, name), overwrite=False))

    tokenizer = train("tokenizer", out / "tokenizer", "tokenizer", cfg.tokenizer)
    world_model = train(
        "world_model",
        out / "world_model",
        "world_model",
        cfg.world_model,
        tokenizer=str(tokenizer / "release"),
    )
    value_model = train("value_model", out / "value_model", "value_model", cfg.value_model)
    policy_run = train("policies", out / "policies", "policy", cfg.policies)
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
    common = {"seed": cfg.seed, "device": cfg.device}
    stage = Stages("demo", log)
    seconds = stage.seconds

    if cfg.train:
        checkpoints, world_model, value_model = _train_inputs(cfg, out, stage, common)
    else:
        checkpoints, world_model, value_model = _shipped_inputs(cfg, log)

    inputs = {
        "policies": checkpoints,
        "world_model": world_model,
        "value_model": value_model,
        "task": cfg.task,
        **common,
    }
    evaluation = stage("evaluate", out / "evaluate", lambda p: run_evaluation(_build(EvaluateConfig, {
        **cfg.evaluate, **inputs, "workers": cfg.workers, "out": str(p)}, "evaluate")))  # fmt: skip
    planning = stage("plan", out / "plan", lambda p: run_plan(_build(PlanConfig, {
        **cfg.plan, **inputs, "workers": cfg.workers, "out": str(p)}, "plan")))  # fmt: skip

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
