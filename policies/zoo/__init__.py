"""The shipped reference zoo: policy checkpoints (LeRobot ``pretrained_model`` folders) and their manifest.

Built by ``dojo-bench zoo out=DIR`` (dojo_bench/verbs/zoo.py) and copied here; ``manifest.json`` gives, per checkpoint,
its files' sha256, how it was made and its real success on the benchmark task with a Wilson interval. Each
checkpoint loads through ``policies.loading.load_policy`` like any user's checkpoint. ``dojo-bench zoo list``
prints the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dojo_bench.core.errors import DojoError
from dojo_bench.core.manifest import read_manifest, verify_entry

ZOO_ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShippedZoo:
    root: Path
    manifest: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return [entry["name"] for entry in self.manifest["checkpoints"]]

    def paths(self, names: list[str] | None = None) -> list[str]:
        """The ``pretrained_model`` folders of ``names`` (default: all, in manifest order), each verified."""
        entries = {entry["name"]: entry for entry in self.manifest["checkpoints"]}
        wanted = self.names if names is None else names
        unknown = [n for n in wanted if n not in entries]
        if unknown:
            raise DojoError(
                f"no shipped zoo checkpoint named {', '.join(unknown)}; see `dojo-bench zoo list`"
            )
        return [str(verify_entry(self.root / n, entries[n]["files"], "zoo")) for n in wanted]

    def real_success(self) -> dict[str, float]:
        """name -> measured real success of the shipped weights (fp16 where they are fp16)."""
        out = {}
        for entry in self.manifest["checkpoints"]:
            real = entry["real"]
            out[entry["name"]] = real["fp16" if entry["dtype"] == "float16" else "fp32"]["rate"]
        return out


def shipped_zoo(root: str | Path | None = None) -> ShippedZoo:
    """The zoo shipped in this package (or at ``root``), its manifest read; files are checked when used."""
    root = Path(root) if root is not None else ZOO_ROOT
    manifest = read_manifest(root, "zoo")
    checkpoints = manifest.get("checkpoints")
    if not isinstance(checkpoints, list) or not checkpoints:
        raise DojoError(
            f"the shipped zoo manifest {root / 'manifest.json'} lists no checkpoints; reinstall dojo-bench"
        )
    return ShippedZoo(root, manifest)


def print_manifest(manifest: dict[str, Any]) -> None:
    """The manifest as a table: name, how it was made, real success (fp32 and fp16) with Wilson intervals."""

    def show(r: dict[str, Any] | None) -> str:
        return "-" if r is None else f"{r['rate']:.0%} [{r['low']:.0%}-{r['high']:.0%}]"

    entries = manifest["checkpoints"]
    seeds = entries[0]["real"].get("seeds", "?") if entries else "?"
    table = Table(
        title=f"reference zoo: real success on {manifest.get('task', '?')}, seeds {seeds}, 95% Wilson"
    )
    table.add_column("checkpoint", no_wrap=True)
    for column in ("data", "stored", "fp32", "fp16"):
        table.add_column(column, no_wrap=column != "data")
    for entry in entries:
        real = entry["real"]
        table.add_row(entry["name"], "+".join(entry["made"]["data"]), entry["dtype"].replace("float", "fp"),
                      show(real.get("fp32")), show(real.get("fp16")))  # fmt: skip
    Console().print(table)


__all__ = ["ZOO_ROOT", "ShippedZoo", "print_manifest", "shipped_zoo"]
