"""The CLI contract: one clear line and a non-zero exit on bad input, nothing half-written; tiny runs work."""

from __future__ import annotations

import json

import pytest

from dojo_bench.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert fragment in lines[0], lines[0]


def test_tiny_data_run_ends_with_one_line_saying_where(capsys, tmp_path):
    out = tmp_path / "data"
    code, stdout, _ = run_cli(capsys, "data", "size=tiny", f"out={out}", "kind=counterfactual")
    assert code == 0
    assert (
        stdout.strip().splitlines()[-1]
        == f"wrote counterfactual datasets (counterfactual) to {out.resolve()}"
    )
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "finished" and record["config"]["episodes"] == 4  # the tiny preset


def test_non_empty_out_without_overwrite_is_refused(capsys, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "data", "size=tiny", f"out={out}")
    assert code == 2
    assert_one_line_error(err, "is not empty and holds no dojo-bench run")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_finished_run_is_refused_then_redone_with_overwrite(capsys, tmp_path):
    out = tmp_path / "run"
    assert run_cli(capsys, "data", "size=tiny", "episodes=1", f"out={out}")[0] == 0
    code, _, err = run_cli(capsys, "data", "size=tiny", "episodes=1", f"out={out}")
    assert code == 2
    assert_one_line_error(err, "holds a finished data run: pass overwrite=true")
    code, _, err = run_cli(capsys, "data", "size=tiny", "episodes=2", f"out={out}")
    assert code == 2
    assert_one_line_error(err, "different config")
    assert run_cli(capsys, "data", "size=tiny", "episodes=2", f"out={out}", "overwrite=true")[0] == 0
    assert json.loads((out / "run.json").read_text())["config"]["episodes"] == 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["task=pushq"], "unknown task 'pushq'"),
        (["colour=red"], "unknown key 'colour'"),
        (["episodes=0"], "episodes must be a positive integer"),
        (["episodes=-5"], "episodes must be a positive integer"),
        (["size=huge"], "size"),
        (["episodes"], "expected key=value"),
    ],
)
def test_bad_input_gives_one_line_and_usage_exit_code(capsys, tmp_path, args, fragment):
    out = tmp_path / "never"
    code, _, err = run_cli(capsys, "data", f"out={out}", *args)
    assert code == 2
    assert_one_line_error(err, fragment)
    assert not out.exists()  # nothing half-written


def test_out_that_is_a_file_is_refused(capsys, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = run_cli(capsys, "data", "size=tiny", f"out={target}")
    assert code == 2
    assert_one_line_error(err, "is a file, not a directory")
    assert target.read_text() == "x"


def test_missing_out_and_unknown_verb(capsys):
    code, _, err = run_cli(capsys, "data", "size=tiny")
    assert code == 2
    assert_one_line_error(err, "out= is required")
    code, _, err = run_cli(capsys, "fly")
    assert code == 2
    assert_one_line_error(err, "unknown verb 'fly'")


def test_inspect_refuses_a_folder_that_is_not_a_lerobot_dataset(capsys, tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "a.txt").write_text("x")
    code, _, err = run_cli(capsys, "inspect", str(tmp_path / "stuff"))
    assert code == 1
    assert_one_line_error(err, "is not a LeRobot dataset")
    code, _, err = run_cli(capsys, "inspect", str(tmp_path / "absent"))
    assert code == 1
    assert_one_line_error(err, "does not exist")


def test_inspect_reads_a_data_run(capsys, tiny_robot_run):
    out, _, _ = tiny_robot_run
    code, stdout, _ = run_cli(capsys, "inspect", f"path={out}")
    assert code == 0
    assert stdout.strip().splitlines()[-1].startswith("loaded 2 dataset(s)")


def test_help_lists_verbs_and_keys(capsys):
    code, stdout, _ = run_cli(capsys, "--help")
    assert code == 0 and "data" in stdout and "inspect" in stdout
    code, stdout, _ = run_cli(capsys, "data", "--help")
    assert code == 0 and "episodes:" in stdout


@pytest.mark.parametrize("verb", ["evaluate", "plan", "demo", "zoo", "train", "data"])
def test_an_impossible_out_is_one_line_in_every_verb(tmp_path, capsys, verb):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for out in (blocker / "run", tmp_path / ("x" * 300)):
        code = main([verb, "size=tiny", f"out={out}"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "cannot be" in err, err


def test_sigterm_stops_a_run_like_ctrl_c_and_the_same_command_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "data"
    # Twelve one-episode shards of up to 150 steps: many seconds of work left when the first shard is done.
    command = [sys.executable, "-m", "dojo_bench", "data", "kind=robot", "policy=expert", "episodes=12",
               "max_steps=150", "workers=1", "shard_size=1", f"out={out}"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SDL_VIDEODRIVER": "dummy"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not list((out / ".work").rglob("DONE.json")) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].endswith("interrupted; run the same command again to resume")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    import json

    indices = [e["index"] for split in ("train", "validation") if (out / split).is_dir()
               for e in json.loads((out / split / "meta" / "dojo.json").read_text())["episodes"]]  # fmt: skip
    assert sorted(indices) == list(range(12))  # none lost, none recorded twice


def test_a_value_hydra_cannot_parse_gets_a_hint_to_quote_it(tmp_path, capsys):
    out = tmp_path / "run (1)"
    assert main(["evaluate", f"out={out}", "seeds=1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "must be quoted" in error and not out.exists()


def test_a_presets_save_steps_follow_a_smaller_max_steps_but_the_users_are_kept(tmp_path, capsys):
    from dojo_bench.cli import fit_preset_save_steps

    out = tmp_path / "train"
    assert main(["train", "size=tiny", "stage=policy", "max_steps=3", "save_steps=[4]", f"out={out}"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()

    preset = {"save_steps": [4], "max_steps": 3}
    assert fit_preset_save_steps(preset, user_set=False)["save_steps"] is None
    assert fit_preset_save_steps({"save_steps": [2, 4, 8], "max_steps": 5}, False)["save_steps"] == [2, 4]
    assert fit_preset_save_steps(preset, user_set=True)["save_steps"] == [
        4
    ]  # TrainConfig refuses it in one line
