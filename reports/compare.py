"""``dojo-bench compare BASE_RUN NEW_RUN``: what changed between two runs, and a gate for CI.

    result = compare_summaries(base_summary, new_summary, Gate(max_drop=0.1))   # pure: dicts in, dict out
    to_markdown(result)                                                          # a pull-request comment

Per policy in both runs and per success kind (``predicted``: imagination, ``real``: the dojo): base and new rate,
the delta (new - base) with Newcombe's hybrid score interval for a difference of two independent proportions
(method 10 of Newcombe 1998), built from the two runs' stored Wilson intervals, so nothing is recomputed from
episodes, and the rank among the policies both runs share (competition ranks, 1 = best) before and after.
Policies only in the new run are "added", only in the base run "removed".

The gate (``Gate``) fails when a shared policy's success on ``gate.metric`` drops by more than ``max_drop`` (with
``require_significant``, only when the delta's whole interval lies below zero), when ``fail_on_rank_change`` and
any shared policy's rank moved, or when ``fail_on_removed`` and a policy disappeared. The CLI exits 1 on a failed
gate, 0 otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dojo_bench.core.checks import check_number
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.files import atomic_write_text, read_input_text
from dojo_bench.core.run_dir import prepare_run_dir
from dojo_bench.engine.results import write_summary_json
from reports import plots
from reports.html import render
from reports.report import run_kind, run_status

METRICS = ("predicted", "real")
WORLD_OF = {"predicted": "imagined", "real": "real"}
SUMMARY_FILE = "summary.json"
COMPARE_DIR = "compare"


class GateFailed(DojoError):
    """A regression gate failed: exit code 1, after the comparison was written."""

    exit_code = 1


@dataclass
class Gate:
    """When ``compare`` fails (see the module docstring). ``max_drop=None`` turns the drop check off."""

    metric: str = "real"  # real | predicted: which success the gate watches
    max_drop: float | None = 0.1  # largest allowed drop in success rate (0.1 = 10 percentage points)
    require_significant: bool = False  # fail on a drop only when the delta's interval excludes zero
    fail_on_rank_change: bool = False
    fail_on_removed: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise UsageError(f"gate metric={self.metric!r} is unknown; choose one of {', '.join(METRICS)}")
        check_number("max_drop", self.max_drop, "in [0, 1] (a success-rate drop)", lambda x: 0 <= x <= 1,
                     optional=True)  # fmt: skip
        for key in ("require_significant", "fail_on_rank_change", "fail_on_removed"):
            if not isinstance(getattr(self, key), bool):
                raise UsageError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.max_drop is None and not (self.fail_on_rank_change or self.fail_on_removed):
            # A gate that checks nothing could only ever say "passed": fail closed instead.
            raise UsageError(
                "the gate checks nothing (max_drop=null, fail_on_rank_change and fail_on_removed false): "
                "set max_drop= or turn one of them on"
            )


@dataclass
class CompareConfig:
    """What ``dojo-bench compare`` compares. Built by the CLI from Hydra (conf/compare); validated here."""

    base: str | None = None  # the base run dir (or its summary.json)
    new: str | None = None  # the new run dir (or its summary.json)
    out: str | None = None  # where to write; null: NEW_RUN/compare
    metric: str = "real"  # real | predicted: which success the gate watches
    max_drop: float | None = 0.1  # fail when a policy's success drops by more than this (0.1 = 10 points);
    #   null: off (then turn a fail_on_* on: a gate that checks nothing is refused)
    require_significant: bool = False  # fail on a drop only when its interval lies wholly below zero
    fail_on_rank_change: bool = False  # fail when any shared policy's rank changes
    fail_on_removed: bool = False  # fail when a policy of the base run is missing from the new run
    preset: str = "default"  # the size preset, set by size=default|tiny

    def __post_init__(self) -> None:
        if not self.base or not self.new:
            raise UsageError("two runs are required: `dojo-bench compare BASE_RUN NEW_RUN` (or base= new=)")
        if self.out in ("", None):
            new = Path(self.new)
            self.out = str((new.parent if new.name == SUMMARY_FILE else new) / COMPARE_DIR)
        self.gate()  # validate the gate's keys now

    def gate(self) -> Gate:
        return Gate(self.metric, self.max_drop, self.require_significant, self.fail_on_rank_change,
                    self.fail_on_removed)  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------------


def read_summary(path: str | Path) -> dict[str, Any]:
    """A run's summary.json (``path`` is the run dir or the file); one DojoError line on any problem."""
    path = Path(path).expanduser()
    file = path if path.name == SUMMARY_FILE or path.is_file() else path / SUMMARY_FILE
    if not file.is_file():
        raise DojoError(f"{path} holds no {SUMMARY_FILE}: compare two finished evaluate runs")
    try:
        summary = json.loads(read_input_text(file))
    except json.JSONDecodeError as error:
        raise DojoError(f"{file} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(summary, dict):
        raise DojoError(f"{file} does not hold a JSON object")
    status = run_status(file.parent)
    if status not in (None, "finished"):
        raise DojoError(
            f"{file.parent} holds a {status} run, not finished: its numbers are partial (finish it by running "
            "its command again)"
        )
    return summary


def rates(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """{policy: {"predicted"|"real": {rate, low, high, n}}} from a summary (a real rate from real_csv has no
    interval)."""
    stored = summary.get("policies") if isinstance(summary.get("policies"), dict) else {}
    agreement = summary.get("agreement") if isinstance(summary.get("agreement"), dict) else {}
    agreed = agreement.get("policies") if isinstance(agreement.get("policies"), dict) else {}
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for name in dict.fromkeys([*agreed, *stored]):
        worlds = stored.get(name) if isinstance(stored.get(name), dict) else {}
        entry: dict[str, dict[str, Any]] = {}
        for metric in METRICS:
            block = worlds.get(WORLD_OF[metric])
            if isinstance(block, dict) and _number(block.get("success_rate")) is not None:
                entry[metric] = {"rate": float(block["success_rate"]), "low": _number(block.get("ci_low")),
                                 "high": _number(block.get("ci_high")), "n": block.get("n_episodes")}  # fmt: skip
            elif isinstance(agreed.get(name), dict) and _number(agreed[name].get(metric)) is not None:
                entry[metric] = {"rate": float(agreed[name][metric]), "low": None, "high": None, "n": None}
        result[str(name)] = entry
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# ----------------------------------------------------------------------------------------------------------------------
# Comparing (pure)
# ----------------------------------------------------------------------------------------------------------------------


def newcombe_interval(base: dict[str, Any], new: dict[str, Any]) -> tuple[float | None, float | None]:
    """Interval of new - base from each rate's Wilson interval (Newcombe's hybrid score method); (None, None)
    when either rate has no interval."""
    if None in (base.get("low"), base.get("high"), new.get("low"), new.get("high")):
        return None, None
    p1, l1, u1 = base["rate"], base["low"], base["high"]
    p2, l2, u2 = new["rate"], new["low"], new["high"]
    delta = p2 - p1
    low = delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return max(-1.0, low), min(1.0, high)


def _ranks(values: dict[str, float]) -> dict[str, int]:
    return {name: 1 + sum(other > value for other in values.values()) for name, value in values.items()}


def compare_summaries(base: dict[str, Any], new: dict[str, Any], gate: Gate | None = None) -> dict[str, Any]:
    """Rows of rank changes and success deltas with intervals, added / removed policies, and the gate's verdict."""
    gate = gate or Gate()
    before, after = rates(base), rates(new)
    shared = [name for name in after if name in before]
    rows = []
    for name in shared:
        row: dict[str, Any] = {"policy": name}
        for metric in METRICS:
            b, a = before[name].get(metric), after[name].get(metric)
            if b is None or a is None:
                row[metric] = None
                continue
            low, high = newcombe_interval(b, a)
            row[metric] = {
                "base": b,
                "new": a,
                "delta": a["rate"] - b["rate"],
                "delta_low": low,
                "delta_high": high,
            }
        rows.append(row)
    for metric in METRICS:
        comparable = [r for r in rows if r[metric] is not None]
        base_ranks = _ranks({r["policy"]: r[metric]["base"]["rate"] for r in comparable})
        new_ranks = _ranks({r["policy"]: r[metric]["new"]["rate"] for r in comparable})
        for r in comparable:
            r[metric]["base_rank"] = base_ranks[r["policy"]]
            r[metric]["new_rank"] = new_ranks[r["policy"]]
            r[metric]["rank_change"] = base_ranks[r["policy"]] - new_ranks[r["policy"]]  # > 0: moved up
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    failures = gate_failures(rows, removed, gate)
    return {
        "rows": rows,
        "added": added,
        "removed": removed,
        "gate": {**asdict(gate), "passed": not failures, "failures": failures},
    }


def gate_failures(rows: list[dict[str, Any]], removed: list[str], gate: Gate) -> list[str]:
    """One line per reason the gate fails; empty when it passes."""
    failures = []
    for row in rows:
        m = row[gate.metric]
        if m is None:
            continue
        drop = -m["delta"]
        significant = m["delta_high"] is not None and m["delta_high"] < 0
        if gate.max_drop is not None and drop > gate.max_drop + 1e-12:
            if not gate.require_significant or significant:
                failures.append(
                    f"{row['policy']}: {gate.metric} success dropped {100 * drop:.1f} pp "
                    f"({100 * m['base']['rate']:.1f}% → {100 * m['new']['rate']:.1f}%; max_drop "
                    f"{100 * gate.max_drop:.1f} pp)"
                )
        if gate.fail_on_rank_change and m["rank_change"]:
            failures.append(
                f"{row['policy']}: {gate.metric} rank changed {m['base_rank']} -> {m['new_rank']}"
            )
    if gate.fail_on_removed:
        failures.extend(f"{name}: removed (in the base run, not in the new one)" for name in removed)
    return failures


# ----------------------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------------------


def _md_text(text: str) -> str:
    """A policy name as literal Markdown text: HTML characters as entities (GitHub renders raw HTML in comments),
    emphasis, code, link and table punctuation backslash-escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\`*_[]|~":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "n/a"
    interval = "" if m["delta_low"] is None else f" [{_pp(m['delta_low'])}, {_pp(m['delta_high'])}]"
    return f"{_pct(m['base']['rate'])} → {_pct(m['new']['rate'])} ({_pp(m['delta'])} pp{interval})"


def _rank_cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "n/a"
    arrow = "↑" if m["rank_change"] > 0 else "↓" if m["rank_change"] < 0 else "="
    return f"{m['base_rank']} → {m['new_rank']} {arrow}"


def to_markdown(result: dict[str, Any], base_name: str = "base", new_name: str = "new") -> str:
    """The comparison as GitHub-flavoured Markdown, for a pull-request comment."""
    gate = result["gate"]
    status = "✅ regression gate passed" if gate["passed"] else "❌ regression gate FAILED"
    rules = [f"metric: {gate['metric']}"]
    rules.append(
        "max drop: off" if gate["max_drop"] is None else f"max drop: {100 * gate['max_drop']:.1f} pp"
    )
    rules += [text for key, text in (("require_significant", "significant drops only"),
              ("fail_on_rank_change", "fail on rank change"), ("fail_on_removed", "fail on removed policies"))
              if gate[key]]  # fmt: skip
    lines = [
        f"## dojo-bench compare: {_md_text(base_name)} → {_md_text(new_name)}",
        "",
        f"**{status}** ({', '.join(rules)})",
        "",
    ]
    lines += [f"- {_md_text(f)}" for f in gate["failures"]]
    if gate["failures"]:
        lines.append("")
    lines += [
        "| policy | real success (Δ, interval) | real rank | predicted success (Δ, interval) | predicted rank |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {_md_text(row['policy'])} | {_cell(row['real'])} | {_rank_cell(row['real'])} | "
            f"{_cell(row['predicted'])} | {_rank_cell(row['predicted'])} |"
        )
    if not result["rows"]:
        lines.append("| *no policy in both runs* | | | | |")
    lines.append("")
    lines.append(f"Added: {', '.join(_md_text(n) for n in result['added']) or 'none'}  ")
    lines.append(f"Removed: {', '.join(_md_text(n) for n in result['removed']) or 'none'}")
    lines.append("")
    lines.append(
        "Deltas in percentage points, new − base; intervals: Newcombe hybrid score (from the runs' Wilson intervals)."
    )
    return "\n".join(lines) + "\n"


def delta_chart(result: dict[str, Any]) -> str | None:
    """Success deltas with intervals per shared policy (PNG data URI), None when nothing is shared."""
    rows = result["rows"]
    if not rows:
        return None
    series = {}
    for metric in ("predicted", "real"):
        series[metric] = [
            None
            if r[metric] is None
            else (
                r[metric]["delta"],
                _or(r[metric]["delta_low"], r[metric]["delta"]),
                _or(r[metric]["delta_high"], r[metric]["delta"]),
            )  # fmt: skip
            for r in rows
        ]
    return plots.delta_intervals([r["policy"] for r in rows], series)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def write_comparison(result: dict[str, Any], out: Path, base_name: str, new_name: str) -> dict[str, Path]:
    """compare.json, compare.md and compare.html into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "compare.json", "md": out / "compare.md", "html": out / "compare.html"}
    write_summary_json({"base": base_name, "new": new_name, **result}, paths["json"])
    atomic_write_text(paths["md"], to_markdown(result, base_name, new_name))
    html = render("compare.html.j2", title=f"dojo-bench compare: {Path(base_name).name} → {Path(new_name).name}",
                  base=base_name, new=new_name, result=result, chart=delta_chart(result))  # fmt: skip
    atomic_write_text(paths["html"], html)
    return paths


def comparability_problems(base: dict[str, Any], new: dict[str, Any], metric: str) -> list[str]:
    """Why two summaries cannot be compared (empty when they can). The gate fails closed: runs of different kinds,
    tasks or seeds, or with no policy measured in both, would make any verdict meaningless."""
    problems = []
    kinds = run_kind(base), run_kind(new)
    if None in kinds:
        problems.append("a run is neither an evaluate nor a plan run (no agreement or planning block)")
    elif kinds[0] != kinds[1]:
        problems.append(f"the runs are of different kinds ({kinds[0]} vs {kinds[1]})")
    prov = [s.get("provenance") if isinstance(s.get("provenance"), dict) else {} for s in (base, new)]
    seeds = [p.get("seeds") for p in prov]
    if None in seeds or seeds[0] != seeds[1]:
        problems.append(
            "the runs used different seeds (or do not record them): compare runs of the same seeds"
        )
    tasks = [(p.get("config") or {}).get("task") for p in prov]
    if None in tasks or tasks[0] != tasks[1]:
        problems.append(f"the runs are of different tasks ({tasks[0]} vs {tasks[1]})")
    before, after = rates(base), rates(new)
    if not any(metric in before[n] and metric in after.get(n, {}) for n in before):
        problems.append(f"no policy has {metric} success in both runs: nothing to gate on")
    return problems


def run_compare(cfg: CompareConfig, overwrite: bool = False) -> dict[str, Any]:
    """``dojo-bench compare``: write the comparison into ``cfg.out``; returns compare.json's content plus the files
    written (``check_gate`` turns a failed gate into ``GateFailed``)."""
    base, new = read_summary(cfg.base), read_summary(cfg.new)
    problems = comparability_problems(base, new, cfg.metric)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DojoError(f"cannot compare {cfg.base} with {cfg.new}: {problems[0]}{more}")
    result = compare_summaries(base, new, cfg.gate())
    run = prepare_run_dir(cfg.out, "compare", asdict(cfg), overwrite)
    base_name, new_name = str(Path(cfg.base).resolve()), str(Path(cfg.new).resolve())
    paths = write_comparison(result, run.path, base_name, new_name)
    run.finish({"passed": result["gate"]["passed"], **{k: str(v) for k, v in paths.items()}})
    return {"base": base_name, "new": new_name, **result, "files": {k: str(v) for k, v in paths.items()}}


def check_gate(result: dict[str, Any]) -> None:
    """Raise ``GateFailed`` (one line, exit code 1) when ``result``'s gate failed."""
    if result["gate"]["passed"]:
        return
    failures = result["gate"]["failures"]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    where = f"; see {result['files']['md']}" if "files" in result else ""
    raise GateFailed(f"regression gate failed: {failures[0]}{more}{where}")


__all__ = ["CompareConfig", "Gate", "GateFailed", "compare_summaries", "comparability_problems", "newcombe_interval", "to_markdown",
           "run_compare", "check_gate", "read_summary", "rates"]  # fmt: skip
