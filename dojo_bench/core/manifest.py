"""Shipped binaries and their manifests: every file's sha256 recorded beside it, checked before it is used.

The reference zoo (policies/zoo/) and the default models ship inside the installed packages; a manifest (JSON) in
each folder lists, per entry, its files and their sha256. ``verify_entry`` refuses a missing or altered file with
one line naming it, so a damaged install never gives a silent wrong number.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dojo_bench.core.errors import DojoError

MANIFEST_FILE = "manifest.json"


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """name -> sha256 of every file directly in ``folder``."""
    return {p.name: sha256_of_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def content_hash(path: str | Path) -> str:
    """sha256 (hex) of what ``path`` holds: a file's bytes, or a folder's files (directly in it: names and hashes),
    so the same model copied or installed elsewhere hashes the same and other weights at the same path do not."""
    path = Path(path)
    if path.is_file():
        return sha256_of_file(path)
    return hashlib.sha256(json.dumps(file_hashes(path), sort_keys=True).encode()).hexdigest()


def read_manifest(root: Path, what: str) -> dict[str, Any]:
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise DojoError(f"the shipped {what} is missing its manifest: {path} (reinstall dojo-bench)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DojoError(
            f"the shipped {what} manifest {path} is not valid JSON ({error.msg}); reinstall dojo-bench"
        ) from None
    if not isinstance(manifest, dict):
        raise DojoError(f"the shipped {what} manifest {path} is not a JSON object; reinstall dojo-bench")
    return manifest


def verify_entry(folder: Path, files: dict[str, str], what: str) -> Path:
    """``folder`` when every file in ``files`` (name -> sha256) is there with that hash; else one clear error."""
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise DojoError(f"the shipped {what} file {path} is missing (reinstall dojo-bench)")
        if sha256_of_file(path) != expected:
            raise DojoError(
                f"the shipped {what} file {path} does not match its manifest hash (damaged; reinstall dojo-bench)"
            )
    return folder


__all__ = ["MANIFEST_FILE", "content_hash", "file_hashes", "read_manifest", "sha256_of_file", "verify_entry"]
