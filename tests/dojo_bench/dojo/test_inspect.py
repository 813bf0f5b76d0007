"""`dojo-bench inspect` on damaged datasets: one line naming what is missing, never advice to go online."""

from __future__ import annotations

import shutil

import pytest

from dojo_bench.cli import main


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("meta/tasks.parquet", "meta/tasks.parquet"),
        ("data", "data/*.parquet"),
        ("meta/episodes", "meta/episodes"),
    ],
)
def test_a_damaged_dataset_is_named_in_one_line(tiny_robot_run, tmp_path, capsys, remove, named):
    out, _, _ = tiny_robot_run
    root = tmp_path / "damaged"
    shutil.copytree(out / "train", root)
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert main(["inspect", str(root)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "damaged" in error and named in error
    assert "HF_HUB_OFFLINE" not in error and "huggingface" not in error
