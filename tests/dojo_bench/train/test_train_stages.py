"""`dojo-bench train stage=value_model` and `stage=policy` through the CLI, with size=tiny."""

from __future__ import annotations

import json

import pytest
import torch

from dojo_bench.cli import main
from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def value_run(tmp_path_factory):
    """One self-sufficient tiny value-model run (records its own data); the policy tests reuse its data."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("stages") / "value"
    code = main(["train", "stage=value_model", "size=tiny", "device=cpu", f"out={out}"])
    return code, out


def test_tiny_value_model_stage_runs_alone(value_run, capsys):
    from dojo_bench.value.value_model import load_value_model

    code, out = value_run
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    summary = record["summary"]
    assert record["status"] == "finished" and summary["stage"] == "value_model" and summary["steps"] == 8
    assert summary["train_frames"] > 0 and summary["validation_frames"] > 0
    assert {"progress_mae", "success_accuracy", "mean_baseline_mae"} <= set(summary["validation"])
    model = load_value_model(out / "release")
    progress, success = model.score(torch.zeros(2, 96, 96, 3, dtype=torch.uint8))
    assert progress.shape == success.shape == (2,)
    training = json.loads((out / "release" / "config.json").read_text())["extra"]["training"]
    assert training["stage"] == "value_model" and "ground truth" in training["labels"]

    assert main(["train", "stage=value_model", "size=tiny", "device=cpu", f"out={out}"]) == 2  # finished
    assert "finished" in capsys.readouterr().err


def test_policy_stage_saves_loadable_checkpoints_at_save_steps(value_run, tmp_path, capsys):
    from policies.loading import load_policy

    _, value_out = value_run
    data = value_out / "data"
    out = tmp_path / "policy"
    args = ["train", "stage=policy", "size=tiny", "device=cpu", f"data={data}", f"out={out}"]
    assert main([*args, "save_steps=[2,4]", "max_episodes=1", "seed=3"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "trained the policy" in line

    summary = json.loads((out / "run.json").read_text())["summary"]
    assert summary["steps"] == 8 and summary["episodes"] == 1
    assert sorted(summary["checkpoints"], key=int) == ["2", "4", "8"]
    experts = json.loads((data / "train" / "meta" / "dojo.json").read_text())["episodes"]
    assert summary["train_frames"] == next(e["length"] for e in experts if e["policy"] == "expert")
    for step in (2, 4, 8):
        folder = out / "checkpoints" / f"step-{step}" / "pretrained_model"
        assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    loaded = load_policy(out / "checkpoints" / "step-4" / "pretrained_model")
    assert loaded.name == "step-4" and loaded.action_dim == 2
    action = loaded.select_action({OBS_IMAGE: torch.rand(1, 3, 96, 96), OBS_STATE: torch.full((1, 2), 256.0)})
    assert action.shape == (1, 2) and torch.isfinite(action).all()
    # the final step and the release are the same weights
    assert loaded.checkpoint_hash != load_policy(out / "release").checkpoint_hash
    assert (
        load_policy(out / "release").checkpoint_hash
        == load_policy(out / "checkpoints" / "step-8" / "pretrained_model").checkpoint_hash
    )


def test_policy_stage_ema_and_cosine_change_the_saved_weights(value_run, tmp_path):
    """ema_decay > 0 saves the averaged weights, not the raw ones; lr_schedule=cosine decays over max_steps."""
    from policies.loading import load_policy

    _, value_out = value_run
    base = ["train", "stage=policy", "size=tiny", "device=cpu", f"data={value_out / 'data'}", "seed=3"]
    assert main([*base, f"out={tmp_path / 'raw'}"]) == 0
    assert main([*base, f"out={tmp_path / 'ema'}", "policy.ema_decay=0.5", "policy.lr_schedule=cosine"]) == 0
    config = json.loads((tmp_path / "ema" / "release" / "config.json").read_text())
    assert config["ema_decay"] == 0.5 and config["lr_schedule"] == "cosine" and config["lr_decay_steps"] == 8
    raw, ema = (load_policy(tmp_path / name / "release") for name in ("raw", "ema"))
    assert raw.checkpoint_hash != ema.checkpoint_hash


def test_policy_stage_bad_input(value_run, tmp_path, capsys):
    _, value_out = value_run
    base = ["train", "stage=policy", "size=tiny", "device=cpu", f"data={value_out / 'data'}"]
    assert main([*base, f"out={tmp_path / 'a'}", "policy_episodes=teleop"]) == 2
    assert "teleop" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # refused before anything was written
    assert main([*base, f"out={tmp_path / 'b'}", "save_steps=[99]"]) == 2
    assert "save_steps" in capsys.readouterr().err
    assert main([*base, f"out={tmp_path / 'c'}", "max_episodes=0"]) == 2
    assert "max_episodes" in capsys.readouterr().err
    assert main([*base, f"out={tmp_path / 'd'}", "label_stride=0"]) == 2
    assert "label_stride must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    assert main([*base, f"out={tmp_path / 'e'}", "policy.encoder=resnet"]) == 2
    assert "bad policy settings: encoder must be one of" in capsys.readouterr().err


def test_an_interrupted_policy_run_resumes_from_its_last_checkpoint(value_run, tmp_path):
    """The policy stage trains through the shared Lightning fit: a run cut off after step 5 picks up at its
    step-4 checkpoint (weights, EMA, optimiser) and keeps the pretrained_model folder it had already saved."""
    from lightning.pytorch.callbacks import Callback

    from dojo_bench.train.config import TrainConfig
    from dojo_bench.train.run import run_train
    from dojo_bench.verbs.inputs import resumed_training
    from policies.loading import load_policy

    _, value_out = value_run
    out = tmp_path / "policy"
    tiny = {"channels": [4, 8, 8, 8], "hidden_dim": 16, "chunk_size": 4, "n_action_steps": 4}
    cfg = TrainConfig(stage="policy", out=str(out), data=str(value_out / "data"), preset="tiny", max_steps=8,
                      batch_size=2, checkpoint_every=4, save_steps=[4], device="cpu", num_workers=0, seed=3,
                      policy={**tiny, "lr_schedule": "constant", "ema_decay": 0.5})  # fmt: skip

    class Crash(Callback):
        def on_train_batch_end(self, trainer, *_args) -> None:
            if trainer.global_step == 5:
                raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run_train(cfg, callbacks=[Crash()])
    step4 = out / "checkpoints" / "step-4" / "pretrained_model"
    saved_before = load_policy(step4).checkpoint_hash
    summary = run_train(cfg)
    assert summary["resumed_from_step"] == 4 and summary["steps"] == 8
    assert summary["resume"] == {"resumed": True, "from_step": 4, "bit_identical": False}
    assert sorted(summary["checkpoints"], key=int) == ["4", "8"]
    assert load_policy(step4).checkpoint_hash == saved_before
    training = json.loads((out / "release" / "training.json").read_text())
    assert training["resume"] == summary["resume"]
    # the folder saved before the cut is bit-identical, the one after is not, and evaluate/plan say so
    step8 = out / "checkpoints" / "step-8" / "pretrained_model"
    flagged = resumed_training("dojo", value_out / "release", [str(step4), str(step8)])
    label = "policy/step-8"  # RUN/checkpoints/STEP/pretrained_model is labelled RUN/STEP
    assert list(flagged) == [f"policy {label}"] and flagged[f"policy {label}"]["from_step"] == 4
