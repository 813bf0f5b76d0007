"""`dojo-bench report` on the session's tiny evaluation: pages, report.json, escaping, refusals."""

from __future__ import annotations

import json
import re

import pytest
from report_runs import XSS_NAME, copy_run

from dojo_bench.cli import main
from reports.report import planning_rows, policy_page, ranks


@pytest.fixture(scope="module")
def report_dir(eval_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    assert main(["report", str(eval_run), f"out={out}"]) == 0
    return out


def test_report_writes_a_page_per_policy_and_a_json_summary(report_dir, eval_run):
    summary = json.loads((eval_run / "summary.json").read_text())
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report["pages"]) == {"index", *summary["policies"]}
    for policy in summary["policies"]:
        assert (report_dir / policy_page(policy)).is_file()
    rows = {r["name"]: r for r in report["policies"]}
    for policy, row in summary["agreement"]["policies"].items():
        assert rows[policy]["predicted"]["rate"] == row["predicted"]  # the run's numbers, not recomputed
        assert rows[policy]["real"]["rate"] == row["real"]
    index = (report_dir / "index.html").read_text()
    assert "Predicted vs real success" in index and "Provenance" in index and "Planning" not in index
    assert summary["provenance"]["git_sha"] in index
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", index)  # nothing outside the file
    page = (report_dir / policy_page(sorted(summary["policies"])[0])).read_text()
    assert page.count("data:image/gif;base64,") == 2  # real | imagined strips of the 2 media seeds
    assert "Value-model curves" in page and "disagree" in page


def test_report_refuses_a_finished_report_and_a_dir_without_results(report_dir, eval_run, tmp_path, capsys):
    assert main(["report", str(eval_run), f"out={report_dir}"]) == 2
    assert main(["report", str(eval_run), f"out={report_dir}", "overwrite=true"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "summary.json" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "report").exists()


def test_policy_names_with_html_are_text(xss_run, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(xss_run), f"out={out}"]) == 0
    page = policy_page(XSS_NAME)
    assert re.fullmatch(r"policy-[A-Za-z0-9._-]+\.html", page) and (out / page).is_file()
    for html in [out / "index.html", *out.glob("policy-*.html")]:
        text = html.read_text()
        assert "<script>window.__xss" not in text and '<img src="https://example.com' not in text
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in text
        assert f'href="{page}"' in text
    report = json.loads((out / "report.json").read_text())
    assert XSS_NAME in report["pages"]


def test_ranks_and_planning_block_are_read_defensively():
    assert ranks([0.5, 0.9, 0.5, None]) == [2, 1, 2, None]
    assert planning_rows({}) is None
    rows = planning_rows({"planning": {"best_of_n": {"success_rate": 0.7, "n_episodes": 10, "n_success": 7},
                                       "uniform": {"rate": 0.4, "low": 0.2, "high": 0.6, "n": 10},
                                       "broken": "?"}})  # fmt: skip
    assert [r["name"] for r in rows] == ["best_of_n", "uniform"] and [r["rank"] for r in rows] == [1, 2]
    assert 0.39 < rows[0]["low"] < 0.7 < rows[0]["high"] < 0.92  # Wilson, filled in from 7 of 10
    listed = planning_rows({"planning": {"planners": [{"name": "cem", "real": {"success_rate": 0.5}}]}})
    assert listed[0]["name"] == "cem" and listed[0]["rate"] == 0.5
    # `dojo-bench plan`'s shape: rates per planner under policies, timings under planning.planners.
    plan = {
        "policies": {"best_of_n": {"real": {"success_rate": 0.6, "ci_low": 0.3, "ci_high": 0.8, "n_episodes": 10}},
                     "ckpt_a": {"real": {"success_rate": 0.4, "ci_low": 0.2, "ci_high": 0.7, "n_episodes": 10}}},
        "planning": {"num_proposals": 8, "planners": {"best_of_n": {"decisions": 5, "seconds_per_decision": 0.1}}},
    }  # fmt: skip
    rows = planning_rows(plan)
    assert [(r["name"], r["rank"], r["seconds_per_decision"]) for r in rows] == [
        ("best_of_n", 1, 0.1),
        ("ckpt_a", 2, None),
    ]


def test_index_shows_a_planning_comparison_when_the_run_has_one(eval_run, tmp_path):
    run = copy_run(eval_run, tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    summary["planning"] = {
        "best_of_n": {"success_rate": 0.7, "ci_low": 0.4, "ci_high": 0.9, "n_episodes": 10}
    }
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(run)]) == 0
    index = (run / "report" / "index.html").read_text()
    assert "Planning comparison" in index and "best_of_n" in index


def test_index_shows_the_planning_time_curve(eval_run, tmp_path):
    from reports.report import planning_timing

    timing = [
        {"planner": "best_of_n", "n": 4, "batch_size": 2, "device": "cpu", "seconds_per_decision": 0.4},
        {"planner": "best_of_n", "n": 1, "batch_size": 2, "device": "cpu", "seconds_per_decision": 0.1},
        {"planner": "oracle", "n": "bad", "device": "cpu"},  # skipped, not an error
    ]
    summary = {"planning": {"num_proposals": 4, "timing": timing}}
    assert [r["n"] for r in planning_timing(summary)] == [1, 4] and planning_timing({}) == []

    run = copy_run(eval_run, tmp_path / "run")
    stored = json.loads((run / "summary.json").read_text())
    stored["planning"] = {"best_of_n": {"success_rate": 0.5, "n_episodes": 2}, "timing": timing}
    (run / "summary.json").write_text(json.dumps(stored))
    assert main(["report", str(run)]) == 0
    index = (run / "report" / "index.html").read_text()
    assert "Planning time per decision against N" in index and ">0.4" in index.replace(" ", "")


def test_a_report_of_an_unfinished_run_says_so_on_every_page(eval_run, tmp_path, capsys):
    run = copy_run(eval_run, tmp_path / "run")
    record = json.loads((eval_run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "running"}))
    assert main(["report", str(run)]) == 0
    assert "not finished" in capsys.readouterr().out
    report = run / "report"
    assert json.loads((report / "report.json").read_text())["unfinished"] is True
    for page in report.glob("*.html"):
        assert "This run is not finished" in page.read_text(), page.name
