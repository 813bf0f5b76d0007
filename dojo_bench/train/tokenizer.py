"""``stage=tokenizer``: the video tokenizer's Lightning module, and loading a release's tokenizer for
``stage=world_model``."""

from __future__ import annotations

from pathlib import Path

from dojo_bench.core.errors import DojoError
from dojo_bench.train.config import TrainConfig
from dojo_bench.train.inputs import config_error
from world_model.checkpoint import CheckpointError, load_world_model
from world_model.lit_tokenizer import LitTokenizer, LitTokenizerConfig
from world_model.tokenizer import TokenizerConfig


def load_tokenizer(path: str | Path, image_size: int):
    """The tokenizer of a release checkpoint; mismatches become one DojoError line."""
    try:
        loaded = load_world_model(path, expected_image_size=image_size, require=("tokenizer",))
    except CheckpointError as error:
        raise DojoError(str(error)) from None
    return loaded.tokenizer


def build_tokenizer_module(cfg: TrainConfig, image_size: int):
    try:
        tokenizer = TokenizerConfig(
            **{"temporal_compression": 4, **cfg.tokenizer_model, "image_size": image_size}
        )
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        return LitTokenizer(LitTokenizerConfig(tokenizer=tokenizer, **extra))
    except (TypeError, ValueError) as error:
        raise config_error(error) from None
