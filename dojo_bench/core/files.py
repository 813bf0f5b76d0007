"""Atomic writes: every file the project writes goes through a temporary sibling and a rename, so a reader (or an
interrupted run resuming) never sees half a file. Reads of the user's files: one line naming the file when it
cannot be read."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dojo_bench.core.errors import DojoError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a unique temporary sibling of ``path``, then rename it onto ``path``.

    The temporary name is hidden and unique per call, so concurrent writers of one path never share it; it is
    removed when ``write`` fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_input_text(path: str | Path) -> str:
    """The text of a file the user handed in; a file that cannot be read (a folder, a device, no permission, not
    UTF-8) is one DojoError line naming it."""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise DojoError(f"{path} cannot be read: {reason}") from None


def read_input_json(path: str | Path) -> Any:
    """The JSON of a file the user handed in (a dataset's metadata, a run's record); one DojoError line naming the
    file when it cannot be read or parsed."""
    try:
        return json.loads(read_input_text(path))
    except json.JSONDecodeError as error:
        raise DojoError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}): damaged?") from None


def read_input_parquet(path: str | Path, columns: list[str] | None = None):
    """A parquet table the user handed in (a dataset's frames or episodes, a run's results) as a DataFrame; one
    DojoError line naming the file when it cannot be read (a damaged file, a missing column)."""
    import pandas as pd  # only the readers of tables pay for pandas
    import pyarrow as pa  # the same: parquet only for those readers

    try:
        return pd.read_parquet(path, columns=columns)
    except (pa.ArrowException, OSError, KeyError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DojoError(f"{path} cannot be read as a parquet table ({reason[:160]}): damaged?") from None
