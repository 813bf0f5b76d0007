"""Each verb's keys and defaults are written once (dojo_bench/schemas.py): what the verbs receive stays as it was
when the defaults lived in YAML, config.yaml holds only overrides, and --help lists every key with its help."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from dojo_bench import schemas
from dojo_bench.cli import VERBS, compose, main

# Every verb's composed config at size=default and size=tiny, recorded from the YAML-only config trees (their
# required keys given as below). A deliberate change of a default updates it: write
# {verb: {size: compose(verb, [f"size={size}", *REQUIRED.get(verb, [])])}} to this file with json.dump(indent=1).
COMPOSED = Path(__file__).parent / "fixtures" / "composed_configs.json"
REQUIRED = {"data": ["out=OUT"], "inspect": ["path=PATH"], "train": ["out=OUT"], "wm-eval": ["out=OUT"],
            "bench": ["out=OUT"], "calibrate": ["data=DATA", "out=OUT"], "evaluate": ["out=OUT"], "plan": ["out=OUT"]}  # fmt: skip


def test_every_verb_has_a_schema():
    assert set(schemas.SCHEMAS) == set(VERBS)


@pytest.mark.parametrize("size", ["default", "tiny"])
@pytest.mark.parametrize("verb", list(VERBS))
def test_the_composed_config_is_what_it_was(verb, size):
    expected = json.loads(COMPOSED.read_text())[verb][size]
    assert compose(verb, [f"size={size}", *REQUIRED.get(verb, [])]) == expected


def schema_defaults(verb: str) -> dict:
    return {
        f.name: f.default if f.default is not MISSING else f.default_factory()
        for f in fields(schemas.make_schema(verb))
    }


@pytest.mark.parametrize("verb", list(VERBS))
def test_config_yaml_holds_only_overrides(verb):
    """A key of config.yaml differs from its dataclass default (else the default is written twice)."""
    text = files(f"dojo_bench.conf.{verb.replace('-', '_')}").joinpath("config.yaml").read_text()
    values = yaml.safe_load(text)
    assert values.pop("defaults")[0] == schemas.schema_name(verb)
    defaults = schema_defaults(verb)
    assert set(values) <= set(defaults)
    assert not [key for key, value in values.items() if value == defaults[key]]


@pytest.mark.parametrize("verb", list(VERBS))
def test_help_lists_every_key_with_its_default_and_help(verb, capsys):
    assert main([verb, "--help"]) == 0
    text = capsys.readouterr().out
    for key in schema_defaults(verb):
        line = next((line for line in text.splitlines() if re.match(rf"{key}:", line)), None)
        assert line is not None, f"{key} missing from `dojo-bench {verb} --help`"
        assert "#" in line, f"{key} has no help in `dojo-bench {verb} --help`"


@pytest.mark.parametrize("verb", [verb for verb, spec in schemas.SCHEMAS.items() if spec.config])
def test_keys_read_from_source_equal_the_imported_class(verb):
    """--help reads a verb's config class from its source (no torch import); what it reads is the class's own
    keys, defaults and help, as importing the class gives them."""
    module, _, name = schemas.SCHEMAS[verb].config.partition(":")
    static = schemas.static_class(module, name)
    imported = schemas.imported_keys(getattr(importlib.import_module(module), name))

    def plain(keys):
        return [(k, d() if isinstance(d, schemas.Factory) else d, h) for k, d, h in keys]

    assert plain(static) == plain(imported)


def test_a_default_that_is_not_a_constant_is_read_from_the_imported_class(tmp_path, monkeypatch):
    (tmp_path / "odd_config.py").write_text(
        "from dataclasses import dataclass, field\nimport os\n\n\n@dataclass\nclass OddConfig:\n"
        "    size: int = 3  # how big\n    home: str = os.getcwd()  # computed\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(schemas.NotStatic, match="os.getcwd"):
        schemas.static_class("odd_config", "OddConfig")
    keys = schemas.config_keys("odd_config:OddConfig")
    assert keys[0] == ("size", 3, "how big") and keys[1][0] == "home"


def test_help_imports_no_torch():
    code = "import sys; from dojo_bench.cli import main; main(['evaluate', '--help']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"
