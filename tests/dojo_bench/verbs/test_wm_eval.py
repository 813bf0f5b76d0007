"""`dojo-bench wm-eval` and `dojo-bench bench`: tiny CLI runs in-process, and bad input."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from dojo_bench.cli import main


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    """A self-sufficient tiny wm-eval run: trains a tiny model into out/model, evaluates its validation split."""
    out = tmp_path_factory.mktemp("wm_eval") / "run"
    assert main(["wm-eval", "size=tiny", f"out={out}", "device=cpu", "horizons=[1,4,12]"]) == 0
    return out


def test_tiny_wm_eval_writes_metrics_and_csv(tiny_eval):
    metrics = json.loads((tiny_eval / "metrics.json").read_text())
    assert metrics["release"] == str(tiny_eval / "model" / "release")
    ((name, result),) = metrics["datasets"].items()
    assert name == "data/validation" and result["episodes"] >= 1
    # the tiny episodes are long enough for 12 predicted frames: horizons 1, 4, 12
    assert list(result["horizons"]) == ["1", "4", "12"]
    for row in result["horizons"].values():
        assert set(row) == {"psnr", "ssim", "copy_psnr", "copy_ssim", "agent_px", "copy_agent_px", "tee_px",
                            "copy_tee_px", "tee_deg", "copy_tee_deg", "agent_missing", "tee_missing"}  # fmt: skip
        assert 0 < row["psnr"] <= 100 and -1 <= row["ssim"] <= 1
    with open(tiny_eval / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["horizon"] for r in rows] == ["1", "4", "12"]
    assert json.loads((tiny_eval / "run.json").read_text())["status"] == "finished"


def _edited_copy(src, dst, edit):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".frame_cache"))
    info_path = dst / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    edit(info["features"])
    info_path.write_text(json.dumps(info))
    return dst


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.pop("action"), "has no action"),
        (lambda f: f["observation.image"].update(shape=[64, 64, 3]), "takes 96x96x3 frames"),
        (lambda f: f["action"].update(shape=[3]), "action of dimension 2"),
    ],
    ids=["no-actions", "image-size", "action-dim"],
)
def test_wm_eval_refuses_mismatched_dataset(tiny_eval, tmp_path, capsys, edit, message):
    data = _edited_copy(tiny_eval / "model" / "data" / "validation", tmp_path / "bad", edit)
    out = tmp_path / "out"
    release = tiny_eval / "model" / "release"
    assert main(["wm-eval", f"release={release}", f"data={data}", f"out={out}", "device=cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()  # nothing half-written


def test_wm_eval_usage_errors(tmp_path, capsys):
    assert main(["wm-eval", f"out={tmp_path / 'o'}", f"data={tmp_path}"]) == 2
    assert "release=DIR is required" in capsys.readouterr().err
    assert main(["wm-eval", f"release={tmp_path / 'nope'}", f"data={tmp_path}", f"out={tmp_path / 'o'}"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_tiny_bench_writes_figures(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["bench", "size=tiny", f"out={out}", "device=cpu", "steps=1", "imagine_batches=[1,2]"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "samples/s" in printed and "MFU" in printed and "frames/s" in printed
    result = json.loads((out / "bench.json").read_text())
    train = result["train"]
    assert train["samples_per_second"] > 0 and train["gflop_per_step"] > 0 and 0 < train["mfu"]
    assert train["peak_source"].startswith("measured")
    assert set(result["imagine"]["batches"]) == {"1", "2"}
    assert main(["bench", "size=tiny", f"out={tmp_path / 'b2'}", "what=train", "peak_tflops=1.0"]) == 0
    result = json.loads((tmp_path / "b2" / "bench.json").read_text())
    assert "imagine" not in result and result["train"]["peak_source"] == "config peak_tflops"
    assert main(["bench", "size=tiny", f"out={tmp_path / 'b3'}", "what=nothing"]) == 2
    assert "unknown what" in capsys.readouterr().err


def test_value_model_agreement_by_hand():
    import numpy as np

    from dojo_bench.verbs.wm_eval import value_model_agreement

    # A "value model" reading the mean red channel; frames whose red level is the progress we want it to read.
    def frames(levels):
        levels = np.asarray(levels, dtype=np.float64)
        return np.broadcast_to(
            (levels * 255).astype(np.uint8)[..., None, None, None], (*levels.shape, 2, 2, 3)
        )

    def score(x):
        return x[..., 0].reshape(len(x), -1).mean(1) / 255.0

    truth = np.array([[0.2, 0.4], [0.6, 0.8]])
    imagined = frames([[0.3, 0.4], [0.6, 0.4]])  # off by 0.1 and 0.4 on two of four steps
    real = frames(truth)
    result = value_model_agreement(score, imagined, real, truth)
    assert result["frames"] == 4
    assert result["imagined_vs_truth_mae"] == pytest.approx(0.125, abs=0.005)
    assert result["real_vs_truth_mae"] == pytest.approx(0.0, abs=0.005)
    assert result["imagined_vs_real_mae"] == pytest.approx(0.125, abs=0.005)


def test_wm_eval_scores_imagined_frames_with_a_value_model(tiny_eval, tmp_path):
    from dojo_bench.value.value_model import ValueModel, ValueModelConfig, save_value_model

    value = save_value_model(
        tmp_path / "value", ValueModel(ValueModelConfig(channels=[4, 8, 8, 8], hidden_dim=8))
    )
    out = tmp_path / "with_value"
    args = [
        f"release={tiny_eval / 'model' / 'release'}",
        f"data={tiny_eval / 'model' / 'data'}",
        f"value_model={value}",
    ]
    assert main(["wm-eval", *args, f"out={out}", "device=cpu", "episodes=2", "sampler.num_steps=2"]) == 0
    result = json.loads((out / "metrics.json").read_text())["datasets"]["data/validation"]["value_model"]
    assert result["frames"] > 0
    for key in ("imagined_vs_truth_mae", "real_vs_truth_mae", "imagined_vs_real_mae"):
        assert 0 <= result[key] <= 1
