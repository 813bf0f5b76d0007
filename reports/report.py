"""``dojo-bench report RUN_DIR``: a self-contained HTML report of a finished run, from its stored results only.

    run_report(ReportConfig(run="runs/eval", out="runs/eval/report"))

Reads what the run wrote (``summary.json``; ``episodes.parquet``, ``curves.parquet`` and ``media/`` when present,
see dojo_bench/verbs/evaluate.py and dojo_bench/engine/media.py) and writes into ``out`` (default ``RUN_DIR/report``):

- ``index.html``: the run: predicted vs real success per policy with intervals and ranks, the predicted-vs-real
  scatter with a fit line and r / MMRV, the planning comparison when the run has one, provenance;
- ``policy-<slug>.html`` per policy: success over seeds, value-model curves over time, real vs imagined rollout
  strips (animated) for successes and failures, and the episodes where imagination and reality disagree;
- ``report.json``: the numbers the pages show (no pictures), for CI and scripts.

Nothing is recomputed: rates, intervals and agreement metrics are the run's own. Pages hold their pictures as
``data:`` URIs and inline CSS only, so they open offline from a file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.files import atomic_write_text, read_input_parquet, read_input_text
from dojo_bench.core.metrics import wilson_interval
from dojo_bench.core.run_dir import RUN_FILE, prepare_run_dir
from dojo_bench.engine.media import CURVES_FILE, media_path, policy_slug
from dojo_bench.engine.results import write_summary_json
from reports import media, plots
from reports.html import render

REPORT_DIR = "report"
INDEX_FILE = "index.html"
REPORT_JSON = "report.json"
SUMMARY_FILE = "summary.json"
EPISODES_FILE = "episodes.parquet"
REAL, IMAGINED = "real", "imagined"
MAX_STRIPS = 4  # per group (successes, failures) on a policy page


@dataclass
class ReportConfig:
    """What ``dojo-bench report`` renders. Built by the CLI from Hydra (conf/report); validated here."""

    run: str | None = None  # the run dir to report on (a finished `dojo-bench evaluate` or `plan` run);
    #   size=tiny without run: runs `dojo-bench evaluate size=tiny` into out/run first
    out: str | None = None  # where to write the report; null: RUN_DIR/report
    preset: str = "default"  # the size preset, set by size=default|tiny

    def __post_init__(self) -> None:
        if not self.run:
            raise UsageError("a run dir is required: `dojo-bench report RUN_DIR` (or run=RUN_DIR)")
        if self.out in ("", None):
            self.out = str(Path(self.run) / REPORT_DIR)


def policy_page(name: str) -> str:
    """The file name of a policy's page: safe on every file system whatever the name holds."""
    return f"policy-{policy_slug(name)}.html"


# ----------------------------------------------------------------------------------------------------------------------
# Reading the run
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class StoredRun:
    path: Path
    summary: dict[str, Any]
    episodes: pd.DataFrame | None
    curves: pd.DataFrame | None
    verb: str | None
    status: str | None = (
        None  # run.json's status: "finished", or the run stopped early and its numbers are partial
    )


def run_kind(summary: dict[str, Any]) -> str | None:
    """``evaluate`` or ``plan`` by the blocks their summaries carry; None for anything else."""
    if isinstance(summary.get("agreement"), dict):
        return "evaluate"
    if isinstance(summary.get("planning"), dict):
        return "plan"
    return None


def read_run(path: str | Path) -> StoredRun:
    """The stored results of a run dir; one DojoError line when there is nothing to report on."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DojoError(f"run dir {path} does not exist")
    summary_file = path / SUMMARY_FILE
    if not summary_file.is_file():
        raise DojoError(
            f"{path} has no {SUMMARY_FILE}: report on a finished `dojo-bench evaluate` or `plan` run"
        )
    try:
        summary = json.loads(read_input_text(summary_file))
    except json.JSONDecodeError as error:
        raise DojoError(f"{summary_file} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(summary, dict):
        raise DojoError(f"{summary_file} does not hold a JSON object")
    if run_kind(summary) is None or not isinstance(summary.get("policies"), dict) or not summary["policies"]:
        raise DojoError(
            f"{summary_file} is not the summary of an evaluate or plan run (no agreement or planning block, or no "
            "policies): nothing to report on"
        )
    episodes = read_input_parquet(path / EPISODES_FILE) if (path / EPISODES_FILE).is_file() else None
    curves = read_input_parquet(path / CURVES_FILE) if (path / CURVES_FILE).is_file() else None
    verb, status = read_status(path)
    return StoredRun(path, summary, episodes, curves, verb, status)


def read_status(path: Path) -> tuple[str | None, str | None]:
    """(verb, status) from the run.json of the run dir ``path``; (None, None) without a readable one."""
    try:
        record = json.loads((path / RUN_FILE).read_text())
        return record.get("verb"), record.get("status")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None, None


def run_status(path: str | Path) -> str | None:
    """The status of the run dir ``path`` ("finished", "running", ...); None without a readable run.json."""
    return read_status(Path(path))[1]


def _rate(block: Any) -> dict[str, Any] | None:
    """{rate, low, high, n} from a stored rate block (ResultStore.summary's or a planner's), None when absent."""
    if not isinstance(block, dict):
        return None
    rate = _first(block, "success_rate", "rate", "success", "value")
    if rate is None:
        return None
    low, high = _first(block, "ci_low", "low"), _first(block, "ci_high", "high")
    n = _first(block, "n_episodes", "n", "episodes")
    return {"rate": float(rate), "low": _float(low), "high": _float(high), "n": None if n is None else int(n)}


def _first(block: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if isinstance(block.get(key), int | float) and not isinstance(block.get(key), bool):
            return block[key]
    return None


def _float(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def ranks(values: list[float | None]) -> list[int | None]:
    """Competition ranks, 1 = highest ("1, 1, 3" for ties); None stays unranked."""
    present = [v for v in values if v is not None]
    return [None if v is None else 1 + sum(other > v for other in present) for v in values]


# ----------------------------------------------------------------------------------------------------------------------
# The run page
# ----------------------------------------------------------------------------------------------------------------------


def policy_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per policy: predicted (imagined) and real success with intervals, their ranks, page file name."""
    stored = summary.get("policies") if isinstance(summary.get("policies"), dict) else {}
    agreement = summary.get("agreement") if isinstance(summary.get("agreement"), dict) else {}
    agreed = agreement.get("policies") if isinstance(agreement.get("policies"), dict) else {}
    names = list(dict.fromkeys([*agreed, *stored]))
    rows = []
    for name in names:
        worlds = stored.get(name) if isinstance(stored.get(name), dict) else {}
        predicted = _rate(worlds.get(IMAGINED))
        real = _rate(worlds.get(REAL))
        if real is None and isinstance(agreed.get(name), dict) and agreed[name].get("real") is not None:
            real = {
                "rate": float(agreed[name]["real"]),
                "low": None,
                "high": None,
                "n": None,
            }  # from real_csv
        if (
            predicted is None
            and isinstance(agreed.get(name), dict)
            and agreed[name].get("predicted") is not None
        ):
            predicted = {"rate": float(agreed[name]["predicted"]), "low": None, "high": None, "n": None}
        rows.append({"name": name, "slug": policy_slug(name), "page": policy_page(name),
                     "predicted": predicted, "real": real})  # fmt: skip
    for key in ("predicted", "real"):
        for row, rank in zip(rows, ranks([r[key]["rate"] if r[key] else None for r in rows]), strict=True):
            row[f"rank_{key}"] = rank
    for row in rows:
        a, b = row["rank_predicted"], row["rank_real"]
        row["rank_gap"] = None if a is None or b is None else a - b
    return rows


def agreement_metrics(summary: dict[str, Any]) -> dict[str, Any] | None:
    block = summary.get("agreement")
    if not isinstance(block, dict):
        return None
    names = {"pearson": "Pearson r", "spearman": "Spearman ρ", "kendall": "Kendall τ",
             "mmrv": "MMRV (lower is better)", "calibration_mae": "calibration MAE"}  # fmt: skip
    metrics = []
    for key, label in names.items():
        m = block.get(key)
        if isinstance(m, dict):
            metrics.append({"key": key, "label": label, "value": m.get("value"), "low": m.get("low"),
                            "high": m.get("high")})  # fmt: skip
    return {
        "metrics": metrics,
        "confidence": block.get("confidence"),
        "real_source": block.get("real_source"),
        "success_threshold": block.get("success_threshold"),
        "bootstrap_resamples": block.get("bootstrap_resamples"),
    }


def planning_rows(summary: dict[str, Any], confidence: float = 0.95) -> list[dict[str, Any]] | None:
    """The planning comparison of a plan run, read defensively; None when the run has no ``planning`` block.

    Planners are the keys of ``planning["planners"]`` (or of ``planning`` itself, or a list of blocks with a name)
    and every policy with a real rate (``dojo-bench plan`` stores each planner's rates there). A planner's rate
    comes from its planning entry, else that entry's ``real`` block, else ``summary["policies"][name]["real"]``.
    A Wilson interval is filled in from stored successes and episodes only where the run stored none."""
    block = summary.get("planning")
    if block is None:
        return None
    planners = block.get("planners", block) if isinstance(block, dict) else block
    if isinstance(planners, list):
        planners = {
            str(b.get("name") or b.get("planner") or i): b
            for i, b in enumerate(planners)
            if isinstance(b, dict)
        }
    if not isinstance(planners, dict):
        planners = {}
    stored = summary.get("policies") if isinstance(summary.get("policies"), dict) else {}
    with_real = [n for n, w in stored.items() if isinstance(w, dict) and isinstance(w.get(REAL), dict)]
    rows = []
    for name in dict.fromkeys([*with_real, *planners]):
        entry = planners.get(name) if isinstance(planners.get(name), dict) else {}
        sources = [entry, entry.get(REAL), (stored.get(name) or {}).get(REAL)]
        source = next((b for b in sources if _rate(b) is not None), None)
        if source is None:
            continue
        rate = _rate(source)
        successes = _first(source, "n_success", "successes")
        if rate["low"] is None and rate["n"] and successes is not None:
            rate["low"], rate["high"] = wilson_interval(int(successes), rate["n"], confidence)
        seconds = _first(entry, "seconds_per_decision")
        rows.append({"name": str(name), **rate, "seconds_per_decision": seconds})
    for row, rank in zip(rows, ranks([r["rate"] for r in rows]), strict=True):
        row["rank"] = rank
    return rows or None


def planning_settings(summary: dict[str, Any]) -> dict[str, Any]:
    """The plan run's search settings worth a line on the page (those present)."""
    block = summary.get("planning") if isinstance(summary.get("planning"), dict) else {}
    keys = ("num_proposals", "executed_chunk", "proposal_members", "score", "device")
    return {
        k: block[k] for k in keys if isinstance(block.get(k), str | int | float) and block.get(k) is not None
    }


def planning_timing(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan run's timing curve, rows of {planner, device, n, batch_size, seconds_per_decision}, sorted by planner,
    device and N; [] when the run measured none."""
    block = summary.get("planning") if isinstance(summary.get("planning"), dict) else {}
    timing = block.get("timing") if isinstance(block.get("timing"), list) else []
    keys = ("planner", "device", "n", "batch_size", "seconds_per_decision")
    rows = [
        {k: t.get(k) for k in keys} for t in timing if isinstance(t, dict) and isinstance(t.get("n"), int)
    ]
    return sorted(rows, key=lambda r: (str(r["planner"]), str(r["device"]), r["n"]))


def provenance_view(summary: dict[str, Any]) -> dict[str, Any]:
    p = summary.get("provenance") if isinstance(summary.get("provenance"), dict) else {}
    seeds = p.get("seeds")
    return {
        "git_sha": p.get("git_sha"),
        "seeds": _seed_text(seeds) if isinstance(seeds, list) else seeds,
        "wall_time_s": p.get("wall_time_s"),
        "written_at": p.get("written_at"),
        "hardware": p.get("hardware") if isinstance(p.get("hardware"), dict) else {},
        "checkpoint_hashes": p.get("checkpoint_hashes")
        if isinstance(p.get("checkpoint_hashes"), dict)
        else {},
        "config": p.get("config") if isinstance(p.get("config"), dict) else {},
    }


def _seed_text(seeds: list[Any]) -> str:
    if (
        seeds
        and all(isinstance(s, int) for s in seeds)
        and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    ):
        return f"{seeds[0]} … {seeds[-1]} ({len(seeds)} seeds)" if len(seeds) > 1 else str(seeds[0])
    return ", ".join(str(s) for s in seeds)


# ----------------------------------------------------------------------------------------------------------------------
# A policy page
# ----------------------------------------------------------------------------------------------------------------------


def _outcomes(episodes: pd.DataFrame | None, name: str) -> dict[str, dict[int, dict[str, Any]]]:
    """{world: {seed: episode row}} of one policy."""
    result: dict[str, dict[int, dict[str, Any]]] = {}
    if episodes is None or not len(episodes):
        return result
    for row in episodes[episodes["policy"] == name].to_dict("records"):
        result.setdefault(str(row["world"]), {})[int(row["seed"])] = row
    return result


def policy_detail(run: StoredRun, row: dict[str, Any], threshold: float | None) -> dict[str, Any]:
    """Everything one policy page shows: numbers (JSON-able) and pictures (``charts``, ``strips``)."""
    name = row["name"]
    outcomes = _outcomes(run.episodes, name)
    seeds = sorted({s for world in outcomes.values() for s in world})
    worlds = [w for w in (REAL, IMAGINED) if w in outcomes] + sorted(set(outcomes) - {REAL, IMAGINED})
    charts: dict[str, str] = {}
    if seeds:
        charts["seeds"] = plots.success_over_seeds(
            seeds, {w: [_success(outcomes[w].get(s)) for s in seeds] for w in worlds}
        )
    curves = _curve_series(run.curves, name)
    if curves:
        charts["curves"] = plots.progress_curves(curves, threshold, title="progress over time")

    disagreements = []
    for seed in seeds:
        real, imagined = outcomes.get(REAL, {}).get(seed), outcomes.get(IMAGINED, {}).get(seed)
        if real is not None and imagined is not None and bool(real["success"]) != bool(imagined["success"]):
            disagreements.append(
                {"seed": seed, "real": _episode_view(real), "imagined": _episode_view(imagined)}
            )

    strips = {"successes": [], "failures": []}
    disagreement_seeds = {d["seed"] for d in disagreements}
    for seed in seeds:
        real_file = media.load_strip(media_path(run.path, name, REAL, seed))
        imagined_file = media.load_strip(media_path(run.path, name, IMAGINED, seed))
        gif = media.episode_strip(real_file, imagined_file)
        if gif is None:
            continue
        real, imagined = outcomes.get(REAL, {}).get(seed), outcomes.get(IMAGINED, {}).get(seed)
        deciding = real if real is not None else imagined
        group = "successes" if deciding is not None and bool(deciding["success"]) else "failures"
        if len(strips[group]) >= MAX_STRIPS and seed not in disagreement_seeds:
            continue
        strips[group].append({
            "seed": seed,
            "gif": gif,
            "real": _episode_view(real),
            "imagined": _episode_view(imagined),
            "disagree": seed in disagreement_seeds,
            "has_real_frames": real_file is not None,
            "has_imagined_frames": imagined_file is not None,
        })  # fmt: skip
    for item in disagreements:
        item["has_strip"] = any(s["seed"] == item["seed"] for g in strips.values() for s in g)
    flagged = [
        {"seed": int(r["seed"]), "world": w, "flags": r["flags"]}
        for w in worlds
        for r in outcomes[w].values()
        if str(r.get("flags") or "")
    ]
    return {
        "numbers": {
            "name": name,
            "predicted": row["predicted"],
            "real": row["real"],
            "rank_predicted": row["rank_predicted"],
            "rank_real": row["rank_real"],
            "seeds": seeds,
            "success_by_seed": {w: {str(s): _success(outcomes[w].get(s)) for s in seeds} for w in worlds},
            "disagreements": disagreements,
            "flagged": flagged,
            "media_seeds": sorted({s["seed"] for g in strips.values() for s in g}),
        },
        "charts": charts,
        "strips": strips,
    }


def _success(row: dict[str, Any] | None) -> float | None:
    return None if row is None else float(bool(row["success"]))


def _episode_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"success": bool(row["success"]), "max_progress": float(row["max_progress"]), "steps": int(row["steps"]),
            "flags": str(row.get("flags") or "")}  # fmt: skip


def _curve_series(curves: pd.DataFrame | None, name: str) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{label: [(steps, progress) per episode]}: the value model in imagination and on real frames, and the
    real world's ground truth."""
    if curves is None or not len(curves):
        return {}
    mine = curves[curves["policy"] == name]
    series: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for (world, _), episode in mine.groupby(["world", "seed"], sort=True):
        episode = episode.sort_values("step")
        steps = episode["step"].to_numpy()
        if world == IMAGINED:
            series.setdefault("value model, imagined", []).append((steps, episode["progress"].to_numpy()))
        elif world == REAL:
            series.setdefault("ground truth, real", []).append((steps, episode["progress"].to_numpy()))
            value = episode["value_progress"].to_numpy(dtype=float)
            if np.isfinite(value).all():
                series.setdefault("value model, real", []).append((steps, value))
    order = ("value model, imagined", "value model, real", "ground truth, real")
    return {k: series[k] for k in order if k in series}


# ----------------------------------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------------------------------


def build_report(run: StoredRun) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """(report.json numbers, run page pictures, [policy page contexts]) of a stored run."""
    summary = run.summary
    rows = policy_rows(summary)
    agreement = agreement_metrics(summary)
    confidence = summary.get("confidence") if isinstance(summary.get("confidence"), float) else 0.95
    planning = planning_rows(summary, confidence)
    threshold = (summary.get("agreement") or {}).get("success_threshold") if agreement else None
    charts: dict[str, str] = {}
    pairs = [r for r in rows if r["predicted"] and r["real"]]
    if pairs:
        value = {m["key"]: m["value"] for m in (agreement or {"metrics": []})["metrics"]}
        charts["scatter"] = plots.agreement_scatter(
            [r["name"] for r in pairs],
            [r["predicted"]["rate"] for r in pairs],
            [r["real"]["rate"] for r in pairs],
            pearson=value.get("pearson"),
            mmrv=value.get("mmrv"),
        )
    if rows:
        charts["intervals"] = plots.success_intervals(
            [r["name"] for r in rows],
            {
                "predicted": [_triple(r["predicted"]) for r in rows],
                "real": [_triple(r["real"]) for r in rows],
            },
        )
    if planning:
        charts["planning"] = plots.success_intervals(
            [r["name"] for r in planning], {"real success": [_triple(r) for r in planning]}
        )
    pages = [policy_detail(run, row, threshold) for row in rows]
    numbers = {
        "run": str(run.path.resolve()),
        "verb": run.verb,
        "status": run.status,
        "unfinished": run.status is not None and run.status != "finished",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "confidence": confidence,
        "policies": rows,
        "agreement": agreement,
        "planning": planning,
        "planning_settings": planning_settings(summary) if planning else {},
        "planning_timing": planning_timing(summary) if planning else [],
        "provenance": provenance_view(summary),
        "pages": {"index": INDEX_FILE, **{r["name"]: r["page"] for r in rows}},
        "policy_details": {p["numbers"]["name"]: p["numbers"] for p in pages},
    }
    return numbers, charts, pages


def _triple(rate: dict[str, Any] | None) -> tuple[float, float, float] | None:
    if rate is None:
        return None
    low = rate["low"] if rate["low"] is not None else rate["rate"]
    high = rate["high"] if rate["high"] is not None else rate["rate"]
    return (rate["rate"], low, high)


def write_report(run: StoredRun, out: Path) -> dict[str, Any]:
    """Render the pages and report.json of ``run`` into ``out``; returns report.json's content."""
    numbers, charts, pages = build_report(run)
    out.mkdir(parents=True, exist_ok=True)
    title = f"dojo-bench report: {run.path.resolve().name}"
    atomic_write_text(out / INDEX_FILE, render("index.html.j2", title=title, report=numbers, charts=charts))
    for page in pages:
        name = page["numbers"]["name"]
        atomic_write_text(
            out / policy_page(name),
            render(
                "policy.html.j2",
                title=f"{name}: {title}",
                report=numbers,
                policy=page["numbers"],
                charts=page["charts"],
                strips=page["strips"],
            ),  # fmt: skip
        )
    write_summary_json(numbers, out / REPORT_JSON)
    return numbers


def run_report(cfg: ReportConfig, overwrite: bool = False) -> dict[str, Any]:
    """``dojo-bench report``: read ``cfg.run`` and write the report into ``cfg.out``; returns report.json."""
    stored = read_run(cfg.run)  # before anything is written: a bad run dir leaves no half-made report
    run = prepare_run_dir(cfg.out, "report", asdict(cfg), overwrite)
    numbers = write_report(stored, run.path)
    run.finish({"index": str(run.path / INDEX_FILE), "pages": len(numbers["pages"])})
    return numbers


__all__ = ["ReportConfig", "run_report", "read_run", "build_report", "write_report", "policy_page", "ranks"]
