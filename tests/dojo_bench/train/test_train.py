"""`dojo-bench train`: the self-sufficient tiny run through the CLI, resume, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dojo_bench.cli import main
from dojo_bench.core.errors import DojoError
from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.run import run_train
from world_model.checkpoint import release_resume

TINY_TOKENIZER = {"latent_channels": 4, "base_channels": 8, "num_res_blocks": 0, "temporal_compression": 4}


def test_tiny_world_model_train_runs_alone(tmp_path, capsys):
    """`dojo-bench train stage=world_model size=tiny out=DIR` records data, trains a tokenizer, then the model."""
    out = tmp_path / "run"
    assert main(["train", "stage=world_model", "size=tiny", f"out={out}"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "trained the world_model" in line and str(out / "release") in line

    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "finished" and record["summary"]["steps"] == 8
    assert json.loads((out / "tokenizer" / "run.json").read_text())["status"] == "finished"
    for stage in (out, out / "tokenizer"):
        assert (stage / "release" / "model.safetensors").is_file()
        assert (stage / "checkpoints" / "last.ckpt").is_file()

    from world_model.imagined_env import ImaginedEnv

    env = ImaginedEnv.from_checkpoint(out / "release", expected_action_dim=2, expected_image_size=96)
    obs = env.reset(
        {OBS_IMAGE: np.zeros((1, 96, 96, 3), np.uint8), OBS_STATE: np.full((1, 2), 256, np.float32)}
    )
    obs, _ = env.step(np.full((1, 4, 2), 300.0, np.float32))
    assert obs[OBS_IMAGE].shape == (1, 96, 96, 3)

    # a finished run is not redone
    assert main(["train", "stage=world_model", "size=tiny", f"out={out}"]) == 2
    assert "finished train run" in capsys.readouterr().err


def tokenizer_config(data, out, **overrides) -> TrainConfig:
    settings = dict(
        stage="tokenizer",
        out=str(out),
        data=str(data),
        preset="tiny",
        max_steps=4,
        batch_size=1,
        clip_length=5,
        val_batches=0,
        checkpoint_every=2,
        tokenizer_model=TINY_TOKENIZER,
    )
    return TrainConfig(**{**settings, **overrides})


def crash_at_step_3(data, out):
    """A tokenizer run killed at step 3, after last.ckpt of step 2 (Lightning runs checkpoint callbacks last)."""
    import lightning as L

    class Crash(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 3:
                raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run_train(tokenizer_config(data, out), callbacks=[Crash()])


def test_interrupted_run_resumes_from_last_checkpoint(tiny_robot_run, tmp_path):
    data, _, _ = tiny_robot_run
    out = tmp_path / "tok"

    crash_at_step_3(data, out)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert (out / "checkpoints" / "last.ckpt").is_file()
    summary = run_train(tokenizer_config(data, out))
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 4
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    # Resumed training is not bit-identical to an uninterrupted run: the run and its release say so.
    assert summary["resume"] == {"resumed": True, "from_step": 2, "bit_identical": False}
    assert release_resume(out / "release") == summary["resume"]


def test_a_model_trained_from_a_resumed_release_is_not_bit_identical_either(tmp_path):
    from dojo_bench.train.fit import resume_record
    from dojo_bench.verbs.inputs import resumed_training

    resumed, clean = tmp_path / "resumed", tmp_path / "clean"
    for path, record in ((resumed, resume_record(2)), (clean, resume_record(0))):
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"extra": {"training": {"resume": record}}}))
    assert resume_record(0, [clean]) == {"resumed": False, "from_step": 0, "bit_identical": True}
    assert resume_record(0, [clean, resumed]) == {
        "resumed": False, "from_step": 0, "bit_identical": False, "inputs_not_bit_identical": [str(resumed)]
    }  # fmt: skip
    # evaluate and plan record the models of theirs that are not (a release without the record counts as clean)
    assert resumed_training(resumed, tmp_path / "old") == {
        "world_model": {"path": str(resumed), **resume_record(2)}
    }
    assert resumed_training("dojo", clean) == {}


def test_a_last_checkpoint_holding_objects_is_refused_not_unpickled(tiny_robot_run, tmp_path):
    import argparse

    import torch

    from dojo_bench.core.errors import DojoError

    data, _, _ = tiny_robot_run
    out = tmp_path / "tok"

    crash_at_step_3(data, out)
    last = out / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {}, "planted": argparse.Namespace(payload="not data")}, last)
    with pytest.raises(DojoError, match="weights-only loading refused it"):
        run_train(tokenizer_config(data, out))


def test_bad_inputs_give_one_line(tiny_robot_run, tmp_path, capsys):
    import torch

    from world_model.checkpoint import save_world_model
    from world_model.tokenizer import TokenizerConfig, VideoTokenizer

    data, _, _ = tiny_robot_run
    small = tmp_path / "tok64"
    save_world_model(small, tokenizer=VideoTokenizer(TokenizerConfig(image_size=64, **TINY_TOKENIZER)))
    out = tmp_path / "wm"
    code = main(
        ["train", "stage=world_model", "size=tiny", f"data={data}", f"tokenizer={small}", f"out={out}"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "built for 64x64 frames but the caller provides 96x96" in err
    assert not out.exists()  # nothing half-written

    assert main(["train", "stage=world_model", "size=tiny", f"data={tmp_path / 'nope'}", f"out={out}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "stage=world_model", f"out={out}"]) == 2
    assert "data=DIR is required" in capsys.readouterr().err
    assert main(["train", "stage=bogus", f"out={out}"]) == 2
    with pytest.raises(DojoError, match="not a LeRobot dataset"):
        run_train(tokenizer_config(tmp_path, out))
    del torch
