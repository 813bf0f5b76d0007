"""The package layout cannot regress: no import cycle between packages and no import pointing up the layers of
``.ci/layout.py`` (``LAYERS``: lowest first; a package imports only its own or lower layers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout():
    spec = importlib.util.spec_from_file_location("ci_layout", ROOT / ".ci" / "layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_package_cycle_and_no_upward_import():
    layout = _layout()
    edges = layout.measure(ROOT)["edges"]
    assert edges, "no import between packages found: the script no longer sees the source tree"
    assert layout.cycles(edges) == []
    assert layout.upward(edges) == []


def test_every_package_has_a_layer():
    layout = _layout()
    packages = {
        name for name, lines in layout.measure(ROOT)["lines"].items() if lines
    }  # not conf/'s empty ones
    placed = {name for names in layout.LAYERS for name in names}
    assert packages <= placed, f"packages missing from LAYERS: {sorted(packages - placed)}"


def test_the_checks_catch_a_cycle_and_an_upward_import():
    layout = _layout()
    up = {("dojo_bench.core", "world_model"): 1}  # the ground floor importing a model package
    assert layout.upward(up) == ["dojo_bench.core -> world_model (1)"]
    loop = {("world_model", "policies"): 1, ("policies", "world_model"): 2}
    assert layout.cycles(loop) == [["policies", "world_model"]]
    assert layout.upward({("nowhere", "dojo_bench.core"): 1}) == ["nowhere -> dojo_bench.core (1)"]
