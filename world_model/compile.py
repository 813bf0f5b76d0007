"""``compile=auto|true|false``: ``torch.compile`` of the networks that train, where the device supports it.

``auto`` compiles on CUDA only: on CPU, inductor needs a C++ toolchain and its compile time (minutes) outweighs the
gain of a short run. ``nn.Module.compile()`` compiles in place, so parameter names (and therefore Lightning
checkpoints and safetensors releases) are the same with and without it.
"""

from __future__ import annotations

from torch import nn

from dojo_bench.core.errors import UsageError

COMPILE_CHOICES = ("auto", "true", "false")


def normalise_compile(value: str | bool) -> str:
    """The setting as one of COMPILE_CHOICES (Hydra hands booleans for true/false)."""
    text = str(value).lower()
    if text not in COMPILE_CHOICES:
        raise UsageError(f"compile must be auto, true or false, got {value!r}")
    return text


def should_compile(setting: str | bool, device: str) -> bool:
    """Whether to compile for ``device`` ('cpu' | 'cuda' | 'gpu')."""
    setting = normalise_compile(setting)
    return setting == "true" or (setting == "auto" and device in ("cuda", "gpu"))


def maybe_compile(module: nn.Module, setting: str | bool, device: str) -> bool:
    """Compile ``module`` in place when ``should_compile``; returns whether it did."""
    if not should_compile(setting, device):
        return False
    module.compile()
    return True
