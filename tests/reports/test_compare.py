"""`dojo-bench compare`: the pure comparison against hand-computed cases, the gate, and the CLI's exit codes."""

from __future__ import annotations

import json
import math

import pytest

from dojo_bench.cli import main
from dojo_bench.core.errors import UsageError
from dojo_bench.core.metrics import wilson_interval
from reports.compare import Gate, compare_summaries, newcombe_interval, to_markdown


def summary(**policies: tuple[int, int]) -> dict:
    """A summary with real success k of n per policy (Wilson intervals as ResultStore writes them)."""

    def block(k, n):
        low, high = wilson_interval(k, n)
        return {"success_rate": k / n, "ci_low": low, "ci_high": high, "n_episodes": n, "n_success": k}

    return {"policies": {p: {"real": block(*kn), "imagined": block(*kn)} for p, kn in policies.items()}}


def test_newcombe_interval_by_hand():
    base = {"rate": 0.5, "low": 0.3, "high": 0.7}
    new = {"rate": 0.8, "low": 0.6, "high": 0.9}
    low, high = newcombe_interval(base, new)
    assert low == pytest.approx(0.3 - math.sqrt(0.2**2 + 0.2**2))
    assert high == pytest.approx(0.3 + math.sqrt(0.1**2 + 0.2**2))
    assert newcombe_interval({"rate": 0.5, "low": None, "high": None}, new) == (None, None)


def test_rows_ranks_added_and_removed():
    result = compare_summaries(
        summary(a=(8, 10), b=(5, 10), c=(1, 10)), summary(a=(4, 10), b=(6, 10), d=(9, 10))
    )
    rows = {r["policy"]: r for r in result["rows"]}
    assert set(rows) == {"a", "b"} and result["added"] == ["d"] and result["removed"] == ["c"]
    assert rows["a"]["real"]["delta"] == pytest.approx(-0.4)
    assert (rows["a"]["real"]["base_rank"], rows["a"]["real"]["new_rank"]) == (1, 2)
    assert rows["b"]["real"]["rank_change"] == 1
    assert rows["a"]["real"]["delta_low"] < -0.4 < rows["a"]["real"]["delta_high"]
    assert not result["gate"]["passed"] and "a: real success dropped 40.0 pp" in result["gate"]["failures"][0]


def test_gate_options():
    base, new = summary(a=(8, 10), b=(5, 10)), summary(a=(7, 10), b=(6, 10))
    assert compare_summaries(base, new, Gate(max_drop=0.1))["gate"]["passed"]
    assert not compare_summaries(base, new, Gate(max_drop=0.05))["gate"]["passed"]
    # A 10-point drop on 10 episodes is well inside the noise: not significant.
    assert compare_summaries(base, new, Gate(max_drop=0.05, require_significant=True))["gate"]["passed"]
    swapped = compare_summaries(
        base, summary(a=(5, 10), b=(8, 10)), Gate(max_drop=None, fail_on_rank_change=True)
    )
    assert len(swapped["gate"]["failures"]) == 2
    removed = compare_summaries(base, summary(a=(8, 10)), Gate(fail_on_removed=True))
    assert removed["gate"]["failures"] == ["b: removed (in the base run, not in the new one)"]
    with pytest.raises(UsageError, match="metric"):
        Gate(metric="fps")


def test_markdown_escapes_html_names():
    text = to_markdown(
        compare_summaries(summary(a=(5, 10)), summary(**{"<b>x</b>|y": (5, 10), "a": (5, 10)}))
    )
    assert "<b>" not in text and "&lt;b&gt;x&lt;/b&gt;\\|y" in text and "regression gate passed" in text


def test_compare_exits_nonzero_on_a_planted_regression_and_zero_otherwise(
    regressed_runs, eval_run, tmp_path, capsys
):
    base, new = regressed_runs
    assert main(["compare", str(base), str(new), f"out={tmp_path / 'bad'}"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "regression gate failed" in err and len(err.splitlines()) == 1
    assert "regression gate FAILED" in (tmp_path / "bad" / "compare.md").read_text()
    result = json.loads((tmp_path / "bad" / "compare.json").read_text())
    assert not result["gate"]["passed"] and (tmp_path / "bad" / "compare.html").is_file()

    assert main(["compare", str(eval_run), str(new), f"out={tmp_path / 'same'}"]) == 0
    # max_drop=null and no other rule: a gate that checks nothing is refused, not passed
    assert main(["compare", str(base), str(new), f"out={tmp_path / 'off'}", "max_drop=null"]) == 2
    assert main(["compare", str(base), f"out={tmp_path / 'one'}"]) == 2
    assert main(["compare", str(base), str(new), f"out={tmp_path / 'x'}", "metric=fps"]) == 2


def _variant(eval_run, tmp_path, name, change):
    """A copy of the tiny run's summary.json alone, changed by ``change(summary)``."""
    summary = json.loads((eval_run / "summary.json").read_text())
    change(summary)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def _plan_kind(s):
    s["planning"] = {"num_proposals": 2}
    del s["agreement"]


def _no_common_policy(s):
    s["policies"] = {f"other-{k}": v for k, v in s["policies"].items()}
    s["agreement"]["policies"] = {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_plan_kind, "different kinds (evaluate vs plan)"),
        (_no_common_policy, "no policy has real success in both runs"),
        (lambda s: s["provenance"].update(seeds=[7, 8]), "different seeds"),
        (lambda s: s["provenance"]["config"].update(task="pusht"), "different tasks"),
        (lambda s: s.pop("agreement"), "neither an evaluate nor a plan run"),
    ],
)
def test_the_gate_fails_closed_on_runs_that_cannot_be_compared(eval_run, tmp_path, capsys, change, message):
    new = _variant(eval_run, tmp_path, "new", change)
    assert main(["compare", str(eval_run), str(new), f"out={tmp_path / 'out'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "cannot compare" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
