"""The ``out=DIR`` contract shared by every verb.

A run directory carries ``run.json``: the verb, its config, a hash of the parts of the config that change
results, and a status. An unfinished run of the same config is resumed; a finished run, a different config or
foreign files are refused unless ``overwrite=true``. Inputs given by path (models, checkpoints) can be hashed by
what they hold (``inputs``, recorded beside the config): the same models moved, or the shipped ones installed in
another checkout, are the same run; other weights at the same path are not.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dojo_bench.core.errors import UsageError
from dojo_bench.core.files import atomic_write_text

RUN_FILE = "run.json"
# The command line that started this process, set by the CLI (recorded in run.json; None from Python).
COMMAND: str | None = None
# The verb's default config, set by the CLI: a run started before a key was added resumes if the key holds its
# default (None from Python: the hashes must match).
DEFAULTS: dict[str, Any] | None = None
# Keys that do not change what a run produces: resuming with other values is allowed.
NEUTRAL_KEYS = frozenset({"out", "overwrite", "workers", "device"})


def config_hash(
    config: dict[str, Any],
    neutral: frozenset[str] | set[str] = frozenset(),
    inputs: dict[str, Any] | None = None,
) -> str:
    """A short hash of the keys of ``config`` that change results; a key in ``inputs`` is hashed by the value given
    there (what its path holds) instead of by its path."""
    relevant = {k: v for k, v in config.items() if k not in NEUTRAL_KEYS and k not in neutral}
    relevant.update({k: v for k, v in (inputs or {}).items() if k in relevant})
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def same_config(
    record: dict[str, Any],
    config: dict[str, Any],
    neutral: frozenset[str] | set[str],
    inputs: dict[str, Any] | None = None,
) -> bool:
    """Whether ``config`` (with ``inputs``, see ``config_hash``) is the run recorded in ``record``: the same hash,
    or the same once the keys that the recorded config lacks and that hold their defaults (``DEFAULTS``) are left
    out: keys added to the verb since the run started, which the code that started it ran as if at their defaults.
    The recorded config is hashed again with today's ``neutral`` keys, so a key made neutral later does not orphan
    older runs. A record without inputs (a run from before they were recorded) is compared by paths."""
    stored = record.get("config")
    stored_inputs = record.get("inputs")
    if not isinstance(stored_inputs, dict):
        stored_inputs = inputs = None
    recorded = {record.get("config_hash")}
    if isinstance(stored, dict):
        recorded.add(config_hash(stored, neutral, stored_inputs))  # keys made neutral since the run started
    if config_hash(config, neutral, inputs) in recorded:
        return True
    if not isinstance(stored, dict) or not isinstance(DEFAULTS, dict):
        return False
    return config_hash(_known(config, stored, DEFAULTS), neutral, inputs) in recorded


def _known(config: dict[str, Any], stored: dict[str, Any], defaults: Any) -> dict[str, Any]:
    """``config`` without the keys, at any depth, that ``stored`` lacks and whose value is their default."""
    defaults = defaults if isinstance(defaults, dict) else {}
    kept = {}
    for key, value in config.items():
        if key not in stored:
            if key in defaults and defaults[key] == value:
                continue
            kept[key] = value
        elif isinstance(value, dict) and isinstance(stored[key], dict):
            kept[key] = _known(value, stored[key], defaults.get(key))
        else:
            kept[key] = value
    return kept


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str))


@dataclass
class RunDir:
    path: Path
    verb: str
    config: dict[str, Any]
    resumed: bool

    def finish(self, summary: dict[str, Any]) -> None:
        record = json.loads((self.path / RUN_FILE).read_text())
        record.update(status="finished", finished_at=time.time(), summary=summary)
        write_json(self.path / RUN_FILE, record)


def prepare_run_dir(
    out: str | Path,
    verb: str,
    config: dict[str, Any],
    overwrite: bool,
    neutral: frozenset[str] = frozenset(),
    reopen_finished: bool = False,
    inputs: dict[str, Any] | None = None,
) -> RunDir:
    """Create, resume or refuse ``out`` for a run of ``verb`` with ``config`` (see module docstring).

    ``neutral``: more keys that do not change what the run's stages produce (resuming with other values is
    allowed). ``reopen_finished``: a finished run of the same config is reopened (a verb whose finished stages are
    reused and whose last stage is cheap to redo) instead of refused. ``inputs``: {key: hash of what the key's path
    holds} for path-valued keys, recorded and used in place of the paths (module docstring)."""
    path = Path(out).expanduser()
    digest = config_hash(config, neutral, inputs)
    try:
        path.exists()
    except OSError as error:  # e.g. a name too long for the file system
        raise UsageError(f"out={path} cannot be used: {error.strerror or error}") from None
    if path.exists() and not path.is_dir():
        raise UsageError(f"out={path} is a file, not a directory")
    if path.exists() and any(path.iterdir()):
        record_path = path / RUN_FILE
        record = read_record(record_path)
        if overwrite:
            shutil.rmtree(path)
        elif record is None:
            raise UsageError(
                f"out={path} is not empty and holds no dojo-bench run: choose another out= "
                "or pass overwrite=true"
            )
        elif record.get("verb") != verb or not same_config(record, config, neutral, inputs):
            raise UsageError(
                f"out={path} holds a {record.get('verb')} run with a different config: choose another out= "
                "or pass overwrite=true"
            )
        elif record.get("status") == "finished" and not reopen_finished:
            raise UsageError(f"out={path} holds a finished {verb} run: pass overwrite=true to redo it")
        else:
            record.update(config=config, config_hash=digest, inputs=inputs, status="running")
            write_json(record_path, record)
            return RunDir(path, verb, config, resumed=True)
    record = {
        "verb": verb,
        "config": config,
        "config_hash": digest,
        "inputs": inputs,
        "status": "running",
        "started_at": time.time(),
        "command": COMMAND,
    }
    try:
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / RUN_FILE, record)
    except (
        OSError
    ) as error:  # unwritable, too long, a file in the way, a full disk: one line, not a traceback
        raise UsageError(f"out={path} cannot be written: {error.strerror or error}") from None
    return RunDir(path, verb, config, resumed=False)


def is_finished(path: str | Path) -> bool:
    """Whether ``path`` holds a finished run (its run.json says so): a stage that can be reused as it is."""
    record = read_record(Path(path) / RUN_FILE)
    return record is not None and record.get("status") == "finished"


def read_record(path: Path) -> dict[str, Any] | None:
    """The ``run.json`` record at ``path``, None when there is none (or it is not a dojo-bench run's, or the path
    cannot be a file: a name too long; the caller's own writing says why in one line)."""
    try:
        if not path.is_file():
            return None
    except OSError:
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "verb" in record else None


class Stages:
    """A chain of run directories (``demo``, ``zoo``): each stage's finished run is reused, an unfinished or
    missing one is (re)run; ``seconds`` keeps the time of the stages run now.

        stages = Stages("zoo", log=print)
        data = stages("data/expert", out / "data" / "expert", lambda path: run_data(...))
    """

    def __init__(self, verb: str, log=print) -> None:
        self.verb, self.log = verb, log
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, path: Path, work) -> Path:
        if is_finished(path):
            self.log(f"{self.verb}: {name}: reusing the finished run in {path}")
            return path
        self.log(f"{self.verb}: {name} -> {path}")
        started = time.perf_counter()
        work(path)
        self.seconds[name] = round(time.perf_counter() - started, 1)
        return path
