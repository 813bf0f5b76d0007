"""Rich progress bars for long loops, on stderr so that stdout stays the one summary line."""

from __future__ import annotations

import logging
import warnings

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

STDERR = Console(stderr=True)


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=STDERR,
        transient=False,
    )


def quiet_libraries() -> None:
    """Keep the terminal to progress and results: Lightning's start-up notes (accelerators, its logger tip,
    "fit stopped") and a deprecation inside Lightning's pytree helper under torch 2.10 say nothing a user can act
    on. Warnings and errors still show."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r".*was configured so \d+ batch")
    # lerobot imports torchvision's video module, which announces its own deprecation: nothing a user can change.
    warnings.filterwarnings("ignore", message=r".*video decoding and encoding capabilities of torchvision")
    # The latent world model trains beside a frozen tokenizer kept in eval mode on purpose (world_model/model.py).
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
    # Our training clips are drawn at random, so resuming mid-"epoch" loses nothing the warning fears.
    warnings.filterwarnings(
        "ignore", message=r".*resuming from a checkpoint that ended before the epoch ended"
    )
