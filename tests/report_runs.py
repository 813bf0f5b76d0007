"""Copies of a run's stored results for the report tests (tests/reports), with policies renamed at will.

Importable from any test because pyproject's pytest ``pythonpath`` adds tests/ to sys.path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from dojo_bench.engine.media import MEDIA_DIR, policy_slug

# Text that runs script if a page ever shows it unescaped (and requests a URL, which the browser test forbids).
XSS_NAME = '<script>window.__xss=1</script><img src="https://example.com/x.png" onerror="window.__xss=2">'


def copy_run(run: Path, dest: Path, rename: dict[str, str] | None = None) -> Path:
    """The stored results of ``run`` (not its inputs) copied to ``dest``, policies renamed by ``rename``."""
    rename = rename or {}
    dest.mkdir(parents=True)
    summary = json.loads((run / "summary.json").read_text())

    def keys(block: dict) -> dict:
        return {rename.get(k, k): v for k, v in block.items()}

    summary["policies"] = keys(summary["policies"])
    summary["agreement"]["policies"] = keys(summary["agreement"]["policies"])
    summary["provenance"]["checkpoint_hashes"] = keys(summary["provenance"]["checkpoint_hashes"])
    (dest / "summary.json").write_text(json.dumps(summary))
    for name in ("episodes.parquet", "curves.parquet"):
        frame = pd.read_parquet(run / name)
        frame["policy"] = frame["policy"].map(lambda p: rename.get(p, p))
        frame.to_parquet(dest / name)
    for folder in (run / MEDIA_DIR).iterdir():
        new = folder.name
        for old_name, new_name in rename.items():
            if folder.name == policy_slug(old_name):
                new = policy_slug(new_name)
        shutil.copytree(folder, dest / MEDIA_DIR / new)
    return dest
