"""Tensors and arrays: the one conversion of a torch tensor (or anything array-like) to a numpy array."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(value: Any) -> np.ndarray:
    """A torch tensor (detached, as float32 on the CPU: bf16 has no numpy dtype) or anything array-like -> numpy."""
    if hasattr(value, "detach"):  # a torch tensor; duck-typed so this module needs no torch
        return value.detach().float().cpu().numpy()
    return np.asarray(value)
