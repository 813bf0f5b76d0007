"""The reports' jinja2 environment: templates in ``reports/templates``, autoescaping always on.

Everything a page shows that came from a user (policy names, paths, config values) goes through autoescape, so a
policy called ``<script>...`` is shown as text. Pictures arrive as ``data:`` URIs (plots.py, media.py) and CSS is
inline: a page opens offline, from a file, with no request to anywhere.
"""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.{digits}f}"


def signed_points(value: Any, digits: int = 1) -> str:
    """A difference of rates in percentage points with its sign, e.g. '+12.5 pp'."""
    if value is None:
        return "n/a"
    return f"{100 * float(value):+.{digits}f} pp"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,  # every template, whatever its file name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(percent=percent, number=number, signed_points=signed_points, pretty_json=pretty_json)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
