"""`dojo-bench demo size=tiny`: the shipped zoo and default models ranked and planned with, both reports written;
`train=true`: the whole training chain runs, refuses a finished run, and resumes."""

import json
import shutil

from dojo_fakes import interrupt_run

from dojo_bench.cli import main


def test_demo_ranks_the_shipped_zoo_with_the_default_models(tmp_path, capsys, one_thread):
    from dojo_bench.shipped import shipped_model
    from policies.zoo import shipped_zoo

    out = tmp_path / "demo"
    assert main(["demo", "size=tiny", f"out={out}", "device=cpu"]) == 0
    log = capsys.readouterr().out
    assert "demo: ranking 2 shipped zoo checkpoints" in log and "demo: data" not in log
    evaluation = json.loads((out / "evaluate" / "summary.json").read_text())
    inputs = evaluation["agreement"]["inputs"]
    assert set(inputs["policies"].values()) <= set(shipped_zoo().paths())
    assert inputs["world_model"] == shipped_model("world_model")
    assert inputs["value_model"] == shipped_model("value_model")
    assert (out / "report" / "index.html").is_file() and (out / "plan" / "report" / "index.html").is_file()


def test_demo_train_runs_the_chain_and_resumes(tmp_path, capsys, one_thread):
    out = tmp_path / "demo"
    assert main(["demo", "size=tiny", "train=true", f"out={out}", "device=cpu"]) == 0
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
    assert main(["demo", "size=tiny", "train=true", f"out={out}", "device=cpu"]) == 2
    assert "overwrite=true" in capsys.readouterr().err

    # Interrupted after the evaluation: the rerun reuses every finished stage and redoes only what is missing.
    interrupt_run(out)
    shutil.rmtree(out / "plan")
    assert main(["demo", "size=tiny", "train=true", f"out={out}", "device=cpu"]) == 0
    log = capsys.readouterr().out
    assert "policies: reusing the finished run" in log and "evaluate: reusing the finished run" in log
    assert f"plan -> {out / 'plan'}" in log
    assert (out / "plan" / "report" / "index.html").is_file()


def test_demo_refuses_bad_settings_before_writing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "size=tiny", f"out={out}", "workers=-1"]) == 2
    assert "workers must be an integer >= 0" in capsys.readouterr().err
    assert main(["demo", "size=tiny", f"out={out}", "zoo_checkpoints=1"]) == 2
    assert "zoo_checkpoints must be 0 (all) or an integer >= 2" in capsys.readouterr().err
    assert main(["demo", "size=tiny", f"out={out}", "+plan.proposals=3"]) == 2
    assert "demo plan: unknown key(s) proposals" in capsys.readouterr().err
    assert not out.exists()
