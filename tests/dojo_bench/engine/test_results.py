"""ResultStore: parquet rows, resume without redoing finished episodes, summary with Wilson intervals and provenance."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dojo_fakes import ScriptedPolicy, brightness, imagined

from dojo_bench.core.metrics import wilson_interval
from dojo_bench.engine.results import COLUMNS, EPISODES_FILE, SUMMARY_FILE, ResultStore, run_missing
from dojo_bench.engine.rollout import FLAG_NONFINITE_ACTION, EpisodeRecord, ValueScorer


def record(policy, seed, success, world="imagined", flags=()):
    return EpisodeRecord(policy, seed, world, success, 0.9 if success else 0.2, 10, list(flags))


def test_round_trip_and_done_keys(tmp_path):
    store = ResultStore(tmp_path / "eval")
    store.append([record("a", 0, True), record("a", 1, False)])
    store.append([record("b", 0, False, flags=[FLAG_NONFINITE_ACTION]), record("a", 0, True, world="real")])
    assert store.append([]) is None

    reopened = ResultStore(tmp_path / "eval")
    frame = reopened.read()
    assert tuple(frame.columns) == COLUMNS and len(frame) == 4
    assert reopened.done_keys() == {
        ("a", 0, "imagined"),
        ("a", 1, "imagined"),
        ("b", 0, "imagined"),
        ("a", 0, "real"),
    }
    flagged = frame[(frame.policy == "b")].iloc[0]
    assert flagged["flags"] == FLAG_NONFINITE_ACTION and not flagged["success"]
    assert not list((tmp_path / "eval" / "episodes").glob(".*tmp"))  # no temporary files left behind


def test_resume_runs_only_missing_episodes(tmp_path):
    scorer = ValueScorer(brightness, 0.5)
    store = ResultStore(tmp_path)
    assert run_missing(store, {"p": ScriptedPolicy()}, imagined(), [0, 1], max_steps=8, scorer=scorer) == 2

    loaded = []

    def factory():
        loaded.append(1)
        return ScriptedPolicy(name="whatever")

    store = ResultStore(tmp_path)  # as after an interruption
    count = run_missing(
        store, {"p": factory}, imagined(), [0, 1, 2, 3], max_steps=8, scorer=scorer, batch_size=1
    )
    assert count == 2 and loaded == [1]
    frame = store.read()
    assert sorted(frame.seed) == [0, 1, 2, 3] and set(frame.policy) == {"p"}
    assert len(list((tmp_path / "episodes").glob("part-*.parquet"))) == 3
    assert run_missing(store, {"p": factory}, imagined(), [0, 1, 2, 3], max_steps=8, scorer=scorer) == 0
    assert loaded == [1]  # nothing left: the policy is not even loaded


def test_summary_rates_intervals_and_provenance(tmp_path):
    store = ResultStore(tmp_path)
    store.append(
        [record("a", s, s < 3) for s in range(4)] + [record("b", 0, False, flags=[FLAG_NONFINITE_ACTION])]
    )
    summary = store.summary(config={"task": "pusht_bench"}, checkpoint_hashes={"a": "ab12"}, seeds=range(4))

    a = summary["policies"]["a"]["imagined"]
    assert a["n_episodes"] == 4 and a["success_rate"] == pytest.approx(0.75)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx(wilson_interval(3, 4))
    assert summary["policies"]["b"]["imagined"]["n_flagged"] == 1
    prov = summary["provenance"]
    assert {"config", "git_sha", "checkpoint_hashes", "seeds", "hardware", "wall_time_s"} <= set(prov)
    assert {"platform", "cpu_count", "cuda_device", "torch"} <= set(prov["hardware"])
    assert prov["seeds"] == [0, 1, 2, 3] and prov["checkpoint_hashes"] == {"a": "ab12"}
    assert prov["wall_time_s"] >= 0

    on_disk = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert on_disk["policies"]["a"]["imagined"]["n_success"] == 3
    assert len(pd.read_parquet(tmp_path / EPISODES_FILE)) == 5
