"""Video tokenizer: a small convolutional VAE that maps frames to latent frames and back.

Frames (B, T, 3, H, W) in [-1, 1] become latents (B, T', C_lat, H / s, W / s), s = ``spatial_downsample``.

Temporal compression is 1 (each frame is its own latent frame, T' = T) or 4 (causal, like Cosmos' tokenizer:
the first frame is encoded alone, then each group of 4 frames becomes one latent frame, so T = 1 + 4k frames give
T' = 1 + k latent frames). Causality is structural: latent frame j only sees frames <= 4j, and decoded frames of
group j only see latent frame j. The spatial network is per-frame 2-D convolutions with GroupNorm (statistics per
frame, never across time or batch), so nothing else mixes frames.

Sections: config, building blocks, latent distribution, encoder/decoder, tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

SUPPORTED_TEMPORAL_COMPRESSIONS = (1, 4)


# ----------------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class TokenizerConfig:
    """Shape and width of the VAE.

    Stage i of the encoder has ``base_channels * 2 ** min(i, 2)`` channels; there are log2(spatial_downsample)
    stride-2 stages.
    """

    image_size: int = 96
    latent_channels: int = 8
    spatial_downsample: int = 8
    temporal_compression: int = 1
    base_channels: int = 32
    num_res_blocks: int = 1

    def __post_init__(self) -> None:
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        s = self.spatial_downsample
        if s < 1 or s & (s - 1):
            raise ValueError(f"spatial_downsample must be a power of two (1, 2, 4, 8, 16), got {s}")
        if self.image_size % s:
            raise ValueError(
                f"image_size={self.image_size} is not divisible by spatial_downsample={s}; "
                f"pick a downsample that divides it (e.g. 8 -> {self.image_size // 8 if self.image_size % 8 == 0 else '?'}"
                " latent pixels)"
            )
        if self.temporal_compression not in SUPPORTED_TEMPORAL_COMPRESSIONS:
            raise ValueError(
                f"temporal_compression must be one of {SUPPORTED_TEMPORAL_COMPRESSIONS} "
                f"(1 = per-frame, 4 = causal groups of 4), got {self.temporal_compression}"
            )
        if self.latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1, got {self.latent_channels}")
        if self.base_channels < 8 or self.base_channels % 8:
            raise ValueError(
                f"base_channels must be a positive multiple of 8 (GroupNorm groups), got {self.base_channels}"
            )
        if self.num_res_blocks < 0:
            raise ValueError(f"num_res_blocks must be >= 0, got {self.num_res_blocks}")

    @property
    def latent_size(self) -> int:
        """Side of a latent frame in latent pixels."""
        return self.image_size // self.spatial_downsample

    @property
    def num_stages(self) -> int:
        return self.spatial_downsample.bit_length() - 1

    def stage_channels(self, stage: int) -> int:
        return self.base_channels * 2 ** min(stage, 2)

    def num_latent_frames(self, num_frames: int) -> int:
        """Latent frames for a clip of ``num_frames`` frames; raises if the clip length does not fit the grouping."""
        check_num_frames(num_frames, self.temporal_compression)
        return 1 + (num_frames - 1) // self.temporal_compression

    def num_frames(self, num_latent_frames: int) -> int:
        """Frames decoded from ``num_latent_frames`` latent frames (inverse of ``num_latent_frames``)."""
        return 1 + (num_latent_frames - 1) * self.temporal_compression


def check_num_frames(num_frames: int, temporal_compression: int) -> None:
    """Clips must hold 1 + k * compression frames: the first frame alone, then whole groups."""
    if num_frames < 1 or (num_frames - 1) % temporal_compression:
        k = max((num_frames - 1) // temporal_compression, 0)
        raise ValueError(
            f"a clip of {num_frames} frames does not fit temporal_compression={temporal_compression}: "
            f"use 1 + k*{temporal_compression} frames (e.g. {1 + k * temporal_compression} "
            f"or {1 + (k + 1) * temporal_compression})"
        )


def group_frames(x: Tensor, temporal_compression: int) -> Tensor:
    """Causal grouping (B, T, ...) -> (B, T', c, ...): group 0 is frame 0 repeated c times, group j >= 1 holds
    frames (j-1)*c + 1 .. j*c. Replicating the first frame (instead of zero padding) keeps group 0 in-distribution."""
    c = temporal_compression
    check_num_frames(x.shape[1], c)
    first = repeat(x[:, :1], "b 1 ... -> b 1 c ...", c=c)
    rest = rearrange(x[:, 1:], "b (g c) ... -> b g c ...", c=c)
    return torch.cat([first, rest], dim=1)


# ----------------------------------------------------------------------------------------------------------------------
# Building blocks (per-frame 2-D)
# ----------------------------------------------------------------------------------------------------------------------


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(8, channels), num_channels=channels, eps=1e-6)


class ResBlock(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H, W), pre-activation residual block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """(N, C, H, W) -> (N, C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """(N, C, H, W) -> (N, C, 2H, 2W), nearest then conv (no checkerboard artifacts of transposed convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


# ----------------------------------------------------------------------------------------------------------------------
# Latent distribution
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class LatentDistribution:
    """Diagonal Gaussian posterior over latents; ``mean`` and ``logvar`` are (B, T', C_lat, h, w)."""

    mean: Tensor
    logvar: Tensor

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + torch.exp(0.5 * self.logvar) * noise

    def kl(self) -> Tensor:
        """KL(q || N(0, I)) averaged over every latent element (a scalar), so its weight does not depend on size."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar).mean()


# ----------------------------------------------------------------------------------------------------------------------
# Encoder / decoder
# ----------------------------------------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """(B, T, 3, H, W) -> mean and logvar, each (B, T', C_lat, h, w)."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.stage_channels(0)
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        layers: list[nn.Module] = []
        for stage in range(cfg.num_stages):
            out = cfg.stage_channels(stage)
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(ch, out))
                ch = out
            layers.append(Downsample(ch))
        layers.append(ResBlock(ch, ch))
        self.down = nn.Sequential(*layers)
        self.top_channels = ch
        # Temporal compression mixes the c frames of a group by stacking them on channels: no kernel reaches
        # outside its group, so the grouping alone decides what a latent frame can see.
        c = cfg.temporal_compression
        self.temporal_mix = nn.Conv2d(c * ch, ch, 1) if c > 1 else nn.Identity()
        self.mid = ResBlock(ch, ch)
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        b = frames.shape[0]
        h = self.down(self.conv_in(rearrange(frames, "b t c h w -> (b t) c h w")))
        h = rearrange(h, "(b t) c h w -> b t c h w", b=b)
        g = group_frames(h, self.cfg.temporal_compression)  # (B, T', c, C, h, w)
        h = self.temporal_mix(rearrange(g, "b g c ch h w -> (b g) (c ch) h w"))
        h = self.conv_out(F.silu(self.norm_out(self.mid(h))))
        h = rearrange(h, "(b g) c h w -> b g c h w", b=b)
        mean, logvar = h.chunk(2, dim=2)
        # Clamped so an untrained encoder cannot produce inf/0 variances.
        return mean, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """(B, T', C_lat, h, w) -> (B, T, 3, H, W), T = 1 + (T' - 1) * c."""

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.stage_channels(cfg.num_stages - 1) if cfg.num_stages else cfg.stage_channels(0)
        c = cfg.temporal_compression
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch, 3, padding=1)
        self.mid = ResBlock(ch, ch)
        # One latent frame unfolds into the c frames of its group (channels -> time), again strictly per group.
        self.temporal_unmix = nn.Conv2d(ch, c * ch, 1) if c > 1 else nn.Identity()
        layers: list[nn.Module] = [ResBlock(ch, ch)]
        for stage in reversed(range(cfg.num_stages)):
            out = cfg.stage_channels(stage)
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(ch, out))
                ch = out
            layers.append(Upsample(ch))
        self.up = nn.Sequential(*layers)
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, latents: Tensor) -> Tensor:
        b = latents.shape[0]
        c = self.cfg.temporal_compression
        h = self.mid(self.conv_in(rearrange(latents, "b g c h w -> (b g) c h w")))
        h = rearrange(self.temporal_unmix(h), "(b g) (c ch) h w -> b g c ch h w", b=b, c=c)
        # Group 0 decodes to the first frame only (it was the first frame repeated); keep its last slot.
        h = torch.cat([h[:, :1, -1], rearrange(h[:, 1:], "b g c ch h w -> b (g c) ch h w")], dim=1)
        t = h.shape[1]
        h = self.up(rearrange(h, "b t c h w -> (b t) c h w"))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return rearrange(h, "(b t) c h w -> b t c h w", t=t)


# ----------------------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------------------


class VideoTokenizer(nn.Module):
    """Convolutional VAE over video clips.

    ``encode``: frames (B, T, 3, H, W) in [-1, 1] -> ``LatentDistribution`` over (B, T', C_lat, h, w).
    ``decode``: latents (B, T', C_lat, h, w) -> frames (B, T, 3, H, W) (unbounded; clamp for display).
    """

    def __init__(self, cfg: TokenizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def _check_frames(self, frames: Tensor) -> None:
        size = self.cfg.image_size
        if frames.ndim != 5 or frames.shape[2] != 3 or tuple(frames.shape[-2:]) != (size, size):
            raise ValueError(
                f"frames must be (B, T, 3, {size}, {size}) in [-1, 1], got {tuple(frames.shape)}"
            )
        check_num_frames(frames.shape[1], self.cfg.temporal_compression)

    def encode(self, frames: Tensor) -> LatentDistribution:
        """(B, T, 3, H, W) in [-1, 1] -> posterior over (B, T', C_lat, h, w)."""
        self._check_frames(frames)
        mean, logvar = self.encoder(frames)
        return LatentDistribution(mean=mean, logvar=logvar)

    def decode(self, latents: Tensor) -> Tensor:
        """(B, T', C_lat, h, w) -> (B, T, 3, H, W)."""
        expected = (self.cfg.latent_channels, self.cfg.latent_size, self.cfg.latent_size)
        if latents.ndim != 5 or tuple(latents.shape[2:]) != expected:
            raise ValueError(
                f"latents must be (B, T', {', '.join(map(str, expected))}), got {tuple(latents.shape)}"
            )
        return self.decoder(latents)

    def forward(
        self, frames: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, LatentDistribution]:
        """Reconstruct (B, T, 3, H, W) through a sampled latent; returns (reconstruction, posterior)."""
        posterior = self.encode(frames)
        return self.decode(posterior.sample(generator)), posterior
