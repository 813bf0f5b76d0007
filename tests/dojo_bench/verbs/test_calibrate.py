"""`dojo-bench calibrate` (imagined success's threshold fitted on held-out episodes) and how `evaluate` picks its
threshold: given, calibrated for exactly these models, the shipped calibration, or the task's."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from dojo_bench.cli import main
from dojo_bench.core.errors import DojoError, UsageError
from dojo_bench.core.manifest import file_hashes
from dojo_bench.dojo.tasks import get_task
from dojo_bench.shipped import (
    CALIBRATION,
    SHIPPED_ROOT,
    ship_calibration,
    shipped_calibration,
    shipped_model,
)
from dojo_bench.verbs.inputs import REFERENCE_WORLD, success_threshold


def test_calibrate_fits_the_threshold_where_imagined_and_real_success_rates_meet(
    tiny_robot_run, tmp_path, capsys
):
    data, _, _ = tiny_robot_run
    out = tmp_path / "calibration"
    # The shipped default models (not given) on the tiny run's held-out episodes.
    assert (
        main(["calibrate", f"data=[{data / 'train'},{data / 'validation'}]", f"out={out}", "device=cpu"]) == 0
    )
    result = json.loads((out / "calibration.json").read_text())
    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    assert result["episodes"] == len(rows) > 0
    assert 0 < result["success_threshold"] <= 1
    real = sum(r["real_success"] == "True" for r in rows)
    reached = sum(float(r["imagined_max_progress"]) >= result["success_threshold"] for r in rows)
    assert reached == real  # as many replays reach the threshold as episodes succeeded (no ties here)
    assert result["world_model"]["files"] == file_hashes(Path(shipped_model("world_model")))
    assert "calibrated threshold" in capsys.readouterr().out

    # Shipping it beside a copy of the shipped models; the copy's manifest then guards the file.
    root = tmp_path / "shipped"
    shutil.copytree(SHIPPED_ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__", CALIBRATION))
    entry = ship_calibration(out, root)
    assert entry["success_threshold"] == result["success_threshold"]
    assert shipped_calibration(root)["success_threshold"] == result["success_threshold"]
    (root / CALIBRATION).write_text("{}")
    with pytest.raises(DojoError, match="does not match its manifest"):
        shipped_calibration(root)

    # evaluate refuses it for another world model before writing anything.
    other = tmp_path / "other_world_model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    refused = tmp_path / "refused"
    code = main(["evaluate", f"calibration={out}", f"world_model={other}", f"out={refused}", "seeds=1"])
    assert code != 0 and not refused.exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_calibrate_refuses_bad_input_before_writing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["calibrate", f"data={tmp_path / 'missing'}", f"out={out}", "device=cpu"]) != 0
    assert main(["calibrate", f"data={tmp_path}", f"out={out}", "episodes=0"]) == 2
    missing = tmp_path / "no_model"
    assert main(["calibrate", f"data={tmp_path}", f"world_model={missing}", f"out={out}", "device=cpu"]) != 0
    assert not out.exists()
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("dojo-bench calibrate: error:") for line in errors)
    assert f"world_model={missing} does not exist" in errors[-1]  # the verb's own key, not wm-eval's release=


def test_calibrate_refuses_data_without_the_dojos_ground_truth(tiny_robot_run, tmp_path, capsys):
    data, _, _ = tiny_robot_run
    root = tmp_path / "no_truth"
    shutil.copytree(data / "validation", root)
    info = json.loads((root / "meta" / "info.json").read_text())
    del info["features"]["gt.success"]
    (root / "meta" / "info.json").write_text(json.dumps(info))
    out = tmp_path / "out"
    assert main(["calibrate", f"data={root}", f"out={out}", "device=cpu"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "ground truth" in error and not out.exists()


def test_evaluate_threshold_comes_from_the_user_the_calibration_or_the_task(tmp_path):
    task = get_task("pusht_bench")
    world, value = tmp_path / "world", tmp_path / "value"
    for folder, text in ((world, "w"), (value, "v")):
        folder.mkdir()
        (folder / "model.safetensors").write_text(text)
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    record = {"success_threshold": 0.6, "world_model": {"files": file_hashes(world)},
              "value_model": {"files": file_hashes(value)}}  # fmt: skip
    (calibration / "calibration.json").write_text(json.dumps(record))

    assert success_threshold(0.7, None, task, str(world), str(value))[0] == 0.7
    assert success_threshold(None, str(calibration), task, str(world), str(value)) == (
        0.6,
        f"calibrated: {calibration}",
    )
    # Not the shipped models and no calibration: the task's own threshold.
    assert success_threshold(None, None, task, str(world), str(value))[0] == task.success_threshold
    assert success_threshold(None, None, task, REFERENCE_WORLD, str(value))[0] == task.success_threshold
    (value / "model.safetensors").write_text("another value model")
    with pytest.raises(DojoError, match="fitted for other models"):
        success_threshold(None, str(calibration), task, str(world), str(value))
    with pytest.raises(UsageError, match="needs the world_model="):
        success_threshold(None, str(calibration), task, None, None)  # size=tiny builds its own models
    with pytest.raises(UsageError, match="world_model=dojo"):
        success_threshold(None, str(calibration), task, REFERENCE_WORLD, str(value))
    (calibration / "calibration.json").write_text("{}")
    with pytest.raises(DojoError, match="not a calibration"):
        success_threshold(None, str(calibration), task, str(world), str(value))


def test_shipping_refuses_a_calibration_for_other_models_or_no_calibrate_run(tmp_path):
    root = tmp_path / "shipped"
    shutil.copytree(SHIPPED_ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__", CALIBRATION))
    with pytest.raises(DojoError, match="not the out dir"):
        ship_calibration(tmp_path, root)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "finished"}))
    other = {"files": {"model.safetensors": "0" * 64}}
    (run / CALIBRATION).write_text(
        json.dumps({"success_threshold": 0.5, "world_model": other, "value_model": other})
    )
    with pytest.raises(DojoError, match="fitted for another world_model"):
        ship_calibration(run, root)
    assert not (root / CALIBRATION).exists()
