"""`dojo-bench plan` end to end with size=tiny: every planner, 2 episodes each, in the real dojo on CPU."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from dojo_fakes import interrupt_run

from dojo_bench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

PLANNERS = {"uniform", "best_of_n", "oracle", "cem"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One self-sufficient tiny planning run (builds its own data, policies, world model and value model)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("plan") / "run"
    args = ["plan", "size=tiny", "device=cpu", f"out={out}"]
    return main(args), out, args


def test_tiny_plan_writes_summary_and_episodes(tiny_run, capsys):
    code, out, _ = tiny_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    labels = set(summary["policies"])
    singles = {label for label in labels if label.startswith("single/")}
    assert len(singles) == 2 and labels == singles | PLANNERS
    for worlds in summary["policies"].values():
        row = worlds["real"]
        assert row["n_episodes"] == 2 and 0 <= row["ci_low"] <= row["success_rate"] <= row["ci_high"] <= 1
    planning = summary["planning"]
    assert planning["num_proposals"] == 4 and planning["executed_chunk"] > 0
    for name in PLANNERS:
        assert planning["planners"][name]["decisions"] > 0
        assert planning["planners"][name]["seconds_per_decision"] > 0
    curve = {(row["planner"], row["n"]) for row in planning["timing"]}
    assert curve == {(name, n) for name in PLANNERS for n in (1, 2)}
    assert all(row["seconds_per_decision"] > 0 and row["device"] == "cpu" for row in planning["timing"])
    assert summary["provenance"]["seeds"] == [0, 1]
    assert set(summary["provenance"]["checkpoint_hashes"]) == {s.removeprefix("single/") for s in singles}

    frame = pd.read_parquet(out / "episodes.parquet")
    assert len(frame) == 12  # (2 singles + 4 planners) x 2 seeds
    assert set(frame["world"]) == {"real"} and set(frame["seed"]) == {0, 1}
    assert (frame["steps"] <= 8).all()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_plan_resumes_without_redoing_finished_episodes(tiny_run, capsys):
    code, out, args = tiny_run
    assert code == 0
    assert main(args) == 2  # finished: refused without overwrite=true
    assert "finished" in capsys.readouterr().err
    # Simulate an interruption: the run is unfinished and its last batch (cem, 2 episodes) is lost.
    interrupt_run(out, parts=6)
    assert main(args) == 0
    ran = json.loads((out / "summary.json").read_text())["planning"]["episodes_run_now"]
    assert ran == {"singles": 0, "uniform": 0, "best_of_n": 0, "oracle": 0, "cem": 2}
    assert len(pd.read_parquet(out / "episodes.parquet")) == 12


def test_mismatched_ensemble_members_are_refused_in_one_line(tiny_run, tmp_path, capsys):
    """A member with 3-d actions (another robot's) next to 2-d ones: one error line, nothing written."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    from dojo_bench.core.keys import ACTION, OBS_STATE
    from policies.loading import save_pretrained_model
    from policies.pixel_policy import make_pixel_policy

    code, out, _ = tiny_run
    assert code == 0
    inputs = json.loads((out / "summary.json").read_text())["planning"]["inputs"]
    arena = {"min": torch.zeros(2), "max": torch.full((2,), 512.0)}
    three_d = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(3,))}
    wide = make_pixel_policy({OBS_STATE: dict(arena), ACTION: dict(arena)}, device="cpu", channels=(4, 8),
                             hidden_dim=8, chunk_size=4, n_action_steps=4, output_features=three_d)  # fmt: skip
    folder = save_pretrained_model(*wide, tmp_path / "wide" / "pretrained_model")
    first = next(iter(inputs["policies"].values()))
    target = tmp_path / "refused"
    args = ["plan", "size=tiny", "device=cpu", f"out={target}", f"policies=[{first},{folder}]",
            f"world_model={inputs['world_model']}", f"value_model={inputs['value_model']}"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "3-d actions" in err and "2-d actions" in err
    assert not target.exists()


def test_bad_planner_names_are_usage_errors(tmp_path, capsys):
    assert main(["plan", "size=tiny", f"out={tmp_path / 'x'}", "planners=[best_of_n,magic]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "magic" in err
    assert not (tmp_path / "x").exists()
