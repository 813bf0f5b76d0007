"""The cross-check command (``python -m dojo_bench.engine.lerobot_crosscheck``) on a tiny lerobot ACT.

lerobot's own loop against the engine is the slow test in tests/policies/test_lerobot_eval_crosscheck.py; here:
the real-success path, its JSON, and the one-line refusal of a folder that is not a checkpoint.
"""

from __future__ import annotations

import json

import pytest

from dojo_bench.engine.lerobot_crosscheck import main


def test_the_real_success_of_a_checkpoint_is_printed_and_written(tiny_lerobot_checkpoints, tmp_path, capsys):
    out = tmp_path / "crosscheck.json"
    checkpoint = str(tiny_lerobot_checkpoints["act"])
    main([checkpoint, "--seeds", "3", "--batch", "3", "--dojo-only", "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["seeds"] == [0, 2] and result["task"] == "pusht_bench"
    dojo = result["dojo_bench"]
    assert 0.0 <= dojo["low"] <= dojo["success"] <= dojo["high"]
    assert 0.0 < dojo["mean_max_reward"] <= 1.0
    assert "lerobot" not in result
    assert printed.startswith("dojo-bench: success ")


@pytest.mark.parametrize(
    "extra, message",
    [
        (None, "is not a pretrained_model folder"),
        (["--seeds", "0"], "--seeds and --batch must be positive"),
        (["--task", "pushq"], "unknown task 'pushq'"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(extra, message, tmp_path, capsys):
    if extra is not None:  # a folder that passes the checkpoint check, so the argument after it is what fails
        (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), *(extra or [])])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
