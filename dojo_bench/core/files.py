"""Atomic writes: every file the project writes goes through a temporary sibling and a rename, so a reader (or an
interrupted run resuming) never sees half a file. Reads of the user's files: one line naming the file when it
cannot be read."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

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
