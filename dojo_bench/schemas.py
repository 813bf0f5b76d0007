"""Each verb's keys, defaults and help, written once, for the CLI (``cli.py``, the only other Hydra-aware module).

A verb's keys are the fields of its config dataclass (next to the code it configures: ``DataConfig``,
``TrainConfig``, ...) plus the CLI-only keys below (``overwrite=``, and the ``seed=`` / ``device=`` every verb
takes). ``register(verb)`` stores them in Hydra's ConfigStore as ``<verb>_schema``, the first entry of the defaults
list of ``conf/<verb>/config.yaml``; that file keeps only the values where the CLI differs from the dataclass (the
nested settings blocks, say) and its ``size/`` presets what size= changes.

Every schema field is typed ``Any``: Hydra checks the keys, and each value is typed and checked by the dataclass's
``__post_init__`` in one line that names the key, as for the YAML-only trees. A field's help (``--help``) is its
trailing comment, continued on the comment lines right below it that start with ``#   ``; the keys inside a nested
block take theirs from the comments in config.yaml.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import re
import textwrap
import tokenize
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore

# -- the CLI-only keys -------------------------------------------------------------------------------------------


@dataclass
class Writes:
    """Every verb that writes a run dir."""

    overwrite: bool = False  # replace a finished run, another config's run or foreign files in out


@dataclass
class Preset:
    """Verbs whose config class does not record the size preset."""

    preset: str = "default"  # the size preset, set by size=default|tiny


@dataclass
class Unused:
    """Verbs that take no seed or device of their own."""

    seed: int = 0  # unused; every verb takes it
    device: str = "auto"  # unused; every verb takes it


@dataclass
class TinyRun:
    """report and compare: size=tiny without a run evaluates one first."""

    seed: int = 0  # used only by size=tiny's own evaluation
    device: str = "auto"  # used only by size=tiny's own evaluation


@dataclass
class InspectKeys:
    """``dojo-bench inspect`` reads a dataset back and writes nothing: no config class of its own."""

    path: str = ""  # a LeRobot dataset root, or the out= of a data run
    decode: bool = True  # decode the first and last frame of every episode's video


@dataclass
class ZooShipKeys:
    """``dojo-bench zoo action=list|ship`` (cli.py): the shipped zoo and default models."""

    action: str = "build"  # build | list (the shipped zoo and default models) | ship (copy into the package)
    zoo_dir: str | None = None  # ship: a built zoo (OUT/zoo of `dojo-bench zoo out=OUT`) to ship as
    #   policies/zoo
    world_model: str | None = None  # ship: a world-model release (OUT/release of `dojo-bench train`) to ship
    #   as the default
    value_model: str | None = None  # ship: a value-model release to ship as the default
    calibration: str | None = None  # ship: a `dojo-bench calibrate` out dir fitted for the shipped world and
    #   value models
    evaluation: str | None = None  # ship: the `dojo-bench evaluate` run whose agreement figures go in the
    #   world model's entry


# -- the verbs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """A verb's keys: the fields of ``config`` ("module:Class", imported when needed; None: no config class),
    then those of ``extra`` (the first class with a field gives its default and help); ``required`` keys have no
    default (Hydra's ``???``: "out= is required"), whatever the config class's own default is."""

    config: str | None
    extra: tuple[type, ...] = ()
    required: tuple[str, ...] = ()

    def classes(self) -> list[type]:
        if self.config is None:
            return list(self.extra)
        module, _, name = self.config.partition(":")
        return [getattr(importlib.import_module(module), name), *self.extra]


SCHEMAS: dict[str, Schema] = {
    "data": Schema("dojo_bench.dojo.recording:DataConfig", (Writes, Preset, Unused), ("out",)),
    "inspect": Schema(None, (InspectKeys, Preset, Unused), ("path",)),
    "train": Schema("dojo_bench.train.config:TrainConfig", (Writes,), ("out",)),
    "demo": Schema("dojo_bench.verbs.demo:DemoConfig", (Writes,)),
    "wm-eval": Schema("dojo_bench.verbs.wm_eval:WmEvalConfig", (Writes,), ("out",)),
    "bench": Schema("dojo_bench.verbs.bench:BenchConfig", (Writes,), ("out",)),
    "calibrate": Schema("dojo_bench.verbs.calibrate:CalibrateConfig", (Writes, Preset), ("data", "out")),
    "evaluate": Schema("dojo_bench.verbs.evaluate:EvaluateConfig", (Writes,), ("out",)),
    "plan": Schema("dojo_bench.verbs.plan:PlanConfig", (Writes,), ("out",)),
    "report": Schema("reports.report:ReportConfig", (Writes, TinyRun)),
    "compare": Schema("reports.compare:CompareConfig", (Writes, TinyRun)),
    "zoo": Schema("dojo_bench.verbs.zoo:ZooConfig", (ZooShipKeys, Writes)),
}


def schema_name(verb: str) -> str:
    return f"{verb.replace('-', '_')}_schema"


def make_schema(verb: str) -> type:
    """One dataclass with every key of ``verb`` and its default, each typed Any (see the module's docstring)."""
    spec, specs, seen = SCHEMAS[verb], [], set()
    for cls in spec.classes():
        for f in fields(cls):
            if f.name in seen or not f.init:
                continue
            seen.add(f.name)
            if f.name in spec.required or f.default is f.default_factory is MISSING:
                default = field(default="???")
            elif f.default is not MISSING:
                default = field(default=f.default)
            else:
                default = field(default_factory=f.default_factory)
            specs.append((f.name, Any, default))
    return make_dataclass(schema_name(verb), specs)


def register(verb: str) -> None:
    """Store ``verb``'s schema in ConfigStore, for its config.yaml's defaults list (imports its config module)."""
    ConfigStore.instance().store(name=schema_name(verb), node=make_schema(verb))


# -- help --------------------------------------------------------------------------------------------------------
HELP_COLUMN = 26  # where a key's help starts, as in the config files
WIDTH = 110


@cache
def field_help(cls: type) -> dict[str, str]:
    """Each field of ``cls`` -> its help: the trailing comment of its definition, then the comment-only lines right
    below it that start with ``#   `` (read from the source)."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[int, tuple[str, bool]] = {}  # line -> (comment, whether the line holds only the comment)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            comments[row] = (token.string, not lines[row - 1][:col].strip())
    helps = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        rows = range(node.lineno, node.end_lineno + 1)
        text = [comments[r][0] for r in rows if r in comments and not comments[r][1]][:1]
        row = node.end_lineno + 1
        while row in comments and comments[row][1] and comments[row][0].startswith("#   "):
            text.append(comments[row][0])
            row += 1
        helps[node.target.id] = " ".join(t.lstrip("#").strip() for t in text)
    return helps


def yaml_help(text: str) -> tuple[list[str], dict[tuple[str, ...], str]]:
    """A config.yaml's header (its leading comment lines) and each key's comment by its path, continued on the
    comment-only lines below it (block-style mappings; the keys of a flow-style ``{...}`` carry none)."""
    header, helps, stack, last = [], {}, [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if last is None:
                header.append(line)
            else:
                helps[last] = f"{helps.get(last, '')} {stripped.lstrip('#').strip()}".strip()
            continue
        match = re.match(r"^(\s*)([A-Za-z_]\w*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
        last = tuple(k for _, k in stack)
        if "#" in rest:
            helps[last] = rest.split("#", 1)[1].strip()
    return header, helps


def _flow(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if value == "???":
        return value
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return dumped.removesuffix("...\n").strip()


def _line(head: str, text: str, indent: str) -> list[str]:
    """``head`` with ``text`` as its comment at the help column, wrapped onto comment lines below."""
    if not text:
        return [head]
    start = max(HELP_COLUMN, len(head) + 1)
    wrapped = textwrap.wrap(text, WIDTH - start - 2, break_on_hyphens=False)
    more = textwrap.wrap(" ".join(wrapped[1:]), WIDTH - HELP_COLUMN - 4, break_on_hyphens=False)
    return [f"{head.ljust(start - 1)} # {wrapped[0]}", *(f"{' ' * HELP_COLUMN}#   {m}" for m in more)]


def _lines(cfg: dict[str, Any], helps: dict[tuple[str, ...], str], path: tuple[str, ...] = ()) -> list[str]:
    indent, out = "  " * len(path), []
    for key, value in cfg.items():
        here = (*path, key)
        commented = any(p[: len(here)] == here for p in helps if p != here)
        long = len(f"{indent}{key}: {_flow(value)}") > WIDTH
        if isinstance(value, dict) and value and (not path or commented or long):  # block style
            out += _line(f"{indent}{key}:", helps.get(here, ""), indent)
            out += _lines(value, helps, here)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out += _line(f"{indent}{key}:", helps.get(here, ""), indent)
            out += [f"{indent}  - {_flow(v)}" for v in value]
        else:
            out += _line(f"{indent}{key}: {_flow(value)}", helps.get(here, ""), indent)
    return out


def verb_help(verb: str, cfg: dict[str, Any]) -> str:
    """The verb's config.yaml header, then every key of ``cfg`` (composed at size=default) with its default and
    help: the field comments of the verb's dataclasses, else the comment in config.yaml."""
    text = files(f"dojo_bench.conf.{verb.replace('-', '_')}").joinpath("config.yaml").read_text()
    header, helps = yaml_help(text)
    seen = set()
    for cls in SCHEMAS[verb].classes():  # the first class with a field gives its help, as its default
        for name, help in field_help(cls).items():
            if name not in seen and help:
                helps[(name,)] = help
            seen.add(name)
    return "\n".join([*header, *_lines(cfg, helps)])
