"""The shipped default models: the world model and the value model that ``evaluate``, ``plan`` and ``demo`` use
when ``world_model=`` / ``value_model=`` are not given.

Each is a release folder (safetensors + JSON) beside ``manifest.json``, whose entries give the files' sha256, the
data, command, wall time and hardware that made them, and what they measured. ``dojo-bench zoo ship
world_model=DIR value_model=DIR`` copies trained releases here and writes their entries; ``dojo-bench zoo list``
prints them with the zoo. ``calibration.json`` (``dojo-bench calibrate`` fitted for exactly these two models, by
their hashes) gives evaluate's imagined-success threshold when both defaults are used; ``zoo ship calibration=DIR``
ships one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from dojo_bench.core.devices import hardware
from dojo_bench.core.errors import DojoError
from dojo_bench.core.manifest import MANIFEST_FILE, file_hashes, read_manifest, sha256_of_file, verify_entry
from dojo_bench.core.run_dir import RUN_FILE, write_json

SHIPPED_ROOT = Path(__file__).resolve().parent
MODELS = ("world_model", "value_model")
CALIBRATION = "calibration.json"


def shipped_model(name: str, root: str | Path | None = None) -> str:
    """The verified release folder of the shipped ``name`` (world_model or value_model)."""
    root = Path(root) if root is not None else SHIPPED_ROOT
    entries = {e.get("name"): e for e in read_manifest(root, "default models").get("models", [])}
    if name not in entries:
        raise DojoError(f"no shipped default {name} in {root / MANIFEST_FILE}; pass {name}=DIR")
    return str(verify_entry(root / name, entries[name]["files"], f"default {name}"))


def shipped_models(root: str | Path | None = None) -> list[dict[str, Any]]:
    root = Path(root) if root is not None else SHIPPED_ROOT
    return list(read_manifest(root, "default models").get("models", []))


def ship_model(
    name: str, release: str | Path, root: str | Path | None = None, measured: dict | None = None
) -> dict:
    """Copy a trained ``release`` folder into the shipped defaults as ``name`` and write its manifest entry from the
    training run that made it (the run directory above ``release``: its run.json has the config and summary)."""
    if name not in MODELS:
        raise DojoError(f"unknown default model {name!r}; choose one of {', '.join(MODELS)}")
    release = Path(release).expanduser().resolve()
    record_path = release.parent / RUN_FILE
    if not (release / "config.json").is_file() or not record_path.is_file():
        raise DojoError(f"{release} is not the release/ folder of a finished `dojo-bench train` run")
    record = json.loads(record_path.read_text())
    if record.get("status") != "finished":
        raise DojoError(f"{release.parent} is an unfinished training run; finish it before shipping")
    root = Path(root) if root is not None else SHIPPED_ROOT
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(release, target)
    config, summary = record["config"], record.get("summary", {})
    entry = {
        "name": name,
        "files": file_hashes(target),
        "made": {
            "stage": config.get("stage"),
            "data": config.get("data"),
            "steps": summary.get("steps"),
            "wall_time_s": summary.get("seconds"),
            "command": record.get("command"),  # the CLI line that started the run (core/run_dir.py)
            "hardware": hardware(),
        },
        "measured": measured or {},
    }
    manifest = read_manifest(root, "default models") if (root / MANIFEST_FILE).is_file() else {"models": []}
    manifest["models"] = [e for e in manifest.get("models", []) if e.get("name") != name] + [entry]
    manifest["models"].sort(key=lambda e: MODELS.index(e["name"]))
    write_json(root / MANIFEST_FILE, manifest)
    return entry


def shipped_calibration(root: str | Path | None = None) -> dict[str, Any] | None:
    """The shipped calibration (verified against the manifest), or None when none is shipped."""
    root = Path(root) if root is not None else SHIPPED_ROOT
    entry = read_manifest(root, "default models").get("calibration")
    if entry is None:
        return None
    verify_entry(root, entry["files"], "calibration")
    return json.loads((root / CALIBRATION).read_text())


def ship_calibration(run: str | Path, root: str | Path | None = None) -> dict:
    """Copy the calibration of a finished ``dojo-bench calibrate`` run into the shipped defaults; it must have been
    fitted for the shipped world and value models (ship them first)."""
    run = Path(run).expanduser().resolve()
    source, record_path = run / CALIBRATION, run / RUN_FILE
    if not source.is_file() or not record_path.is_file():
        raise DojoError(f"calibration={run} is not the out dir of a `dojo-bench calibrate` run")
    record, calibration = json.loads(record_path.read_text()), json.loads(source.read_text())
    if record.get("status") != "finished":
        raise DojoError(f"{run} is an unfinished calibrate run; finish it before shipping")
    root = Path(root) if root is not None else SHIPPED_ROOT
    for name in MODELS:
        if calibration.get(name, {}).get("files") != file_hashes(Path(shipped_model(name, root))):
            raise DojoError(
                f"{run} was fitted for another {name} than the shipped one; calibrate the shipped models"
            )
    shutil.copy2(source, root / CALIBRATION)
    entry = {
        "files": {CALIBRATION: sha256_of_file(root / CALIBRATION)},
        "made": {"command": record.get("command"), "data": calibration.get("data"), "hardware": hardware()},
        "success_threshold": calibration["success_threshold"],
    }
    manifest = read_manifest(root, "default models")
    manifest["calibration"] = entry
    write_json(root / MANIFEST_FILE, manifest)
    return entry


__all__ = [
    "CALIBRATION",
    "MODELS",
    "SHIPPED_ROOT",
    "ship_calibration",
    "ship_model",
    "shipped_calibration",
    "shipped_model",
    "shipped_models",
]
