"""`dojo-bench zoo`: the spread selection, the tiny build end to end, resume without redoing finished stages,
fp16 copies that load through the users' loader, and bad settings refused before anything is written."""

import json

import pandas as pd
import pytest
from dojo_fakes import interrupt_run
from safetensors.torch import load_file

from dojo_bench.cli import main
from dojo_bench.core.errors import DojoError
from dojo_bench.core.manifest import sha256_of_file
from dojo_bench.verbs.zoo import select_spread
from policies.loading import load_policy
from policies.zoo import shipped_zoo

# -- select_spread ---------------------------------------------------------------------------------------------


def test_select_spread_takes_the_ends_then_the_widest_gaps():
    rates = {"a": 0.05, "b": 0.10, "c": 0.30, "d": 0.32, "e": 0.50, "f": 0.88, "g": 0.95}
    runs = dict.fromkeys(rates, "r0")
    # a and g lie outside [0.1, 0.9]; b and f are the ends; e splits the widest gap, then c (0.20 from b and e).
    assert select_spread(rates, runs, 4, 0.10, 0.90, 0.05) == ["b", "c", "e", "f"]
    # d is only 0.02 from c: chosen only once nothing respects the gap and more are asked for.
    assert select_spread(rates, runs, 4, 0.10, 0.90, 0.05) == ["b", "c", "e", "f"]
    assert select_spread(rates, runs, 10, 0.10, 0.90, 0.05) == ["b", "c", "d", "e", "f"]
    assert select_spread(rates, runs, 10, 0.10, 0.90, 0.0) == ["b", "c", "d", "e", "f"]
    assert select_spread(rates, runs, 1, 0.10, 0.90, 0.05) == ["b"]
    assert select_spread(rates, runs, 3, 0.96, 1.0, 0.05) == []


def test_select_spread_prefers_an_unrepresented_run_among_near_ties():
    rates = {"x": 0.1, "y": 0.9, "p": 0.50, "q": 0.52}
    # p is slightly farther from the ends, but q brings a second run: within half a gap, q wins.
    assert select_spread(
        rates, {"x": "r0", "y": "r0", "p": "r0", "q": "r1"}, 3, 0.1, 0.9, 0.05, min_runs=2
    ) == ["x", "q", "y"]
    assert select_spread(
        rates, {"x": "r0", "y": "r0", "p": "r0", "q": "r1"}, 3, 0.1, 0.9, 0.05, min_runs=1
    ) == ["x", "p", "y"]


# -- the tiny build --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "zoo"
    assert main(["zoo", "size=tiny", f"out={out}", "device=cpu"]) == 0
    return out


def test_tiny_zoo_builds_a_manifest_whose_files_match(tiny_zoo):
    zoo = shipped_zoo(tiny_zoo / "zoo")
    assert len(zoo.names) == 3
    made = {zoo.manifest["checkpoints"][i]["made"]["run"] for i in range(3)}
    assert made == {"round0", "round1"}  # min_runs=2 in the tiny preset
    frame = pd.read_parquet(tiny_zoo / "real" / "episodes.parquet")
    for entry, path in zip(zoo.manifest["checkpoints"], zoo.paths(), strict=True):
        assert entry["files"] == {
            f: sha256_of_file(tiny_zoo / "zoo" / entry["name"] / f) for f in entry["files"]
        }
        assert {"config.json", "model.safetensors"} <= set(entry["files"])
        # fp16 weights on disk, float32 parameters after the users' loader.
        assert entry["dtype"] == "float16"
        weights = load_file(f"{path}/model.safetensors")
        assert all(str(t.dtype) == "torch.float16" for t in weights.values() if t.is_floating_point())
        policy = load_policy(path, device="cpu")
        assert all(
            p.dtype.is_floating_point and str(p.dtype) == "torch.float32" for p in policy.policy.parameters()
        )
        # The manifest's figures are the stored episodes' figures, fp32 and fp16 alike.
        for label, key in ((entry["name"], "fp32"), (entry["name"] + "@fp16", "fp16")):
            rows = frame[frame["policy"] == label]
            assert len(rows) == entry["real"][key]["n"] == 2
            assert rows["success"].mean() == pytest.approx(entry["real"][key]["rate"])


def test_zoo_ship_copies_the_zoo_and_a_default_model_then_lists_them(tiny_zoo, capsys, monkeypatch, tmp_path):
    import dojo_bench.shipped
    import policies.zoo

    monkeypatch.setattr(policies.zoo, "ZOO_ROOT", tmp_path / "zoo")
    monkeypatch.setattr(dojo_bench.shipped, "SHIPPED_ROOT", tmp_path / "shipped")
    (tmp_path / "zoo").mkdir()
    train = tmp_path / "pixel"
    assert main(["train", "stage=pixel_world_model", "size=tiny", f"data={tiny_zoo / 'data' / 'expert'}",
                 "clip_length=4", f"out={train}", "device=cpu"]) == 0  # fmt: skip
    assert main(["zoo", "ship", f"zoo_dir={tiny_zoo / 'zoo'}", f"world_model={train / 'release'}"]) == 0
    assert shipped_zoo().paths() and len(shipped_zoo().names) == 3
    entry = dojo_bench.shipped.shipped_models()[0]
    assert entry["name"] == "world_model" and entry["made"]["stage"] == "pixel_world_model"
    assert entry["made"]["command"].startswith("dojo-bench train stage=pixel_world_model")
    assert dojo_bench.shipped.shipped_model("world_model") == str(tmp_path / "shipped" / "world_model")
    capsys.readouterr()
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "round0-step00003" in out and "3 shipped checkpoints" in out and "default world_model" in out
    # Nothing to ship is a usage error.
    assert main(["zoo", "ship"]) == 2
    assert "zoo ship needs" in capsys.readouterr().err


def test_a_damaged_or_missing_shipped_file_is_one_line_naming_it(tiny_zoo, tmp_path, capsys, monkeypatch):
    import shutil

    import policies.zoo

    root = tmp_path / "zoo"
    shutil.copytree(tiny_zoo / "zoo", root)
    name = shipped_zoo(root).names[0]
    weights = root / name / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(DojoError, match=f"{weights}.*does not match its manifest hash"):
        shipped_zoo(root).paths()
    weights.unlink()
    with pytest.raises(DojoError, match=f"{weights} is missing"):
        shipped_zoo(root).paths([name])
    (root / "manifest.json").unlink()
    monkeypatch.setattr(policies.zoo, "ZOO_ROOT", root)
    assert main(["zoo", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(root / "manifest.json") in err


def test_interrupted_zoo_resumes_without_redoing_finished_stages(tiny_zoo, capsys, tmp_path):
    import shutil

    out = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, out)
    before = json.loads((out / "zoo" / "manifest.json").read_text())
    policy_mtime = (out / "policies" / "round1" / "run.json").stat().st_mtime_ns
    # Killed while measuring real success: the zoo is unfinished and the last batch of episodes is lost.
    interrupt_run(out)
    parts = sorted((out / "real" / "episodes").glob("part-*.parquet"))
    parts[-1].unlink()
    shutil.rmtree(out / "zoo")
    assert main(["zoo", "size=tiny", f"out={out}", "device=cpu"]) == 0
    log = capsys.readouterr().out
    for stage in ("data/expert", "policies/round0", "data/dagger1", "policies/round1"):
        assert f"zoo: {stage}: reusing the finished run" in log
    assert (out / "policies" / "round1" / "run.json").stat().st_mtime_ns == policy_mtime
    frame = pd.read_parquet(out / "real" / "episodes.parquet")
    assert not frame.duplicated(["policy", "seed", "world"]).any()
    after = json.loads((out / "zoo" / "manifest.json").read_text())
    assert [e["files"] for e in after["checkpoints"]] == [e["files"] for e in before["checkpoints"]]
    assert [e["real"] for e in after["checkpoints"]] == [e["real"] for e in before["checkpoints"]]


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["low=0.9", "high=0.1"], "need 0 <= low < high <= 1"),
        (["count=0"], "count must be a positive integer"),
        (["real_seeds=-3"], "real_seeds must be a positive integer"),
        (["+train.epochs=3"], "zoo train: unknown key(s) epochs"),
        (["rounds=[]"], "rounds= must list at least one training round"),
        (["task=nope"], "nope"),
    ],
)
def test_bad_zoo_settings_are_refused_before_writing(tmp_path, capsys, args, message):
    out = tmp_path / "zoo"
    assert main(["zoo", "size=tiny", f"out={out}", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_finished_zoo_reselects_with_new_selection_settings_without_rebuilding(tiny_zoo, capsys, tmp_path):
    import shutil

    out = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, out)
    parts = len(list((out / "real" / "episodes").glob("part-*.parquet")))
    assert main(["zoo", "size=tiny", f"out={out}", "device=cpu", "count=2"]) == 0
    log = capsys.readouterr().out
    assert "policies/round1: reusing the finished run" in log
    assert len(json.loads((out / "zoo" / "manifest.json").read_text())["checkpoints"]) == 2
    assert len(list((out / "real" / "episodes").glob("part-*.parquet"))) == parts  # nothing measured again
    # A build setting is not a selection setting: another config, refused.
    assert main(["zoo", "size=tiny", f"out={out}", "device=cpu", "real_seeds=3"]) == 2
    assert "different config" in capsys.readouterr().err


def test_zoo_build_needs_out(capsys):
    assert main(["zoo"]) == 2
    assert "out=DIR is required" in capsys.readouterr().err


def test_zoo_unknown_action(capsys):
    assert main(["zoo", "shuffle"]) == 2
    assert "unknown zoo action 'shuffle'" in capsys.readouterr().err


def test_select_spread_prefers_the_listed_labels_among_near_ties():
    rates = {"x": 0.1, "y": 0.9, "p": 0.50, "q": 0.52}
    runs = dict.fromkeys(rates, "r0")
    assert select_spread(rates, runs, 3, 0.1, 0.9, 0.05) == ["x", "p", "y"]
    assert select_spread(rates, runs, 3, 0.1, 0.9, 0.05, prefer={"q"}) == ["x", "q", "y"]


def test_select_spread_takes_a_preferred_end_within_half_a_gap():
    rates = {"lo": 0.10, "mid": 0.5, "top": 0.87, "top2": 0.86, "far": 0.80}
    runs = dict.fromkeys(rates, "r0")
    assert select_spread(rates, runs, 3, 0.1, 0.9, 0.05) == ["lo", "mid", "top"]
    assert select_spread(rates, runs, 3, 0.1, 0.9, 0.05, prefer={"top2"}) == ["lo", "mid", "top2"]
    assert select_spread(rates, runs, 3, 0.1, 0.9, 0.05, prefer={"far"}) == [
        "lo",
        "mid",
        "top",
    ]  # 7 points off
