"""The ``device=`` setting every verb takes (its choices, their check, the one place ``auto`` is resolved) and the
hardware a run records."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from dojo_bench.core.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> None:
    """Refuse a ``device=`` that is not one of ``DEVICES`` (for configs' ``__post_init__``)."""
    if device not in DEVICES:
        raise UsageError(f"unknown device={device!r}; choose one of {', '.join(DEVICES)}")


def resolve_device(device: str) -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> ``cpu`` or ``cuda``; ``cuda`` without a CUDA device is one UsageError line."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device=cuda but no CUDA device is available; use device=auto or device=cpu")
    return "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"


def hardware() -> dict[str, Any]:
    """The machine a result was measured on (recorded in summaries and manifests)."""
    cuda = torch.cuda.is_available()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
    }
