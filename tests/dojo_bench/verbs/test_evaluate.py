"""`dojo-bench evaluate` end to end with size=tiny: 2 policies x 2 episodes, real and imagined, on CPU."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from dojo_fakes import interrupt_run

from dojo_bench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny_run(tiny_evaluate_run):
    """The session's tiny evaluation (tests/conftest.py): 2 policies x 2 seeds x 2 worlds."""
    return tiny_evaluate_run


def _inputs(out):
    return json.loads((out / "summary.json").read_text())["agreement"]["inputs"]


def test_tiny_evaluate_writes_summary_and_episodes(tiny_run):
    code, out, _ = tiny_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"policies", "provenance", "agreement", "n_episodes"} <= set(summary)
    block = summary["agreement"]
    for key in ("pearson", "spearman", "kendall", "mmrv", "calibration_mae"):
        assert {"value", "low", "high"} <= set(block[key])
    assert block["real_source"] == "dojo" and block["n_policies"] == 2
    labels = sorted(block["policies"])
    assert len(labels) == 2
    for row in block["policies"].values():
        assert 0 <= row["predicted"] <= 1 and 0 <= row["real"] <= 1 and row["n_sim"] == row["n_real"] == 2
    assert set(summary["provenance"]["checkpoint_hashes"]) == set(labels)
    assert summary["provenance"]["seeds"] == [0, 1]

    frame = pd.read_parquet(out / "episodes.parquet")
    assert len(frame) == 8  # 2 policies x 2 seeds x 2 worlds
    assert set(frame["world"]) == {"real", "imagined"}
    assert sorted(set(frame["policy"])) == labels and set(frame["seed"]) == {0, 1}
    assert frame.groupby(["policy", "world"]).size().eq(2).all()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    loop = block["closed_loop"]  # policy + world model + value model, the imagined episodes of this run
    assert loop["imagined_frames"] >= 2 * 2 * 8 and loop["frames_per_second"] > 0
    assert block["calibration_mae_fitted"] == {"value": None}  # two policies: nothing to hold out


def test_leave_one_out_calibration_by_hand():
    from dojo_bench.verbs.evaluate import leave_one_out_calibration

    # Real success is exactly half the prediction: every held-out line is real = pred / 2, no error left.
    assert leave_one_out_calibration([0.2, 0.4, 0.6, 0.8], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(
        0.0, abs=1e-12
    )
    # Three points, one off the line: holding out (0.5, 0.9) fits real = pred through (0, 0) and (1, 1) -> 0.4;
    # holding out (0, 0): line through (0.5, 0.9), (1, 1) gives 0.8 at 0 -> 0.8; holding out (1, 1): line through
    # (0, 0), (0.5, 0.9) gives 1.8 at 1, clipped to 1 -> 0.
    assert leave_one_out_calibration([0.0, 0.5, 1.0], [0.0, 0.9, 1.0]) == pytest.approx((0.8 + 0.4 + 0.0) / 3)
    assert leave_one_out_calibration([0.3, 0.3, 0.3], [0.1, 0.5, 0.9]) is None  # a constant prediction
    assert leave_one_out_calibration([0.1, 0.2], [0.1, 0.2]) is None


def test_evaluate_resumes_without_redoing_finished_episodes(tiny_run, capsys):
    code, out, args = tiny_run
    assert code == 0
    assert main(args) == 2  # finished: refused without overwrite=true
    assert "finished" in capsys.readouterr().err
    # Simulate an interruption: the run is unfinished and one batch (one policy, one world, 2 episodes) is lost.
    interrupt_run(out, parts=4)
    assert main(args) == 0
    ran = json.loads((out / "summary.json").read_text())["agreement"]["episodes_run_now"]
    assert sum(ran.values()) == 2
    assert len(pd.read_parquet(out / "episodes.parquet")) == 8


def test_real_csv_replaces_real_rollouts_and_refuses_unknown_policies(tiny_run, tmp_path, capsys):
    code, out, _ = tiny_run
    assert code == 0
    inputs = _inputs(out)
    labels = list(inputs["policies"])
    policies = "[" + ",".join(inputs["policies"].values()) + "]"
    base = [
        "evaluate",
        "size=tiny",
        "device=cpu",
        f"policies={policies}",
        f"world_model={inputs['world_model']}",
        f"value_model={inputs['value_model']}",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"policy,success_rate\n{labels[0]},0.5\nnot_a_policy,0.2\n")
    assert main([*base, f"real_csv={bad}", f"out={tmp_path / 'bad'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert "not_a_policy" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()  # refused before anything was written

    good = tmp_path / "good.csv"
    good.write_text(f"policy,success_rate\n{labels[0]},0.25\n{labels[1]},0.75\n")
    assert main([*base, f"real_csv={good}", f"out={tmp_path / 'good'}", "seeds=1"]) == 0
    summary = json.loads((tmp_path / "good" / "summary.json").read_text())
    block = summary["agreement"]
    assert block["real_source"] == str(good)
    assert [block["policies"][p]["real"] for p in labels] == [0.25, 0.75]
    frame = pd.read_parquet(tmp_path / "good" / "episodes.parquet")
    assert set(frame["world"]) == {"imagined"} and len(frame) == 2


def test_policy_action_dim_mismatch_is_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    import dojo_bench.verbs.inputs as verb_inputs

    code, out, _ = tiny_run
    assert code == 0
    inputs = _inputs(out)
    load_env = verb_inputs.load_env

    def three_d_env(*args, **kwargs):
        env = load_env(*args, **kwargs)
        env.action_dim = 3  # a world model for another robot
        return env

    monkeypatch.setattr(verb_inputs, "load_env", three_d_env)
    args = [
        "evaluate",
        "device=cpu",
        f"policies=[{','.join(inputs['policies'].values())}]",
        f"world_model={inputs['world_model']}",
        f"value_model={inputs['value_model']}",
        f"out={tmp_path / 'o'}",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "2-d actions" in err and "3-d actions" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_the_state_space_reference_runs_the_simulator_scored_by_the_value_model(tiny_evaluate_run, tmp_path):
    import json

    from dojo_bench.cli import main

    _, run, _ = tiny_evaluate_run
    inputs = run / "inputs"
    policies = sorted(str(p) for p in inputs.rglob("pretrained_model"))
    value = next(str(p) for p in inputs.rglob("release") if "value" in str(p))
    out = tmp_path / "reference"
    args = ["evaluate", "size=tiny", "device=cpu", f"out={out}", f"policies=[{','.join(policies)}]",
            "world_model=dojo", f"value_model={value}", "seeds=3", "max_steps=8", "bootstrap=20"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    block = summary["agreement"]
    assert (
        block["inputs"]["world_model"] == "dojo"
        and block["closed_loop"]["sampler"]["method"] == "dojo_simulator"
    )
    assert block["paired"]["overall"]["n"] == 3 * len(policies)
    assert block["ceiling"]["seeds"] == 3
    assert 0 <= block["paired"]["overall"]["progress_gap"] <= 1


def test_the_reference_refuses_starts_and_real_csv_and_plan_refuses_it(tmp_path, capsys):
    from dojo_bench.cli import main

    out = tmp_path / "x"
    assert (
        main(
            ["evaluate", f"out={out}", "policies=[a]", "world_model=dojo", "value_model=v", "real_csv=r.csv"]
        )
        == 2
    )
    assert "world_model=dojo" in capsys.readouterr().err
    assert main(["plan", f"out={out}", "policies=[a]", "world_model=dojo", "value_model=v"]) == 2
    assert "state-space reference" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_uses_the_shipped_zoo_and_default_models_when_not_given(tmp_path, capsys, one_thread):
    import json

    from dojo_bench.cli import main
    from dojo_bench.shipped import shipped_model
    from policies.zoo import shipped_zoo

    out = tmp_path / "defaults"
    args = ["evaluate", f"out={out}", "seeds=2", "max_steps=8", "batch_size=2", "bootstrap=20", "device=cpu",
            "media_episodes=0"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith(
        "dojo-bench evaluate: using the shipped zoo ("
        f"{len(shipped_zoo().names)} checkpoints), the default world model"
    )
    block = json.loads((out / "summary.json").read_text())["agreement"]
    assert sorted(block["inputs"]["policies"].values()) == sorted(shipped_zoo().paths())
    assert block["inputs"]["world_model"] == shipped_model("world_model")
    assert "pearson" in printed and "mmrv" in printed and "sampling ceiling" in printed


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("confidence=1.5", "confidence must be in (0, 1)"),
        ("workers=-1", "workers must be an integer >= 0"),
        ("seed=-5", "seed must be an integer >= 0"),
    ],
)
def test_evaluate_refuses_bad_numbers_before_anything_is_written(tmp_path, capsys, arg, message):
    from dojo_bench.cli import main

    out = tmp_path / "run"
    assert main(["evaluate", "size=tiny", f"out={out}", arg]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_real_csv_naming_a_policy_twice_is_refused(tmp_path):
    from dojo_bench.core.errors import DojoError
    from dojo_bench.verbs.evaluate import read_real_csv

    path = tmp_path / "real.csv"
    path.write_text("policy,success_rate\na,0.5\nb,0.2\na,0.7\n")
    with pytest.raises(DojoError, match="names policy a twice"):
        read_real_csv(path, ["a", "b"])


def test_success_from_the_imagined_pose_and_its_refusals(tiny_evaluate_run, tmp_path, capsys):
    from world_model.checkpoint import save_world_model
    from world_model.pixel_model import PixelWorldModel, PixelWorldModelConfig

    _, run, _ = tiny_evaluate_run
    inputs = run / "inputs"
    policies = ",".join(sorted(str(p) for p in inputs.rglob("pretrained_model")))
    value = next(str(p) for p in inputs.rglob("release") if "value" in str(p))
    latent = next(str(p) for p in inputs.rglob("release") if "value" not in str(p))
    tiny = {
        "num_context_frames": 2,
        "channels": (8, 16),
        "cond_dim": 16,
        "state_hidden": 16,
        "object_hidden": 16,
    }
    save_world_model(
        tmp_path / "pose_wm", pixel=PixelWorldModel(PixelWorldModelConfig(**tiny, object_shape="tee"))
    )
    common = ["evaluate", "device=cpu", f"policies=[{policies}]", f"value_model={value}", "seeds=2",
              "max_steps=6", "bootstrap=20", "media_episodes=0", "success_from=pose"]  # fmt: skip
    assert main([*common, f"out={tmp_path / 'pose'}", f"world_model={tmp_path / 'pose_wm'}"]) == 0
    block = json.loads((tmp_path / "pose" / "summary.json").read_text())["agreement"]
    assert block["success_from"] == "pose" and block["success_threshold"] == 0.85  # pusht_bench's own
    assert "object-pose coverage >= 0.850" in capsys.readouterr().out
    assert main([*common, f"out={tmp_path / 'latent'}", f"world_model={latent}"]) == 1
    assert "carries the object's pose" in capsys.readouterr().err
    assert (
        main([*common, f"out={tmp_path / 'cal'}", f"world_model={tmp_path / 'pose_wm'}", "calibration=c"])
        == 2
    )
    assert "takes no calibration=" in capsys.readouterr().err
    assert main([*common[:-1], f"out={tmp_path / 'bad'}", "success_from=pixels"]) == 2
    assert "success_from must be one of value, pose" in capsys.readouterr().err


def test_other_policies_on_a_finished_run_dir_run_only_their_episodes(tiny_run, tmp_path, capsys):
    """A comparison grown by one checkpoint runs that checkpoint's episodes only and gives what a fresh run of
    both gives; a dropped policy leaves the summary; a label whose checkpoint changed is refused in one line."""
    code, out, _ = tiny_run
    assert code == 0
    inputs = _inputs(out)
    labels, paths = list(inputs["policies"]), list(inputs["policies"].values())
    grow = tmp_path / "grow"
    base = ["evaluate", "size=tiny", "device=cpu", f"world_model={inputs['world_model']}",
            f"value_model={inputs['value_model']}", f"out={grow}"]  # fmt: skip

    assert main([*base, f"policies=[{paths[0]}]"]) == 0
    assert main([*base, f"policies=[{paths[0]},{paths[1]}]"]) == 0  # finished, reopened with one more policy
    summary = json.loads((grow / "summary.json").read_text())
    assert summary["agreement"]["episodes_run_now"] == {"real": 2, "imagined": 2}  # the new policy's only
    assert sorted(summary["agreement"]["policies"]) == sorted(labels)
    pd.testing.assert_frame_equal(
        pd.read_parquet(grow / "episodes.parquet"), pd.read_parquet(out / "episodes.parquet")
    )

    assert main([*base, f"policies=[{paths[1]}]"]) == 0
    summary = json.loads((grow / "summary.json").read_text())
    assert sum(summary["agreement"]["episodes_run_now"].values()) == 0
    assert list(summary["policies"]) == [labels[1]] and summary["n_episodes"] == 4
    assert set(pd.read_parquet(grow / "curves.parquet")["policy"]) == {labels[1]}

    first = Path(paths[0])  # RUN/checkpoints/STEP/pretrained_model, labelled RUN/STEP
    swapped = tmp_path / "elsewhere" / first.relative_to(first.parents[3])  # same label, other weights
    shutil.copytree(paths[1], swapped)
    record = (grow / "run.json").read_text()
    capsys.readouterr()
    assert main([*base, f"policies=[{swapped}]"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and f"holds episodes of {labels[0]} from another checkpoint" in err[0]
    assert (grow / "run.json").read_text() == record  # refused before the run dir was touched


def test_the_same_models_moved_resume_the_run_and_other_weights_there_are_refused(tiny_run, tmp_path, capsys):
    """A run dir knows its world and value models by what they hold, not where they are (the shipped defaults of
    another checkout are the same models); other weights under the same path are another run."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    code, out, _ = tiny_run
    assert code == 0
    inputs = _inputs(out)
    paths = list(inputs["policies"].values())
    moved = tmp_path / "moved"
    for name in ("world_model", "value_model"):
        shutil.copytree(inputs[name], moved / name)
    run = tmp_path / "run"

    def evaluate(models: dict, policies: list) -> int:
        return main(["evaluate", "size=tiny", "device=cpu", f"world_model={models['world_model']}",
                     f"value_model={models['value_model']}", f"policies=[{','.join(policies)}]", f"out={run}"])  # fmt: skip

    assert evaluate(inputs, paths[:1]) == 0
    moved_models = {name: moved / name for name in ("world_model", "value_model")}
    assert evaluate(moved_models, paths) == 0
    ran = json.loads((run / "summary.json").read_text())["agreement"]["episodes_run_now"]
    assert ran == {"real": 2, "imagined": 2}  # only the added policy: the moved models are the same run

    weights = moved / "world_model" / "model.safetensors"
    with safe_open(str(weights), "pt") as handle:
        tensors, metadata = {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()
    first = next(key for key, tensor in tensors.items() if tensor.is_floating_point())
    tensors[first] = tensors[first] + 0.01
    save_file(tensors, str(weights), metadata=metadata)
    config = weights.with_name("config.json")  # a consistent release (it records its weights' hash)
    payload = json.loads(config.read_text())
    payload["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    config.write_text(json.dumps(payload))
    capsys.readouterr()
    assert evaluate(moved_models, paths) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "different config" in err[0]
