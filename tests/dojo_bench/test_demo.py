"""`dojo-bench demo size=tiny`: the whole chain runs, writes both reports, refuses a finished run, and resumes."""

import json
import shutil

from dojo_bench.cli import main
from dojo_bench.run_dir import RUN_FILE


def test_demo_runs_the_chain_and_resumes(tmp_path, capsys, one_thread):
    out = tmp_path / "demo"
    assert main(["demo", "size=tiny", f"out={out}", "device=cpu"]) == 0
    result = json.loads((out / "demo.json").read_text())
    for report in result["reports"].values():
        assert report.endswith("index.html") and (tmp_path / report).is_file()
    assert (out / "report" / "report.json").is_file() and (out / "plan" / "report" / "index.html").is_file()
    evaluation = json.loads((out / "evaluate" / "summary.json").read_text())
    assert len(evaluation["agreement"]["policies"]) == len(result["checkpoints"]) == 2
    planning = json.loads((out / "plan" / "summary.json").read_text())
    assert {"uniform", "best_of_n", "oracle"} <= set(planning["policies"])
    assert str(out / "report" / "index.html") in capsys.readouterr().out

    # A finished demo is refused without overwrite=true (one line, usage exit code).
    assert main(["demo", "size=tiny", f"out={out}", "device=cpu"]) == 2
    assert "overwrite=true" in capsys.readouterr().err

    # Interrupted after the evaluation: the rerun reuses every finished stage and redoes only what is missing.
    record = json.loads((out / RUN_FILE).read_text())
    (out / RUN_FILE).write_text(json.dumps({**record, "status": "running"}))
    shutil.rmtree(out / "plan")
    assert main(["demo", "size=tiny", f"out={out}", "device=cpu"]) == 0
    log = capsys.readouterr().out
    assert "policies: reusing the finished run" in log and "evaluate: reusing the finished run" in log
    assert f"plan -> {out / 'plan'}" in log
    assert (out / "plan" / "report" / "index.html").is_file()
