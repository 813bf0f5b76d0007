"""Run dirs for the report tests, made from the session's tiny evaluation (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_runs import XSS_NAME, copy_run


@pytest.fixture(scope="session")
def eval_run(tiny_evaluate_run) -> Path:
    code, out, _ = tiny_evaluate_run
    assert code == 0
    return out


@pytest.fixture(scope="session")
def xss_run(eval_run, tmp_path_factory) -> Path:
    """The tiny run with its first policy renamed to HTML + script."""
    first = sorted(json.loads((eval_run / "summary.json").read_text())["policies"])[0]
    return copy_run(eval_run, tmp_path_factory.mktemp("xss") / "run", {first: XSS_NAME})


@pytest.fixture(scope="session")
def regressed_runs(eval_run, tmp_path_factory) -> tuple[Path, Path]:
    """(base, new): copies of the tiny run where one policy's real success drops by 60 points (planted)."""
    dest = copy_run(eval_run, tmp_path_factory.mktemp("regressed") / "new")
    summary = json.loads((dest / "summary.json").read_text())
    base = json.loads((eval_run / "summary.json").read_text())
    first = sorted(summary["policies"])[0]
    # The base's rate may be 0: raise the base instead, so the new run is the drop of 60 points.
    summary["policies"][first]["real"].update(success_rate=0.0, ci_low=0.0, ci_high=0.66)
    base["policies"][first]["real"].update(success_rate=0.6, ci_low=0.2, ci_high=0.9)
    (dest / "summary.json").write_text(json.dumps(summary))
    base_dir = dest.parent / "base"
    copy_run(eval_run, base_dir)
    (base_dir / "summary.json").write_text(json.dumps(base))
    return base_dir, dest
