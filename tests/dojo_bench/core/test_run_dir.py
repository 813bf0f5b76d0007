"""Run directories: a run started before a key was added resumes when the key holds its default, and only then."""

import pytest

from dojo_bench.core import run_dir
from dojo_bench.core.errors import UsageError
from dojo_bench.core.run_dir import prepare_run_dir


@pytest.fixture
def defaults(monkeypatch):
    monkeypatch.setattr(run_dir, "DEFAULTS", {"steps": 10, "model": {"width": 8, "shape": ""}, "added": 0})


def test_a_key_added_since_the_run_started_resumes_at_its_default_only(tmp_path, defaults):
    old = {"steps": 5, "model": {"width": 16}}
    prepare_run_dir(tmp_path / "run", "train", old, overwrite=False)
    same = {"steps": 5, "model": {"width": 16, "shape": ""}, "added": 0}
    assert prepare_run_dir(tmp_path / "run", "train", same, overwrite=False).resumed
    for changed in (
        {"steps": 5, "model": {"width": 16, "shape": "tee"}, "added": 0},  # a new key away from its default
        {"steps": 5, "model": {"width": 16, "shape": ""}, "added": 1},
        {"steps": 6, "model": {"width": 16, "shape": ""}, "added": 0},  # a key the run had, changed
    ):
        with pytest.raises(UsageError, match="different config"):
            prepare_run_dir(tmp_path / "run", "train", changed, overwrite=False)


def test_without_the_cli_defaults_the_hashes_must_match(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir, "DEFAULTS", None)
    prepare_run_dir(tmp_path / "run", "train", {"steps": 5}, overwrite=False)
    with pytest.raises(UsageError, match="different config"):
        prepare_run_dir(tmp_path / "run", "train", {"steps": 5, "added": 0}, overwrite=False)


def test_inputs_hashed_by_content_follow_the_models_not_their_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir, "DEFAULTS", None)
    run = tmp_path / "run"
    made = {"world_model": "/a/wm", "seeds": 5}
    prepare_run_dir(run, "evaluate", made, overwrite=False, inputs={"world_model": "h1"})
    # The same model elsewhere (another checkout's shipped default):
    moved = {"world_model": "/b/wm", "seeds": 5}
    assert prepare_run_dir(run, "evaluate", moved, overwrite=False, inputs={"world_model": "h1"}).resumed
    with pytest.raises(UsageError, match="different config"):  # other weights at the same path
        prepare_run_dir(run, "evaluate", moved, overwrite=False, inputs={"world_model": "h2"})
    with pytest.raises(UsageError, match="different config"):  # the same weights, another setting
        prepare_run_dir(run, "evaluate", {**moved, "seeds": 6}, overwrite=False, inputs={"world_model": "h1"})


def test_a_run_recorded_before_inputs_were_hashed_resumes_by_its_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir, "DEFAULTS", None)
    run = tmp_path / "run"
    config = {"world_model": "/a/wm", "seeds": 5}
    prepare_run_dir(run, "evaluate", config, overwrite=False)  # no inputs recorded
    assert prepare_run_dir(run, "evaluate", config, overwrite=False, inputs={"world_model": "h1"}).resumed
    assert prepare_run_dir(run, "evaluate", {**config, "world_model": "/b/wm"}, overwrite=False,
                           inputs={"world_model": "h1"}).resumed  # now recorded by content  # fmt: skip
