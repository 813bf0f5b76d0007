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
