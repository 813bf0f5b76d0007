"""A stop request (SIGTERM, Ctrl-C) that survives C callbacks: an exception raised while the physics engine is
calling back into Python is printed and dropped by cffi, so the request is also kept as a flag that the physics
loop checks after each step (``check``)."""

from __future__ import annotations

from types import FrameType

_requested = False


def request(signum: int, frame: FrameType | None) -> None:
    """A signal handler: remember the request and stop here like Ctrl-C."""
    global _requested
    _requested = True
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if a stop was requested (for loops that run C callbacks)."""
    if _requested:
        raise KeyboardInterrupt


def clear() -> None:
    """Forget a request (at the start of a command, so one command's stop does not end the next in-process)."""
    global _requested
    _requested = False
