"""The shipped default models: the world model and the value model that ``evaluate``, ``plan`` and ``demo`` use
when ``world_model=`` / ``value_model=`` are not given.

Each is a release folder (safetensors + JSON) beside ``manifest.json``, whose entries give the files' sha256, the
data, command, wall time and hardware that made them, and what they measured. ``dojo-bench zoo ship
world_model=DIR value_model=DIR`` copies trained releases here and writes their entries; ``dojo-bench zoo list``
prints them with the zoo.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from dojo_bench.core.devices import hardware
from dojo_bench.core.errors import DojoError
from dojo_bench.core.manifest import MANIFEST_FILE, file_hashes, read_manifest, verify_entry
from dojo_bench.core.run_dir import RUN_FILE, write_json

SHIPPED_ROOT = Path(__file__).resolve().parent
MODELS = ("world_model", "value_model")


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


__all__ = ["MODELS", "SHIPPED_ROOT", "ship_model", "shipped_model", "shipped_models"]
