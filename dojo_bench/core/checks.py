"""Checks the config dataclasses share: each refuses a value in one ``UsageError`` line that names the key and what
is allowed, when the config is built, before a verb writes anything.

    check_int("seed", self.seed, minimum=0)               # "seed must be an integer >= 0, got -5"
    check_number("confidence", self.confidence, "in (0, 1)", lambda x: 0 < x < 1)
    check_parts({"sampler": lambda s: SamplerConfig(**s)}, {"sampler": self.sampler})
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dojo_bench.core.errors import DojoError, UsageError


def check_int(name: str, value: Any, minimum: int = 1, optional: bool = False, hint: str = "") -> None:
    """``value`` must be an integer >= ``minimum`` (or None when ``optional``); ``hint`` follows the rule."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UsageError(f"{name} must be {rule}{' or null' if optional else ''}{hint}, got {value!r}")


def check_number(
    name: str, value: Any, allowed: str, ok: Callable[[float], bool], optional: bool = False
) -> None:
    """``value`` must be a finite number for which ``ok`` holds; ``allowed`` says which ("in [0, 1)", "a number
    >= 0")."""
    if optional and value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not ok(value)
    ):
        raise UsageError(f"{name} must be {allowed}{' or null' if optional else ''}, got {value!r}")


def check_parts(builders: dict[str, Callable[[dict[str, Any]], Any]], settings: dict[str, Any]) -> None:
    """Build each nested config (``key=`` a dict of settings) with its builder now; the builder's complaint
    (TypeError for an unknown field, ValueError for a bad value) becomes one line naming ``key``."""
    for key, build in builders.items():
        given = settings.get(key) or {}
        if not isinstance(given, dict):
            raise UsageError(f"{key} must be a mapping of settings ({key}.name=value), got {given!r}")
        try:
            build(dict(given))
        except (TypeError, ValueError, DojoError) as error:
            raise UsageError(f"bad {key} settings: {_plain(error)}") from None


def _plain(error: Exception) -> str:
    """An error's first line, without the class name Python puts before unexpected keyword arguments."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "unexpected keyword argument" in text:
        return "unknown key " + text.split("unexpected keyword argument")[-1].strip()
    return text
