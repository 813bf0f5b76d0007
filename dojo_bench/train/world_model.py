"""``stage=world_model``: the latent world model's Lightning module over a trained tokenizer."""

from __future__ import annotations

from dojo_bench.train.config import TrainConfig
from dojo_bench.train.inputs import config_error
from world_model.dit import make_dit_config
from world_model.flow import FlowConfig
from world_model.lit_world_model import LitWorldModel, estimate_latent_scale
from world_model.model import WorldModelConfig
from world_model.sampler import SamplerConfig


def build_world_model_module(cfg: TrainConfig, tokenizer, datamodule):
    tok = tokenizer.cfg
    dit_overrides = {k: v for k, v in cfg.dit.items() if k != "size"}
    try:
        dit = make_dit_config(
            cfg.dit.get("size", "default"),
            **{
                "max_latent_frames": max(16, tok.num_latent_frames(cfg.clip_length)),
                **dit_overrides,
                "latent_channels": tok.latent_channels,
                "latent_size": tok.latent_size,
                "action_dim": datamodule.action_dim,
                "state_dim": datamodule.state_dim,
                "action_chunk_size": tok.temporal_compression,
            },
        )
        extra = {"learning_rate": cfg.learning_rate} if cfg.learning_rate else {}
        module_cfg = WorldModelConfig(
            dit=dit,
            flow=FlowConfig(**cfg.flow),
            sampler=SamplerConfig(**cfg.sampler),
            **cfg.world_model,
            **datamodule.stats,
            latent_scale=estimate_latent_scale(tokenizer, datamodule.sample_images(16)),
            seed=cfg.seed,
            **extra,
        )
        return LitWorldModel(module_cfg, tokenizer)
    except (TypeError, ValueError) as error:
        raise config_error(error) from None
