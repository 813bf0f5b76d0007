"""``dojo-bench <verb> key=value ...``: the only Hydra-aware layer.

Each verb has a Hydra config tree under ``dojo_bench/conf/<verb>/`` (a dash in the verb is an underscore there):
its keys and defaults are the verb's config dataclass registered as a structured config (``schemas.py``), then
``config.yaml`` with the values where the CLI differs, then a ``size`` group with ``default`` and ``tiny`` presets.
The CLI composes it with the user's overrides, builds the verb's typed config,
calls a plain function, prints a summary, and ends with one line saying what it wrote where. Errors become one
line on stderr and a non-zero exit code (2 for usage errors).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.table import Table

from dojo_bench import schemas
from dojo_bench.core import run_dir, stop
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.progress import quiet_libraries
from dojo_bench.core.run_dir import is_finished, prepare_run_dir

USAGE = """usage: dojo-bench <verb> [key=value ...]

verbs:
  data      record the dojo as LeRobot datasets   (kind=robot|human|counterfactual out=DIR episodes=N ...)
  inspect   load a dataset back and summarise it  (path=DIR, or just DIR)
  train     train a model                         (stage=tokenizer|world_model|value_model|policy data=DIR out=DIR)
  demo      the whole loop at small scale on CPU  (out=DIR; data, models, policies, evaluate, plan, report)
  wm-eval   world model PSNR/SSIM vs copy-last    (release=DIR data=DIR|[DIR1,DIR2] out=DIR horizons=[1,4,12] episodes=N)
  bench     training samples/s, MFU, imagine fps  (what=all|train|imagine out=DIR [release=DIR] steps=N)
  calibrate imagined success's threshold, fitted  (data=DIR out=DIR [world_model=DIR value_model=DIR]; held-out episodes)
  evaluate  rank policies in imagination vs real  (policies=[DIR,...] world_model=DIR value_model=DIR out=DIR seeds=N)
  plan      best-of-N planning in imagination     (policies=[DIR,...] world_model=DIR value_model=DIR out=DIR num_proposals=N)
  report    HTML report of a run (offline)        (RUN_DIR [out=DIR]; writes index.html, policy pages, report.json)
  compare   two runs for CI, gate on regressions  (BASE_RUN NEW_RUN [out=DIR max_drop=0.1 metric=real|predicted])
  zoo       rebuild the reference zoo (hours)     (out=DIR; `dojo-bench zoo list` prints the shipped zoo)

every verb takes size=tiny|default, seed=N, device=auto|cpu|cuda; writing verbs take out=DIR, overwrite=true.
`dojo-bench <verb> --help` lists a verb's keys and defaults."""

GIVEN: list[str] = []  # the key=value arguments of the command being run (set by main)

# Bare arguments (no '=') mean these keys, in order.
POSITIONAL_KEY: dict[str, str | tuple[str, ...]] = {
    "inspect": "path",
    "report": "run",
    "compare": ("base", "new"),
    "zoo": "action",
}


def compose(verb: str, overrides: list[str]):
    """The verb's config with ``overrides`` applied; usage errors in one line. A key added with Hydra's ``+key=``
    that the verb does not have is refused like any unknown key (nested ones are checked by the typed configs)."""
    cfg = _compose(verb, overrides)
    added = {o.lstrip("+").split("=", 1)[0].split(".")[0] for o in overrides if o.startswith("+")}
    if added:
        known = _compose(verb, [o for o in overrides if not o.startswith("+")])
        for key in sorted(added - set(known)):
            raise UsageError(f"unknown key {key!r} for `dojo-bench {verb}` (see `dojo-bench {verb} --help`)")
    return cfg


def _compose(verb: str, overrides: list[str], resolve: bool = True) -> dict[str, Any]:
    GlobalHydra.instance().clear()
    schemas.register(verb)
    try:
        with initialize_config_module(
            config_module=f"dojo_bench.conf.{verb.replace('-', '_')}", version_base=None
        ):
            cfg = hydra_compose(config_name="config", overrides=overrides)
        return OmegaConf.to_container(cfg, resolve=resolve, throw_on_missing=resolve)
    except (HydraException, OmegaConfBaseException) as error:
        raise UsageError(_explain(verb, error)) from None


def _explain(verb: str, error: Exception) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if (
        "Could not override" in text
        or "not in struct" in text
        or "Key '" in first
        and "is not in struct" in text
    ):
        key = first.split("'")[1] if "'" in first else first
        return f"unknown key {key!r} for `dojo-bench {verb}` (see `dojo-bench {verb} --help`)"
    if "Missing mandatory value" in text:
        key = text.split("Missing mandatory value:")[-1].split()[0].strip(" .'")
        return f"{key}= is required for `dojo-bench {verb}`"
    if "Could not find" in text and "size" in text:
        return f"unknown size preset; choose size=tiny or size=default ({first})"
    if any(
        marker in text for marker in ("mismatched input", "no viable alternative", "token recognition error")
    ):
        return (
            f"bad arguments for `dojo-bench {verb}`: {first}; a value with spaces, parentheses, brackets or quotes "
            "must be quoted for Hydra inside the shell's quotes, e.g. \"out='/data/run (1)'\""
        )
    return f"bad arguments for `dojo-bench {verb}`: {first}"


def given(key: str) -> bool:
    """Whether the user's command line sets ``key`` (as opposed to a default or a size preset)."""
    return any(arg.lstrip("+~").split("=", 1)[0] == key for arg in GIVEN)


def fit_preset_save_steps(cfg: dict[str, Any], user_set: bool) -> dict[str, Any]:
    """A size preset's save steps that a smaller ``max_steps=`` cuts off are dropped (the last step is always
    saved); save steps the user gave are kept, for TrainConfig to check."""
    steps = cfg.get("save_steps")
    if user_set or not steps or cfg.get("max_steps") is None:
        return cfg
    return {**cfg, "save_steps": [s for s in steps if s < cfg["max_steps"]] or None}


def build(config_class: type, cfg: dict[str, Any]):
    """The typed config from the composed dict (the CLI-only keys stripped)."""
    names = {f.name for f in fields(config_class)}
    return config_class(**{k: v for k, v in cfg.items() if k in names})


def _tiny_inputs_config(config: Any, given: Any):
    """The tiny ``TrainConfig`` a size=tiny verb builds its own inputs with, when they are not ``given``."""
    if config.preset != "tiny" or given:
        return None
    from dojo_bench.train.config import TrainConfig  # lazy, see VERBS

    tiny = compose("train", ["size=tiny", "out=unused", f"seed={config.seed}", f"device={config.device}"])
    return build(TrainConfig, tiny)


def _tiny_inputs(config: Any):
    """What a size=tiny evaluate or plan without policies/world_model/value_model builds them with (None when
    they are given)."""
    train_config = _tiny_inputs_config(config, config.policies and config.world_model and config.value_model)
    if train_config is None:
        return None
    from dojo_bench.verbs.tiny import tiny_inputs  # lazy, see VERBS

    return tiny_inputs(train_config, config.seed)


# -- verbs -----------------------------------------------------------------------------------------------
def _verb_data(cfg: dict[str, Any]) -> str:
    from dojo_bench.dojo.generate import run_data  # lazy, see VERBS
    from dojo_bench.dojo.recording import DataConfig  # lazy, see VERBS

    config = build(DataConfig, cfg)
    summary = run_data(config, overwrite=bool(cfg["overwrite"]))
    _print_data_summary(summary)
    return f"wrote {config.kind} datasets ({', '.join(summary['splits'])}) to {Path(config.out).resolve()}"


def _print_data_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['kind']} data ({summary['task']})")
    for column in ("split", "policy", "episodes", "success", "95% interval"):
        table.add_column(column)
    for split, s in summary["splits"].items():
        for policy, r in s["success"].items():
            table.add_row(split, policy, str(r["n"]), f"{r['rate']:.1%}", f"{r['low']:.1%} - {r['high']:.1%}")
    console = Console()
    console.print(table)
    frames = sum(s["frames"] for s in summary["splits"].values())
    size = sum(s["bytes"] for s in summary["splits"].values())
    console.print(
        f"{frames} frames, {size / 1e6:.1f} MB ({size / 1e6 / max(frames, 1) * 1e4:.1f} MB per 10k frames); "
        f"{summary['steps_per_second_per_process']} env steps/s per process "
        f"(simulation, rendering and encoding) on {summary['workers']} workers"
    )


def _verb_inspect(cfg: dict[str, Any]) -> str:
    from dojo_bench.dojo.inspect import find_datasets, inspect_dataset  # lazy, see VERBS

    summaries = [
        inspect_dataset(root, decode=bool(cfg["decode"])) for root in find_datasets(Path(cfg["path"]))
    ]
    for s in summaries:
        print(json.dumps(s, indent=2))
    frames = sum(s["frames"] for s in summaries)
    return f"loaded {len(summaries)} dataset(s), {frames} frames, from {Path(cfg['path']).resolve()}"


def _verb_demo(cfg: dict[str, Any]) -> str:
    from dojo_bench.verbs.demo import DemoConfig, run_demo  # lazy, see VERBS
    from dojo_bench.verbs.evaluate import print_table as print_evaluation  # lazy, see VERBS
    from dojo_bench.verbs.plan import print_table as print_planning  # lazy, see VERBS

    config = build(DemoConfig, cfg)
    result = run_demo(config, overwrite=bool(cfg["overwrite"]))

    for show, path in ((print_evaluation, result["evaluation"]), (print_planning, result["planning"])):
        summary = json.loads(Path(path).read_text())
        show(summary)
        _print_resumed_training(summary)
    times = ", ".join(f"{stage} {s:.0f} s" for stage, s in result["stage_seconds"].items())
    print(f"demo stages: {times}; {result['wall_time_s']:.0f} s in all")
    print(f"planning report: {result['reports']['plan']}")
    return f"demo: report in {result['reports']['evaluate']}"


def _verb_train(cfg: dict[str, Any]) -> str:
    from dojo_bench.train.config import TrainConfig  # lazy, see VERBS
    from dojo_bench.train.run import run_train  # lazy, see VERBS

    config = build(TrainConfig, fit_preset_save_steps(cfg, given("save_steps")))
    summary = run_train(config, overwrite=bool(cfg["overwrite"]))
    line = f"trained the {summary['stage']} for {summary['steps']} steps: release checkpoint in {Path(summary['release']).resolve()}"
    if Path(summary["checkpoint"]).is_file():
        line += f", Lightning checkpoint in {Path(summary['checkpoint']).resolve()}"
    if summary.get("checkpoints"):  # stage=policy: one pretrained_model folder per saved step
        steps = ", ".join(summary["checkpoints"])
        line += f", pretrained_model folders at steps {steps} in {Path(summary['checkpoint']).parents[1].resolve()}"
    return line


def _verb_wm_eval(cfg: dict[str, Any]) -> str:
    from dojo_bench.verbs.wm_eval import WmEvalConfig, print_table, run_wm_eval  # lazy, see VERBS

    cfg = {**cfg, "sampler": {k: v for k, v in cfg["sampler"].items() if v is not None}}
    config = build(WmEvalConfig, cfg)
    train_config = _tiny_inputs_config(config, config.release is not None)
    tiny = None
    if train_config is not None:
        from dojo_bench.verbs.tiny import tiny_model  # lazy, see VERBS

        tiny = tiny_model(train_config)
    summary = run_wm_eval(config, overwrite=bool(cfg["overwrite"]), tiny_model=tiny)
    print_table(summary)
    out = Path(config.out).resolve()
    return f"evaluated {summary['release']} on {len(summary['datasets'])} dataset(s): {out / 'metrics.json'}, {out / 'metrics.csv'}"


def _verb_bench(cfg: dict[str, Any]) -> str:
    from dojo_bench.verbs.bench import BENCH_FILE, BenchConfig, print_bench, run_bench  # lazy, see VERBS

    config = build(BenchConfig, cfg)
    result = run_bench(config, overwrite=bool(cfg["overwrite"]))
    print_bench(result)
    return f"wrote {Path(config.out).resolve() / BENCH_FILE}"


def _use_shipped(verb: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Outside size=tiny, the shipped zoo and default models stand in for policies=, world_model= and value_model=
    when they are not given; the first line says so."""
    if cfg["preset"] == "tiny":
        return cfg
    from dojo_bench import shipped as default_models  # lazy, see VERBS
    from policies import zoo as policy_zoo  # lazy, see VERBS

    cfg, used = dict(cfg), []
    if "policies" in cfg and not cfg["policies"]:
        cfg["policies"] = policy_zoo.shipped_zoo().paths()
        used.append(f"the shipped zoo ({len(cfg['policies'])} checkpoints)")
    for name in ("world_model", "value_model"):
        if not cfg[name]:
            cfg[name] = default_models.shipped_model(name)
            used.append(f"the default {name.replace('_', ' ')}")
    if used:
        print(f"dojo-bench {verb}: using {', '.join(used)} (not given; see `dojo-bench zoo list`)")
    return cfg


def _print_resumed_training(summary: dict[str, Any]) -> None:
    """A line per model of the run whose training was resumed mid-way (summary provenance, verbs/inputs.py)."""
    for key, record in (summary.get("provenance", {}).get("resumed_training") or {}).items():
        print(f"note: the {key.replace('_', ' ')} {record['path']} was trained in a run resumed at step "
              f"{record['from_step']}: it is not bit-identical to an uninterrupted run's, so neither are these "
              "results")  # fmt: skip


def _verb_calibrate(cfg: dict[str, Any]) -> str:
    from dojo_bench.verbs import calibrate  # lazy, see VERBS

    config = build(calibrate.CalibrateConfig, _use_shipped("calibrate", cfg))
    calibrate.print_calibration(calibrate.run_calibrate(config, overwrite=bool(cfg["overwrite"])))
    out = Path(config.out).resolve()
    return f"wrote {out / calibrate.CALIBRATION_FILE} (use it: dojo-bench evaluate calibration={out})"


def _verb_evaluate(cfg: dict[str, Any]) -> str:
    from dojo_bench.verbs.evaluate import EvaluateConfig, print_table, run_evaluation  # lazy, see VERBS

    cfg = {
        **_use_shipped("evaluate", cfg),
        "sampler": {k: v for k, v in cfg["sampler"].items() if v is not None},
    }
    config = build(EvaluateConfig, cfg)
    summary = run_evaluation(config, overwrite=bool(cfg["overwrite"]), tiny_inputs=_tiny_inputs(config))
    print_table(summary)
    _print_resumed_training(summary)
    out = Path(config.out).resolve()
    return f"evaluated {len(summary['agreement']['policies'])} policies: {out / 'summary.json'}, {out / 'episodes.parquet'}"


def _verb_plan(cfg: dict[str, Any]) -> str:
    from dojo_bench.verbs.plan import PlanConfig, print_table, run_plan  # lazy, see VERBS

    cfg = {**_use_shipped("plan", cfg), "sampler": {k: v for k, v in cfg["sampler"].items() if v is not None}}
    config = build(PlanConfig, cfg)
    summary = run_plan(config, overwrite=bool(cfg["overwrite"]), tiny_inputs=_tiny_inputs(config))
    print_table(summary)
    _print_resumed_training(summary)
    out = Path(config.out).resolve()
    planners = sum(1 for worlds in summary["policies"].values() if "real" in worlds)
    return f"planned {summary['n_episodes']} real episodes ({planners} planners): {out / 'summary.json'}, {out / 'episodes.parquet'}"


def _tiny_run_first(verb: str, config: Any, cfg: dict[str, Any]) -> None:
    """size=tiny without a run: open ``config.out`` for ``verb`` first (so the run below is not foreign files),
    then run ``dojo-bench evaluate size=tiny`` into out/run unless a finished one is there."""
    from dojo_bench.train.config import TrainConfig  # lazy, see VERBS
    from dojo_bench.verbs.evaluate import EvaluateConfig, run_evaluation  # lazy, see VERBS
    from dojo_bench.verbs.tiny import tiny_inputs  # lazy, see VERBS

    prepare_run_dir(config.out, verb, asdict(config), bool(cfg["overwrite"]))
    run = Path(config.out) / "run"
    if is_finished(run):
        return
    seed, device = f"seed={cfg['seed']}", f"device={cfg['device']}"
    evaluate = compose("evaluate", ["size=tiny", f"out={run}", seed, device])
    evaluate["sampler"] = {k: v for k, v in evaluate["sampler"].items() if v is not None}  # as _verb_evaluate
    evaluate = build(EvaluateConfig, evaluate)
    train = build(TrainConfig, compose("train", ["size=tiny", "out=unused", seed, device]))
    run_evaluation(evaluate, overwrite=False, tiny_inputs=tiny_inputs(train, evaluate.seed))


def _verb_report(cfg: dict[str, Any]) -> str:
    from reports.report import INDEX_FILE, REPORT_JSON, ReportConfig, run_report  # lazy, see VERBS

    tiny_run = cfg["preset"] == "tiny" and not cfg["run"]
    if tiny_run:
        if not cfg["out"]:
            raise UsageError("size=tiny without a run needs out=DIR (its tiny evaluation goes to out/run)")
        cfg = {**cfg, "run": str(Path(cfg["out"]) / "run")}
    config = build(ReportConfig, cfg)
    if tiny_run:
        _tiny_run_first("report", config, cfg)
    report = run_report(config, overwrite=bool(cfg["overwrite"]) and not tiny_run)
    out = Path(config.out).resolve()
    partial = (
        f" (the run is {report['status']}, not finished: its numbers are partial)"
        if report["unfinished"]
        else ""
    )
    return f"wrote a report of {len(report['policies'])} policies: {out / INDEX_FILE} ({len(report['pages'])} pages), {out / REPORT_JSON}{partial}"


def _verb_compare(cfg: dict[str, Any]) -> str:
    from reports.compare import CompareConfig, check_gate, run_compare, to_markdown  # lazy, see VERBS

    tiny_run = cfg["preset"] == "tiny" and not (cfg["base"] or cfg["new"])
    if tiny_run:  # a tiny run compared with itself: the gate passes
        if not cfg["out"]:
            raise UsageError("size=tiny without runs needs out=DIR (its tiny evaluation goes to out/run)")
        run = str(Path(cfg["out"]) / "run")
        cfg = {**cfg, "base": run, "new": run}
    config = build(CompareConfig, cfg)
    if tiny_run:
        _tiny_run_first("compare", config, cfg)
    result = run_compare(config, overwrite=bool(cfg["overwrite"]) and not tiny_run)
    print(to_markdown(result, result["base"], result["new"]))
    check_gate(result)
    files = result["files"]
    return f"regression gate passed: {files['html']}, {files['md']}, {files['json']}"


def _verb_zoo(cfg: dict[str, Any]) -> str:
    action = cfg["action"]
    if action == "list":
        return _zoo_list()
    if action == "ship":
        return _zoo_ship(cfg)
    if action != "build":
        raise UsageError(f"unknown zoo action {action!r}; choose build, list or ship")
    from dojo_bench.verbs.zoo import ZooConfig, run_zoo  # lazy, see VERBS
    from policies import zoo as policy_zoo  # lazy, see VERBS

    config = build(ZooConfig, {**cfg, "out": cfg["out"] or ""})
    manifest = run_zoo(config, overwrite=bool(cfg["overwrite"]), command=run_dir.COMMAND or "")
    policy_zoo.print_manifest(manifest)
    target = Path(config.out).resolve() / "zoo"
    return f"built a zoo of {len(manifest['checkpoints'])} checkpoints in {target} (ship it: dojo-bench zoo ship zoo_dir={target})"


def _zoo_list() -> str:
    from dojo_bench import shipped as default_models  # lazy, see VERBS
    from policies import zoo as policy_zoo  # lazy, see VERBS

    zoo = policy_zoo.shipped_zoo()
    policy_zoo.print_manifest(zoo.manifest)
    for entry in default_models.shipped_models():
        made, measured = entry["made"], entry.get("measured") or {}
        figures = ", ".join(f"{k} {v}" for k, v in measured.items() if not isinstance(v, dict | list))
        print(f"default {entry['name']}: {made.get('stage')}, {made.get('steps')} steps, "
              f"{made.get('wall_time_s')} s to train{'; ' + figures if figures else ''}")  # fmt: skip
    calibration = default_models.shipped_calibration()
    if calibration is not None:
        fitted = calibration["at_calibrated_threshold"]
        print(f"calibration: imagined success at value-model progress >= {calibration['success_threshold']:.3f}, "
              f"fitted on {calibration['episodes']} held-out episodes ({calibration['real_success_rate']:.0%} "
              f"real success, {fitted['agreement']:.0%} of episodes agree)")  # fmt: skip
    return (
        f"{len(zoo.names)} shipped checkpoints in {zoo.root}; default models in {default_models.SHIPPED_ROOT}"
    )


def _zoo_ship(cfg: dict[str, Any]) -> str:
    """Copy a built zoo (zoo_dir=) and/or trained releases (world_model=, value_model=) into the package."""
    from dojo_bench import shipped as default_models  # lazy, see VERBS
    from policies import zoo as policy_zoo  # lazy, see VERBS

    shipped = []
    if cfg["zoo_dir"]:
        source = Path(cfg["zoo_dir"]).expanduser()
        policy_zoo.shipped_zoo(source)  # its manifest must read before anything here is replaced
        for old in policy_zoo.ZOO_ROOT.iterdir():
            if old.is_dir() and old.name != "__pycache__":
                shutil.rmtree(old)
        for item in source.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, policy_zoo.ZOO_ROOT / item.name)
        policy_zoo.shipped_zoo().paths()  # every copied file matches its manifest
        shipped.append(f"the zoo from {source}")
    measured = _evaluation_figures(cfg["evaluation"]) if cfg["evaluation"] else None
    for name in ("world_model", "value_model"):
        if cfg[name]:
            default_models.ship_model(name, cfg[name], measured=measured if name == "world_model" else None)
            shipped.append(f"the default {name} from {cfg[name]}")
    if cfg["calibration"]:
        default_models.ship_calibration(cfg["calibration"])
        shipped.append(f"the calibration from {cfg['calibration']}")
    if not shipped:
        raise UsageError(
            "zoo ship needs zoo_dir=DIR and/or world_model=RELEASE / value_model=RELEASE / calibration=DIR"
        )
    return "shipped " + "; ".join(shipped)


def _evaluation_figures(run: str) -> dict[str, Any]:
    """The agreement figures of a finished `dojo-bench evaluate` run, for a default model's manifest entry."""
    path = Path(run).expanduser() / "summary.json"
    if not path.is_file():
        raise UsageError(f"evaluation={run} holds no summary.json of a finished `dojo-bench evaluate` run")
    block = json.loads(path.read_text())["agreement"]
    figures = {name: block[name]["value"] for name in ("pearson", "spearman", "mmrv") if name in block}
    figures["intervals"] = {name: [block[name]["low"], block[name]["high"]] for name in ("pearson", "mmrv")}
    figures["policies"] = len(block["policies"])
    figures["seeds"] = max(p["n_sim"] for p in block["policies"].values())
    figures["run"] = str(Path(run).resolve())
    return figures


# Each _verb_* function imports its verb's modules itself (the "lazy, see VERBS" imports): the CLI starts without
# loading torch, Lightning and lerobot, and a verb loads only what it runs (its --help and its config load the
# module of its config dataclass, see schemas.py).
VERBS: dict[str, Callable[[dict[str, Any]], str]] = {
    "data": _verb_data,
    "inspect": _verb_inspect,
    "train": _verb_train,
    "demo": _verb_demo,
    "wm-eval": _verb_wm_eval,
    "bench": _verb_bench,
    "calibrate": _verb_calibrate,
    "evaluate": _verb_evaluate,
    "plan": _verb_plan,
    "report": _verb_report,
    "compare": _verb_compare,
    "zoo": _verb_zoo,
}


def _verb_help(verb: str) -> str:
    """The verb's keys with their defaults (size=default) and help."""
    return schemas.verb_help(verb, _compose(verb, [], resolve=False))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    verb, args = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"dojo-bench: error: unknown verb {verb!r}; verbs: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in args):
        print(_verb_help(verb))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run_dir.COMMAND = shlex.join(["dojo-bench", verb, *args])
    stop.clear()
    signal.signal(signal.SIGTERM, stop.request)  # a kill (not -9) stops like Ctrl-C: one line, resumable
    signal.signal(signal.SIGINT, stop.request)  # Ctrl-C, also when it lands inside a physics callback

    quiet_libraries()
    overrides = []
    positional = POSITIONAL_KEY.get(verb, ())
    positional = [positional] if isinstance(positional, str) else list(positional)
    for arg in args:
        if "=" not in arg and positional:
            arg = f"{positional.pop(0)}={arg}"
        elif "=" not in arg:
            print(f"dojo-bench {verb}: error: expected key=value, got {arg!r}", file=sys.stderr)
            return 2
        overrides.append(arg)
    GIVEN[:] = overrides
    try:
        cfg = compose(verb, overrides)
        run_dir.DEFAULTS = _compose(verb, [], resolve=False)  # a run started before a key was added resumes
        line = VERBS[verb](cfg)
    except DojoError as error:
        print(f"dojo-bench {verb}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"dojo-bench {verb}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except OSError as error:  # a file that cannot be read or written (a device, permissions, a full disk)
        where = f" {error.filename}" if error.filename else ""
        print(
            f"dojo-bench {verb}: error: cannot read or write{where}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
