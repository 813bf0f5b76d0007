"""Bad input, as a new user would type it, across the verbs: one line on stderr, a non-zero exit, and nothing
written, neither to ``out=`` nor into any input folder.

Each case names the mechanism that refuses it (issue 15):

- ``config``: a value is checked when the verb's typed config is built (ranges, types, codecs, sizes), one line
  naming the key and what is allowed;
- ``inputs``: a missing, unreadable or damaged input is read and refused before the first write, and never
  written into (inputs are read-only);
- ``out``: the one guarded place that claims ``out=`` refuses an impossible path in every verb;
- ``compare``: the regression gate fails closed: runs it cannot compare, or a gate that checks nothing, are errors;
- ``ambiguous``: an input that leaves a choice to guess is an error, not a silent pick;
- ``command``: what the shell and Hydra hand over (unquoted values, interpolations, added or deleted keys).

Every case runs the CLI in this process and snapshots the test's folder, the session's dataset, the shipped zoo
and the shipped models (every file's size and mtime, every folder's mtime) before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dojo_bench import shipped
from dojo_bench.cli import main
from policies import zoo as policy_zoo

ZOO_CHECKPOINT = "round0-step04000"
REFUSAL_S = 60  # a refusal takes a second or two; a case still running after this started work


@dataclass
class Ctx:
    """Paths a case builds its command line from."""

    tmp: Path  # the test's folder (snapshotted whole)
    data: Path  # a finished tiny `dojo-bench data` run (train/ + validation/)
    policy: str  # a shipped zoo checkpoint (read-only input)
    world_model: str  # the shipped world model
    value_model: str  # the shipped value model

    @property
    def out(self) -> Path:
        """The out= of a case: it must not exist afterwards."""
        return self.tmp / "out"

    @property
    def dataset(self) -> Path:
        return self.data / "validation"

    def models(self) -> list[str]:
        return [
            f"policies=[{self.policy}]",
            f"world_model={self.world_model}",
            f"value_model={self.value_model}",
        ]

    def copy(self, source: str | Path, name: str) -> Path:
        """A copy of an input under the test's folder, to damage."""
        target = self.tmp / name
        shutil.copytree(source, target)
        return target


@dataclass
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    fragment: str  # a piece of the expected line
    setup: Callable[[Ctx], None] = field(default=lambda ctx: None)


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry under ``roots``: (kind, size, mtime) of files, (kind, mtime) of folders."""
    seen: dict[str, tuple] = {}
    for root in roots:
        if not root.exists():
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            stat = os.stat(folder)
            seen[folder] = ("dir", stat.st_mtime_ns)
            for name in files:
                stat = os.stat(os.path.join(folder, name))
                seen[os.path.join(folder, name)] = ("file", stat.st_size, stat.st_mtime_ns)
    return seen


@pytest.fixture(scope="module")
def inputs(tiny_robot_run) -> dict[str, Path | str]:
    data, _, _ = tiny_robot_run
    return {
        "data": data,
        "policy": str(policy_zoo.ZOO_ROOT / ZOO_CHECKPOINT),
        "world_model": shipped.shipped_model("world_model"),
        "value_model": shipped.shipped_model("value_model"),
    }


def refused(ctx: Ctx, argv: list[str], capsys) -> tuple[int, str]:
    """Run the CLI on ``argv``; (exit code, stderr). An exception escaping main is a traceback the user would see."""
    watched = (ctx.tmp, ctx.data, policy_zoo.ZOO_ROOT, shipped.SHIPPED_ROOT)
    before = snapshot(*watched)

    def started_work(signum, frame):
        raise TimeoutError(f"still running after {REFUSAL_S} s: the input was not refused")

    previous = signal.signal(signal.SIGALRM, started_work)
    signal.alarm(REFUSAL_S)
    try:
        code = main(argv)
    except BaseException as error:  # noqa: BLE001 - anything escaping main is what this suite looks for
        capsys.readouterr()
        pytest.fail(f"traceback: {type(error).__name__}: {str(error)[:300]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    after = snapshot(*watched)
    changed = sorted(set(before) ^ set(after) | {k for k in before if k in after and before[k] != after[k]})
    assert not changed, f"written: {changed[:5]}"
    return code, err


def assert_one_line(code: int, err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------------------------------------------------------
# Damaged inputs and fake runs the cases use
# ------------------------------------------------------------------------------------------------------------------


def _garbage(path: Path, text: str = "not what it should be") -> None:
    path.write_text(text)


def _damaged_policy(ctx: Ctx, what: str) -> None:
    folder = ctx.copy(ctx.policy, f"policy-{what}")
    if what == "config":
        _garbage(folder / "config.json", "{ not json")
    elif what == "weights":
        (folder / "model.safetensors").unlink()


def _damaged_model(ctx: Ctx, name: str) -> None:
    folder = ctx.copy(ctx.world_model, name)
    _garbage(folder / "model.safetensors")


def _damaged_dataset(ctx: Ctx, what: str) -> Path:
    root = ctx.copy(ctx.dataset, f"dataset-{what}")
    if what == "info":
        (root / "meta" / "info.json").unlink()
    elif what == "parquet":
        for path in (root / "data").rglob("*.parquet"):
            _garbage(path)
    elif what == "video":
        for path in (root / "videos").rglob("*.mp4"):
            _garbage(path)
    elif what == "no-data":
        for path in (root / "data").rglob("*.parquet"):
            path.unlink()
    elif what == "no-episodes":
        for path in (root / "meta" / "episodes").rglob("*.parquet"):
            path.unlink()
    elif what == "info-garbage":
        _garbage(root / "meta" / "info.json", "{ not json")
    elif what == "dojo-garbage":
        _garbage(root / "meta" / "dojo.json", "{ not json")
    return root


def evaluate_summary(
    policies: dict[str, float], seeds=(0, 1, 2, 3), task="pusht_bench", kind="evaluate"
) -> dict:
    """A summary.json of a finished evaluate (or plan) run with these real (and imagined) success rates."""

    def block(rate: float) -> dict:
        return {
            "success_rate": rate,
            "ci_low": max(0.0, rate - 0.2),
            "ci_high": min(1.0, rate + 0.2),
            "n_episodes": len(seeds),
        }

    summary = {
        "policies": {p: {"real": block(r), "imagined": block(r)} for p, r in policies.items()},
        "provenance": {"seeds": list(seeds), "config": {"task": task}},
    }
    if kind == "evaluate":
        summary["agreement"] = {"policies": {p: {"predicted": r, "real": r} for p, r in policies.items()}}
    else:
        for worlds in summary["policies"].values():
            del worlds["imagined"]
        summary["planning"] = {"num_proposals": 2}
    return summary


def fake_run(ctx: Ctx, name: str, summary: dict, status: str | None = "finished") -> Path:
    folder = ctx.tmp / name
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    if status is not None:
        (folder / "run.json").write_text(json.dumps({"verb": "evaluate", "status": status}))
    return folder


def _runs(base: dict, new: dict, new_status: str | None = "finished") -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        fake_run(ctx, "base", base)
        fake_run(ctx, "new", new, new_status)

    return setup


def _compare(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["compare", str(ctx.tmp / "base"), str(ctx.tmp / "new"), f"out={ctx.out}", *extra]


GOOD = {"a": 0.5, "b": 0.7}

# ------------------------------------------------------------------------------------------------------------------
# The cases, by mechanism
# ------------------------------------------------------------------------------------------------------------------

CONFIG = [
    Case("evaluate-confidence", lambda c: ["evaluate", f"out={c.out}", "confidence=1.5"], "confidence"),
    Case("evaluate-workers", lambda c: ["evaluate", f"out={c.out}", "workers=-1"], "workers"),
    Case("evaluate-seed", lambda c: ["evaluate", f"out={c.out}", "seed=-5"], "seed"),
    Case("evaluate-seeds", lambda c: ["evaluate", f"out={c.out}", "seeds=0"], "seeds"),
    Case("evaluate-batch-float", lambda c: ["evaluate", f"out={c.out}", "batch_size=2.5"], "batch_size"),
    Case("evaluate-device", lambda c: ["evaluate", f"out={c.out}", "device=tpu"], "device"),
    Case("evaluate-sampler", lambda c: ["evaluate", f"out={c.out}", "sampler.method=magic"], "sampler"),
    Case("evaluate-bootstrap", lambda c: ["evaluate", f"out={c.out}", "bootstrap=0"], "bootstrap"),
    Case("plan-proposals", lambda c: ["plan", f"out={c.out}", "num_proposals=0"], "num_proposals"),
    Case("plan-confidence", lambda c: ["plan", f"out={c.out}", "confidence=0"], "confidence"),
    Case("plan-planners", lambda c: ["plan", f"out={c.out}", "planners=[magic]"], "planners"),
    Case("plan-workers", lambda c: ["plan", f"out={c.out}", "workers=-1"], "workers"),
    Case("plan-sampler-steps", lambda c: ["plan", f"out={c.out}", "sampler.num_steps=0"], "sampler"),
    Case("data-codec", lambda c: ["data", "size=tiny", f"out={c.out}", "vcodec=nosuchcodec"], "vcodec"),
    Case("data-seed", lambda c: ["data", "size=tiny", f"out={c.out}", "seed=-5"], "seed"),
    Case(
        "data-validation",
        lambda c: ["data", "size=tiny", f"out={c.out}", "validation_fraction=1.5"],
        "validation_fraction",
    ),
    Case("data-workers", lambda c: ["data", "size=tiny", f"out={c.out}", "workers=-1"], "workers"),
    Case("data-episodes-text", lambda c: ["data", "size=tiny", f"out={c.out}", "episodes=many"], "episodes"),
    Case(
        "data-max-steps-float", lambda c: ["data", "size=tiny", f"out={c.out}", "max_steps=2.5"], "max_steps"
    ),
    Case("train-dit-size", lambda c: ["train", "size=tiny", f"out={c.out}", "dit.size=huge"], "dit"),
    Case("train-seed", lambda c: ["train", "size=tiny", f"out={c.out}", "seed=-1"], "seed"),
    Case("train-batch", lambda c: ["train", "size=tiny", f"out={c.out}", "batch_size=0"], "batch_size"),
    Case("train-lr", lambda c: ["train", "size=tiny", f"out={c.out}", "learning_rate=-1"], "learning_rate"),
    Case("train-clip", lambda c: ["train", "size=tiny", f"out={c.out}", "clip_length=0"], "clip_length"),
    Case(
        "train-chunk",
        lambda c: ["train", "size=tiny", "stage=policy", f"out={c.out}", "policy.chunk_size=0"],
        "chunk_size",
    ),
    Case(
        "train-sampler", lambda c: ["train", "size=tiny", f"out={c.out}", "sampler.method=magic"], "sampler"
    ),
    Case(
        "train-tokenizer",
        lambda c: [
            "train",
            "size=tiny",
            "stage=tokenizer",
            f"out={c.out}",
            "tokenizer_model.latent_channels=0",
        ],
        "latent_channels",
    ),
    Case("wm-eval-horizons", lambda c: ["wm-eval", f"out={c.out}", "horizons=[0]"], "horizons"),
    Case("wm-eval-episodes", lambda c: ["wm-eval", "size=tiny", f"out={c.out}", "episodes=0"], "episodes"),
    Case("wm-eval-seed", lambda c: ["wm-eval", "size=tiny", f"out={c.out}", "seed=-1"], "seed"),
    Case("bench-what", lambda c: ["bench", f"out={c.out}", "what=nothing"], "what"),
    Case("bench-threads", lambda c: ["bench", f"out={c.out}", "threads=0"], "threads"),
    Case("bench-dit-size", lambda c: ["bench", f"out={c.out}", "dit.size=huge"], "DiT size"),
    Case(
        "calibrate-episodes",
        lambda c: ["calibrate", f"out={c.out}", f"data={c.dataset}", "episodes=0"],
        "episodes",
    ),
    Case("demo-workers", lambda c: ["demo", f"out={c.out}", "workers=-1"], "workers"),
    Case("demo-zoo-checkpoints", lambda c: ["demo", f"out={c.out}", "zoo_checkpoints=1"], "zoo_checkpoints"),
    Case("demo-stage-value", lambda c: ["demo", f"out={c.out}", "evaluate.seeds=0"], "seeds"),
    Case("demo-stage-confidence", lambda c: ["demo", f"out={c.out}", "plan.confidence=2"], "confidence"),
    Case("zoo-count", lambda c: ["zoo", "size=tiny", f"out={c.out}", "count=0"], "count"),
    Case(
        "zoo-stage-value", lambda c: ["zoo", "size=tiny", f"out={c.out}", "train.batch_size=0"], "batch_size"
    ),
    Case(
        "compare-max-drop",
        _compare("max_drop=2"),
        "max_drop",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD)),
    ),
    Case(
        "compare-metric",
        _compare("metric=fps"),
        "metric",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD)),
    ),
    Case("size-preset", lambda c: ["data", f"out={c.out}", "size=huge"], "size"),
    Case(
        "data-validation-text",
        lambda c: ["data", "size=tiny", f"out={c.out}", "validation_fraction=abc"],
        "validation_fraction",
    ),
    Case(
        "data-policy-mix-text",
        lambda c: ["data", "size=tiny", f"out={c.out}", "policy_mix.expert=abc"],
        "policy_mix.expert",
    ),
    Case("evaluate-seeds-bool", lambda c: ["evaluate", f"out={c.out}", "seeds=true"], "seeds"),
    Case("plan-noise-text", lambda c: ["plan", f"out={c.out}", "noise_std=abc"], "noise_std"),
    Case("plan-timing-text", lambda c: ["plan", f"out={c.out}", "timing_ns=[abc]"], "timing_ns"),
    Case(
        "wm-eval-horizons-text",
        lambda c: ["wm-eval", "size=tiny", f"out={c.out}", "horizons=[a]"],
        "horizons",
    ),
    Case(
        "train-dit-unknown-key", lambda c: ["train", "size=tiny", f"out={c.out}", "+dit.colour=red"], "colour"
    ),
    Case("zoo-low-text", lambda c: ["zoo", "size=tiny", f"out={c.out}", "low=abc"], "low"),
    Case(
        "zoo-learner-step",
        lambda c: ["zoo", "size=tiny", f"out={c.out}", "rounds.1.learner_step=5"],
        "learner_step",
    ),
    Case(
        "compare-max-drop-text",
        _compare("max_drop=abc"),
        "max_drop",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD)),
    ),
]

INPUTS = [
    Case(
        "evaluate-policy-missing",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.tmp / 'nope'}]",
            f"world_model={c.world_model}",
            f"value_model={c.value_model}",
            "seeds=1",
        ],
        "nope",
    ),
    Case(
        "evaluate-policy-config",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.tmp / 'policy-config'}]",
            f"world_model={c.world_model}",
            f"value_model={c.value_model}",
            "seeds=1",
        ],
        "policy-config",
        lambda c: _damaged_policy(c, "config"),
    ),
    Case(
        "evaluate-policy-weights",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.tmp / 'policy-weights'}]",
            f"world_model={c.world_model}",
            f"value_model={c.value_model}",
            "seeds=1",
        ],
        "policy-weights",
        lambda c: _damaged_policy(c, "weights"),
    ),
    Case(
        "evaluate-world-model-missing",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.policy}]",
            f"world_model={c.tmp / 'nope'}",
            f"value_model={c.value_model}",
            "seeds=1",
        ],
        "world_model=",
    ),
    Case(
        "evaluate-world-model-damaged",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.policy}]",
            f"world_model={c.tmp / 'wm'}",
            f"value_model={c.value_model}",
            "seeds=1",
        ],
        "wm",
        lambda c: _damaged_model(c, "wm"),
    ),
    Case(
        "evaluate-value-model-empty",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.policy}]",
            f"world_model={c.world_model}",
            f"value_model={c.tmp / 'empty'}",
            "seeds=1",
        ],
        "empty",
        lambda c: (c.tmp / "empty").mkdir(),
    ),
    Case(
        "evaluate-real-csv-missing",
        lambda c: ["evaluate", f"out={c.out}", *c.models(), "seeds=1", f"real_csv={c.tmp / 'nope.csv'}"],
        "real_csv",
    ),
    Case(
        "evaluate-calibration-missing",
        lambda c: ["evaluate", f"out={c.out}", *c.models(), "seeds=1", f"calibration={c.tmp / 'nope'}"],
        "calibration",
    ),
    Case(
        "evaluate-starts-missing",
        lambda c: ["evaluate", f"out={c.out}", *c.models(), "seeds=1", f"starts={c.tmp / 'nope'}"],
        "nope",
    ),
    Case(
        "train-data-missing",
        lambda c: ["train", "size=tiny", f"out={c.out}", f"data={c.tmp / 'nope'}"],
        "nope",
    ),
    Case(
        "train-data-no-info",
        lambda c: [
            "train",
            "size=tiny",
            "stage=value_model",
            f"out={c.out}",
            f"data={c.tmp / 'dataset-info'}",
        ],
        "dataset-info",
        lambda c: _damaged_dataset(c, "info"),
    ),
    Case(
        "train-data-bad-parquet",
        lambda c: [
            "train",
            "size=tiny",
            "stage=value_model",
            f"out={c.out}",
            f"data={c.tmp / 'dataset-parquet'}",
        ],
        "dataset-parquet",
        lambda c: _damaged_dataset(c, "parquet"),
    ),
    Case(
        "train-data-bad-video",
        lambda c: [
            "train",
            "size=tiny",
            "stage=value_model",
            f"out={c.out}",
            f"data={c.tmp / 'dataset-video'}",
        ],
        "dataset-video",
        lambda c: _damaged_dataset(c, "video"),
    ),
    Case(
        "train-tokenizer-missing",
        lambda c: ["train", "size=tiny", f"out={c.out}", f"data={c.dataset}", f"tokenizer={c.tmp / 'nope'}"],
        "nope",
    ),
    Case(
        "train-init-missing",
        lambda c: [
            "train",
            "size=tiny",
            "stage=pixel_world_model",
            f"out={c.out}",
            f"data={c.dataset}",
            f"init={c.tmp / 'nope'}",
        ],
        "nope",
    ),
    Case(
        "inspect-bad-parquet",
        lambda c: ["inspect", str(c.tmp / "dataset-parquet")],
        "dataset-parquet",
        lambda c: _damaged_dataset(c, "parquet"),
    ),
    Case(
        "wm-eval-release-missing",
        lambda c: ["wm-eval", f"out={c.out}", f"release={c.tmp / 'nope'}", f"data={c.dataset}"],
        "nope",
    ),
    Case(
        "wm-eval-data-no-info",
        lambda c: ["wm-eval", f"out={c.out}", f"release={c.world_model}", f"data={c.tmp / 'dataset-info'}"],
        "dataset-info",
        lambda c: _damaged_dataset(c, "info"),
    ),
    Case(
        "wm-eval-data-no-frames",
        lambda c: [
            "wm-eval",
            f"out={c.out}",
            f"release={c.world_model}",
            f"data={c.tmp / 'dataset-no-data'}",
        ],
        "data/*.parquet",
        lambda c: _damaged_dataset(c, "no-data"),
    ),
    Case(
        "wm-eval-data-bad-video",
        lambda c: ["wm-eval", f"out={c.out}", f"release={c.world_model}", f"data={c.tmp / 'dataset-video'}"],
        "dataset-video",
        lambda c: _damaged_dataset(c, "video"),
    ),
    Case(
        "calibrate-data-no-episodes",
        lambda c: ["calibrate", f"out={c.out}", f"data={c.tmp / 'dataset-no-episodes'}"],
        "meta/episodes",
        lambda c: _damaged_dataset(c, "no-episodes"),
    ),
    Case(
        "calibrate-data-bad-parquet",
        lambda c: ["calibrate", f"out={c.out}", f"data={c.tmp / 'dataset-parquet'}"],
        "dataset-parquet",
        lambda c: _damaged_dataset(c, "parquet"),
    ),
    Case(
        "train-pixel-bad-parquet",
        lambda c: [
            "train",
            "size=tiny",
            "stage=pixel_world_model",
            f"out={c.out}",
            f"data={c.tmp / 'dataset-parquet'}",
        ],
        "dataset-parquet",
        lambda c: _damaged_dataset(c, "parquet"),
    ),
    Case(
        "inspect-info-not-json",
        lambda c: ["inspect", str(c.tmp / "dataset-info-garbage")],
        "info.json",
        lambda c: _damaged_dataset(c, "info-garbage"),
    ),
    Case(
        "evaluate-starts-dojo-not-json",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            *c.models(),
            "seeds=1",
            f"starts={c.tmp / 'dataset-dojo-garbage'}",
        ],
        "dojo.json",
        lambda c: _damaged_dataset(c, "dojo-garbage"),
    ),
    Case(
        "report-episodes-not-parquet",
        lambda c: ["report", str(c.tmp / "run"), f"out={c.out}"],
        "episodes.parquet",
        lambda c: _garbage(fake_run(c, "run", evaluate_summary(GOOD)) / "episodes.parquet"),
    ),
    Case("calibrate-data-missing", lambda c: ["calibrate", f"out={c.out}", f"data={c.tmp / 'nope'}"], "nope"),
    Case(
        "data-learner-missing",
        lambda c: ["data", "size=tiny", f"out={c.out}", "policy=expert", f"learner={c.tmp / 'nope'}"],
        "nope",
    ),
    Case("report-run-missing", lambda c: ["report", str(c.tmp / "nope"), f"out={c.out}"], "nope"),
    Case(
        "report-summary-not-json",
        lambda c: ["report", str(c.tmp / "run"), f"out={c.out}"],
        "summary.json",
        lambda c: _garbage(fake_run(c, "run", {}) / "summary.json", "{ not json"),
    ),
    Case(
        "report-summary-empty",
        lambda c: ["report", str(c.tmp / "run"), f"out={c.out}"],
        "run",
        lambda c: fake_run(c, "run", {}),
    ),
    Case(
        "compare-base-missing",
        lambda c: ["compare", str(c.tmp / "nope"), str(c.tmp / "new"), f"out={c.out}"],
        "nope",
        lambda c: fake_run(c, "new", evaluate_summary(GOOD)),
    ),
    Case(
        "compare-base-unreadable",
        lambda c: ["compare", "/proc/self/mem", str(c.tmp / "new"), f"out={c.out}"],
        "/proc/self/mem",
        lambda c: fake_run(c, "new", evaluate_summary(GOOD)),
    ),
    Case(
        "evaluate-real-csv-unreadable",
        lambda c: ["evaluate", f"out={c.out}", *c.models(), "seeds=1", "real_csv=/proc/self/mem"],
        "/proc/self/mem",
    ),
    Case(
        "compare-base-not-json",
        _compare(),
        "summary.json",
        lambda c: (_runs({}, evaluate_summary(GOOD))(c), _garbage(c.tmp / "base" / "summary.json")),
    ),
]


def _file(ctx: Ctx) -> None:
    _garbage(ctx.tmp / "file")


def _foreign(ctx: Ctx) -> None:
    (ctx.tmp / "mine").mkdir()
    _garbage(ctx.tmp / "mine" / "notes.txt")


LONG = "x" * 300
OUT = [
    Case("data-out-is-a-file", lambda c: ["data", "size=tiny", f"out={c.tmp / 'file'}"], "file", _file),
    Case(
        "data-out-under-a-file",
        lambda c: ["data", "size=tiny", f"out={c.tmp / 'file' / 'run'}"],
        "cannot be",
        _file,
    ),
    Case("data-out-unwritable", lambda c: ["data", "size=tiny", "out=/sys/dojo-bench-test/run"], "cannot be"),
    Case("data-out-foreign", lambda c: ["data", "size=tiny", f"out={c.tmp / 'mine'}"], "not empty", _foreign),
    Case(
        "train-out-unwritable", lambda c: ["train", "size=tiny", "out=/sys/dojo-bench-test/run"], "cannot be"
    ),
    Case(
        "wm-eval-out-too-long",
        lambda c: ["wm-eval", f"release={c.world_model}", f"data={c.dataset}", f"out={c.tmp / LONG}"],
        "cannot be",
    ),
    Case(
        "wm-eval-out-under-a-file",
        lambda c: [
            "wm-eval",
            f"release={c.world_model}",
            f"data={c.dataset}",
            f"out={c.tmp / 'file' / 'run'}",
        ],
        "cannot be",
        _file,
    ),
    Case(
        "bench-out-under-a-file",
        lambda c: ["bench", "size=tiny", "what=train", f"out={c.tmp / 'file' / 'run'}"],
        "cannot be",
        _file,
    ),
    Case(
        "calibrate-out-unwritable",
        lambda c: ["calibrate", f"data={c.dataset}", "episodes=1", "out=/sys/dojo-bench-test/run"],
        "cannot be",
    ),
    Case(
        "evaluate-out-foreign",
        lambda c: ["evaluate", f"out={c.tmp / 'mine'}", *c.models(), "seeds=1"],
        "not empty",
        _foreign,
    ),
    Case("plan-out-too-long", lambda c: ["plan", f"out={c.tmp / LONG}", *c.models(), "seeds=1"], "cannot be"),
    Case(
        "report-out-under-a-file",
        lambda c: ["report", str(c.tmp / "run"), f"out={c.tmp / 'file' / 'r'}"],
        "cannot be",
        lambda c: (_file(c), fake_run(c, "run", evaluate_summary(GOOD))),
    ),
    Case(
        "compare-out-too-long",
        lambda c: ["compare", str(c.tmp / "base"), str(c.tmp / "new"), f"out={c.tmp / LONG}"],
        "cannot be",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD)),
    ),
    Case("demo-out-unwritable", lambda c: ["demo", "out=/sys/dojo-bench-test/run"], "cannot be"),
    Case("zoo-out-is-a-file", lambda c: ["zoo", "size=tiny", f"out={c.tmp / 'file'}"], "file", _file),
]

COMPARE = [
    Case(
        "compare-different-kinds",
        _compare(),
        "different kinds",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD, kind="plan")),
    ),
    Case(
        "compare-no-common-policy",
        _compare(),
        "no policy",
        _runs(evaluate_summary(GOOD), evaluate_summary({"c": 0.5, "d": 0.6})),
    ),
    Case(
        "compare-different-seeds",
        _compare(),
        "different seeds",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD, seeds=(7, 8, 9, 10))),
    ),
    Case(
        "compare-different-tasks",
        _compare(),
        "different tasks",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD, task="pusht")),
    ),
    Case(
        "compare-seeds-unrecorded",
        _compare(),
        "seeds",
        _runs(
            evaluate_summary(GOOD),
            {**evaluate_summary(GOOD), "provenance": {"config": {"task": "pusht_bench"}}},
        ),
    ),
    Case(
        "compare-plan-predicted",
        _compare("metric=predicted"),
        "predicted",
        _runs(evaluate_summary(GOOD, kind="plan"), evaluate_summary(GOOD, kind="plan")),
    ),
    Case(
        "compare-gate-checks-nothing",
        _compare("max_drop=null"),
        "checks nothing",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD)),
    ),
    Case(
        "compare-unfinished-run",
        _compare(),
        "not finished",
        _runs(evaluate_summary(GOOD), evaluate_summary(GOOD), new_status="running"),
    ),
    Case("compare-empty-summaries", _compare(), "cannot compare", _runs({}, {})),
]


def _twice_csv(ctx: Ctx) -> None:
    label = ZOO_CHECKPOINT
    (ctx.tmp / "real.csv").write_text(f"policy,success_rate\n{label},0.5\n{label},0.7\n")


AMBIGUOUS = [
    Case(
        "evaluate-csv-names-twice",
        lambda c: ["evaluate", f"out={c.out}", *c.models(), "seeds=1", f"real_csv={c.tmp / 'real.csv'}"],
        "twice",
        _twice_csv,
    ),
    Case(
        "evaluate-same-policy-twice",
        lambda c: [
            "evaluate",
            f"out={c.out}",
            f"policies=[{c.policy},{c.policy}]",
            f"world_model={c.world_model}",
            f"value_model={c.value_model}",
            "seeds=1",
        ],
        "twice",
    ),
    Case(
        "evaluate-threshold-and-calibration",
        lambda c: ["evaluate", f"out={c.out}", "success_threshold=0.5", f"calibration={c.tmp}"],
        "not both",
    ),
    Case(
        "wm-eval-horizon-beyond-data",
        lambda c: [
            "wm-eval",
            f"out={c.out}",
            f"release={c.world_model}",
            f"data={c.dataset}",
            "horizons=[1,500]",
        ],
        "500",
    ),
    Case(
        "train-clip-beyond-model",
        lambda c: ["train", "size=tiny", f"out={c.out}", f"data={c.data}", "clip_length=201"],
        "clip_length",
    ),
    Case(
        "train-save-steps-beyond-max",
        lambda c: ["train", "size=tiny", "stage=policy", "max_steps=3", "save_steps=[4]", f"out={c.out}"],
        "save_steps",
    ),
]

COMMAND = [
    Case("unquoted-parentheses", lambda c: ["evaluate", f"out={c.tmp / 'run (1)'}", "seeds=1"], "quoted"),
    Case(
        "interpolation-of-unset-env",
        lambda c: ["data", "out=${oc.env:DOJO_BENCH_UNSET_TEST_VARIABLE}"],
        "DOJO_BENCH_UNSET",
    ),
    Case("added-key", lambda c: ["data", "size=tiny", f"out={c.out}", "+colour=red"], "colour"),
    Case("deleted-key", lambda c: ["data", "size=tiny", f"out={c.out}", "~overwrite"], "overwrite"),
    Case("bare-word", lambda c: ["data", f"out={c.out}", "episodes"], "key=value"),
    Case("unbalanced-bracket", lambda c: ["evaluate", f"out={c.out}", "policies=[a,b"], "evaluate"),
    Case("empty-out", lambda c: ["data", "size=tiny", "out="], "out"),
    Case("infinite-seed", lambda c: ["evaluate", f"out={c.out}", "seed=1e999"], "seed"),
    Case("dashed-key", lambda c: ["data", f"out={c.out}", "max-steps=3"], "max-steps"),
    Case("size-path", lambda c: ["data", f"out={c.out}", "size=../../evaluate/config"], "size"),
]

MECHANISMS = {
    "config": CONFIG,
    "inputs": INPUTS,
    "out": OUT,
    "compare": COMPARE,
    "ambiguous": AMBIGUOUS,
    "command": COMMAND,
}
CASES = [
    pytest.param(mechanism, case, id=f"{mechanism}:{case.id}")
    for mechanism, cases in MECHANISMS.items()
    for case in cases
]


def test_the_suite_is_large_enough():
    assert len(CASES) >= 40 and all(len(cases) >= 5 for cases in MECHANISMS.values())


@pytest.mark.parametrize(("mechanism", "case"), CASES)
def test_bad_input_is_one_line_and_writes_nothing(mechanism, case, inputs, tmp_path, capsys, one_thread):
    ctx = Ctx(tmp_path, **inputs)
    case.setup(ctx)
    code, err = refused(ctx, case.args(ctx), capsys)
    assert_one_line(code, err, case.fragment)
    assert not ctx.out.exists()


# ------------------------------------------------------------------------------------------------------------------
# Inputs stay read-only in runs that succeed too
# ------------------------------------------------------------------------------------------------------------------


def test_runs_that_succeed_write_nothing_into_their_inputs(inputs, tmp_path, capsys, one_thread):
    """Training, wm-eval, calibrate, evaluate and inspect read a dataset, a zoo checkpoint and the shipped models:
    their results go to out=, decoded frames to the user cache (DOJO_BENCH_CACHE), nothing into an input."""
    data, policy, world_model, value_model = (
        inputs[k] for k in ("data", "policy", "world_model", "value_model")
    )
    dataset = data / "validation"
    cache = Path(os.environ["DOJO_BENCH_CACHE"])
    watched = (data, policy_zoo.ZOO_ROOT, shipped.SHIPPED_ROOT)
    before = snapshot(*watched)
    runs = {
        "train": ["train", "size=tiny", "stage=value_model", f"data={data}", "max_steps=2"],
        "wm-eval": ["wm-eval", f"release={world_model}", f"data={dataset}", "horizons=[1]", "episodes=1"],
        "calibrate": ["calibrate", f"data={dataset}", "episodes=1"],
        "evaluate": ["evaluate", f"policies=[{policy}]", f"world_model={world_model}", f"value_model={value_model}",
                     f"starts={dataset}", "seeds=1", "max_steps=2", "bootstrap=10", "media_episodes=0"],
    }  # fmt: skip
    for verb, args in runs.items():
        out = tmp_path / verb
        assert main([*args, f"out={out}"]) == 0, capsys.readouterr().err
        assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert main(["inspect", str(dataset)]) == 0
    capsys.readouterr()
    assert snapshot(*watched) == before
    assert any(cache.rglob(f"{dataset.name}-*-frames-*.npy"))  # the decoded frames live in the user cache
