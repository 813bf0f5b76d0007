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
import copy
import importlib
import importlib.util
import inspect
import io
import re
import textwrap
import tokenize
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
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
    """A verb's keys: the fields of ``config`` ("module:Class"; None: no config class), then those of ``extra``
    (the first class with a field gives its default and help); ``required`` keys have no default (Hydra's ``???``:
    "out= is required"), whatever the config class's own default is.

    ``config`` is read from its source when its defaults are literals (``static_class``), so ``--help`` and the
    schema never import the verb's module (and with it torch); otherwise the class is imported."""

    config: str | None
    extra: tuple[type, ...] = ()
    required: tuple[str, ...] = ()

    def keys(self) -> list[tuple[str, Any, str]]:
        """(name, default: a value, ``MISSING``, or a ``Factory``, help) for every key, first class first."""
        found: dict[str, tuple[str, Any, str]] = {}
        parts = [] if self.config is None else [config_keys(self.config)]
        for part in [*parts, *(imported_keys(cls) for cls in self.extra)]:
            for name, default, help in part:
                found.setdefault(name, (name, default, help))
        return list(found.values())


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
    spec, specs = SCHEMAS[verb], []
    for name, default, _ in spec.keys():
        if name in spec.required or default is MISSING:
            value = field(default="???")
        elif isinstance(default, Factory):
            value = field(default_factory=default)
        else:
            value = field(default=default)
        specs.append((name, Any, value))
    return make_dataclass(schema_name(verb), specs)


def register(verb: str) -> None:
    """Store ``verb``'s schema in ConfigStore, for its config.yaml's defaults list (imports its config module)."""
    ConfigStore.instance().store(name=schema_name(verb), node=make_schema(verb))


# -- help --------------------------------------------------------------------------------------------------------
HELP_COLUMN = 26  # where a key's help starts, as in the config files
WIDTH = 110


# -- a config class's keys, from its source or from the class ----------------------------------------------------


@dataclass(frozen=True)
class Factory:
    """A field's ``default_factory`` read from source: a fresh copy of ``value`` per call."""

    value: Any

    def __call__(self) -> Any:
        return copy.deepcopy(self.value)


class NotStatic(Exception):
    """A config class whose keys cannot be read from its source alone (a default that is not a literal, a base
    class, ...): it is imported instead."""


@cache
def config_keys(config: str) -> tuple[tuple[str, Any, str], ...]:
    """The keys of the class ``config`` ("module:Class"): read from its source when it can be (``static_class``),
    else from the imported class."""
    module, _, name = config.partition(":")
    try:
        return static_class(module, name)
    except NotStatic:
        return imported_keys(getattr(importlib.import_module(module), name))


def imported_keys(cls: type) -> tuple[tuple[str, Any, str], ...]:
    helps = field_help(textwrap.dedent(inspect.getsource(cls)))
    return tuple(
        (f.name, f.default if f.default is not MISSING else
         Factory(f.default_factory()) if f.default_factory is not MISSING else MISSING, helps.get(f.name, ""))
        for f in fields(cls)
        if f.init
    )  # fmt: skip


def static_class(module: str, name: str) -> tuple[tuple[str, Any, str], ...]:
    """The keys of dataclass ``name`` in ``module``'s source, without importing the module (only its parent
    packages, to find it): each annotated field's default (``= value``, ``field(default=...)``,
    ``field(default_factory=list | dict | lambda: value)``), where a value is a literal, a module-level constant of
    literals (its own module's, or one it imports by name) or ``list``/``tuple``/``dict`` of one. Raises NotStatic
    for anything else; tests/dojo_bench/test_schemas.py checks that every verb's keys read so equal the imported
    class's."""
    source = ModuleSource.of(module)
    node = source.definitions.get(name)
    if not isinstance(node, ast.ClassDef):
        raise NotStatic(f"{module}:{name}")
    if node.bases or node.keywords or [d for d in node.decorator_list if ast.unparse(d) != "dataclass"]:
        raise NotStatic(f"{module}:{name}")
    helps = field_help(source.block(node))
    keys = []
    for item in node.body:
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        if ast.unparse(item.annotation).startswith(("ClassVar", "InitVar")):
            raise NotStatic(f"{module}:{name}")
        default = _default(item.value, source)
        if default is not NOT_INIT:
            keys.append((item.target.id, default, helps.get(item.target.id, "")))
    return tuple(keys)


@dataclass(frozen=True)
class ModuleSource:
    """A module's source and its top-level names: classes, ``NAME = value`` and ``from X import NAME``."""

    name: str
    text: str
    body: tuple[ast.stmt, ...]
    definitions: dict[str, Any]  # name -> ClassDef, the assigned expression, or ("import", module, name)

    @staticmethod
    @cache
    def of(module: str) -> ModuleSource:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            raise NotStatic(module)
        text = Path(spec.origin).read_text()
        body = tuple(ast.parse(text).body)
        definitions: dict[str, Any] = {}
        for node in body:
            if isinstance(node, ast.ClassDef):
                definitions[node.name] = node
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                definitions[node.targets[0].id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    definitions[alias.asname or alias.name] = ("import", node.module, alias.name)
        return ModuleSource(module, text, body, definitions)

    def block(self, node: ast.ClassDef) -> str:
        """The class's lines, up to the next top-level statement (so trailing help comments are kept)."""
        later = [n.lineno for n in self.body if n.lineno > node.lineno]
        lines = self.text.splitlines()[node.lineno - 1 : (min(later) - 1) if later else None]
        return textwrap.dedent("\n".join(lines))

    def value(self, node: ast.expr, depth: int = 0) -> Any:
        """The value of a constant expression (see ``static_class``)."""
        if depth > 8:
            raise NotStatic(ast.unparse(node))
        if isinstance(node, ast.Name):
            found = self.definitions.get(node.id)
            if isinstance(found, tuple):
                return ModuleSource.of(found[1]).value(ast.Name(found[2]), depth + 1)
            if isinstance(found, ast.expr):
                return self.value(found, depth + 1)
            raise NotStatic(node.id)
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.value(item, depth + 1) for item in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {
                self.value(k, depth + 1): self.value(v, depth + 1)
                for k, v in zip(node.keys, node.values, strict=True)
            }
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CONVERSIONS:
            if len(node.args) == 1 and not node.keywords:
                return CONVERSIONS[node.func.id](self.value(node.args[0], depth + 1))
        try:
            return ast.literal_eval(node)
        except ValueError:  # not a literal
            raise NotStatic(ast.unparse(node)) from None


CONVERSIONS = {"list": list, "tuple": tuple, "dict": dict}
NOT_INIT = object()  # a field(init=False): not a key


def _default(value: ast.expr | None, source: ModuleSource) -> Any:
    """A field's default from its source (``MISSING``: none; ``NOT_INIT``: not an init field)."""
    if value is None:
        return MISSING
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "field"):
        return source.value(value)
    options = {k.arg: k.value for k in value.keywords}
    if value.args or None in options:
        raise NotStatic(ast.unparse(value))
    if "init" in options and source.value(options.pop("init")) is False:
        return NOT_INIT
    if set(options) - {"default", "default_factory"} or len(options) > 1:
        raise NotStatic(ast.unparse(value))
    if "default" in options:
        return source.value(options["default"])
    if "default_factory" not in options:
        return MISSING
    factory = options["default_factory"]
    if isinstance(factory, ast.Name) and factory.id in CONVERSIONS:
        return Factory(CONVERSIONS[factory.id]())
    if isinstance(factory, ast.Lambda) and not factory.args.args:
        return Factory(source.value(factory.body))
    raise NotStatic(ast.unparse(value))


@cache
def field_help(source: str) -> dict[str, str]:
    """Each field of the class in ``source`` -> its help: the trailing comment of its definition, then the
    comment-only lines right below it that start with ``#   ``."""
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
    for name, _, help in SCHEMAS[verb].keys():  # the first class with a field gives its help, as its default
        if help:
            helps[(name,)] = help
    return "\n".join([*header, *_lines(cfg, helps)])
