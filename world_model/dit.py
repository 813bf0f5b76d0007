"""Latent diffusion transformer (DiT) conditioned on context latent frames and on actions.

Input: a clip of latent frames x (B, T, C, h, w) whose first ``num_context_frames`` are clean context and the rest
are noised at flow time t; actions (B, T_a, A) in the batch's layout (``action[:, k]`` produces frame k + 1).
Output: the velocity (B, T, C, h, w) for every frame (the loss ignores context frames) and, from the same tokens, the
proprioceptive state (B, T, chunk, S) of the frames each latent frame covers.

Conditioning goes through adaLN-Zero (Peebles & Xie): every frame has its own conditioning vector

    cond_i = timestep_embedding(t_i) + action_embedding_i

which produces the shift/scale/gate of every block for the tokens of frame i only.

Action injection (``action_injection``):
- ``chunked`` (DreamDojo): latent frame j >= 1 covers the frames produced by actions[(j-1)*c : j*c], c =
  ``action_chunk_size`` (= the tokenizer's temporal compression); these c actions are flattened and embedded by an
  MLP. Context frames (and frame 0, which no action produced) get a zero embedding.
- ``global`` (ablation baseline): one MLP embedding of all predicted frames' actions, added to every frame.
- ``none``: no action input (action-free pretraining).

Attention (``attention``): ``bidirectional`` over the whole clip, or ``frame_causal`` (tokens of latent frame i
attend to frames <= i). With ``frame_causal`` + ``chunked``, nothing of frame i depends on later actions or frames.

Sections: config and presets, action layout, embedders, transformer block, final layers, model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

ACTION_INJECTIONS = ("chunked", "global", "none")
ATTENTIONS = ("bidirectional", "frame_causal")


# ----------------------------------------------------------------------------------------------------------------------
# Config and presets
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class DiTConfig:
    """Architecture of the latent DiT. Latent shape must match the tokenizer's (``latent_channels``,
    ``latent_size``); ``action_chunk_size`` must equal the tokenizer's temporal compression."""

    latent_channels: int = 8
    latent_size: int = 12
    patch_size: int = 2
    hidden_dim: int = 512
    depth: int = 8
    num_heads: int = 8
    mlp_ratio: float = 4.0
    action_dim: int = 2
    state_dim: int = 2
    action_chunk_size: int = 1
    action_injection: str = "chunked"
    attention: str = "bidirectional"
    max_latent_frames: int = 16

    def __post_init__(self) -> None:
        for name in (
            "latent_channels",
            "latent_size",
            "patch_size",
            "hidden_dim",
            "depth",
            "num_heads",
            "action_dim",
            "state_dim",
            "action_chunk_size",
            "max_latent_frames",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"DiTConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.latent_size % self.patch_size:
            raise ValueError(
                f"latent_size={self.latent_size} is not divisible by patch_size={self.patch_size}; "
                "choose a patch size that divides the tokenizer's latent size"
            )
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim={self.hidden_dim} must be divisible by num_heads={self.num_heads}")
        if (self.hidden_dim // self.num_heads) % 2:
            raise ValueError(
                f"head dim hidden_dim/num_heads={self.hidden_dim // self.num_heads} must be even"
            )
        if self.hidden_dim % 4:
            raise ValueError(
                f"hidden_dim must be divisible by 4 for 2-D sin-cos positions, got {self.hidden_dim}"
            )
        if self.action_injection not in ACTION_INJECTIONS:
            raise ValueError(
                f"action_injection must be one of {ACTION_INJECTIONS}, got {self.action_injection!r}"
            )
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {self.mlp_ratio}")

    @property
    def tokens_per_frame(self) -> int:
        return (self.latent_size // self.patch_size) ** 2


DIT_PRESETS: dict[str, dict[str, int]] = {
    # Runs a forward/backward on a small clip in well under a second on one CPU core.
    "tiny": {"hidden_dim": 64, "depth": 2, "num_heads": 4},
    # ~1.3M parameters (12x12x8 latents): the largest that trains in minutes on a 2-core CPU (no-GPU runs, the ablation table).
    "small": {"hidden_dim": 128, "depth": 4, "num_heads": 4},
    # ~38M parameters with 8 latent channels: trains on one GPU.
    "default": {"hidden_dim": 512, "depth": 8, "num_heads": 8},
}


def make_dit_config(size: str = "default", **overrides) -> DiTConfig:
    """A ``DiTConfig`` from a size preset (``tiny`` | ``default``) with field overrides."""
    if size not in DIT_PRESETS:
        raise ValueError(f"unknown DiT size {size!r}; choose one of {sorted(DIT_PRESETS)}")
    return replace(DiTConfig(), **{**DIT_PRESETS[size], **overrides})


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------------------------------------------------
# Action layout
# ----------------------------------------------------------------------------------------------------------------------


def chunk_actions(actions: Tensor, num_latent_frames: int, chunk_size: int) -> Tensor:
    """Actions (B, T_a, A) -> per-latent-frame chunks (B, T', chunk_size, A).

    Chunk j >= 1 holds actions[(j-1)*c : j*c], the actions that produce the frames of latent frame j. Chunk 0 is
    zeros: frame 0 is observed, no action in the clip produced it. Actions past (T'-1)*c are ignored.
    """
    needed = (num_latent_frames - 1) * chunk_size
    if actions.ndim != 3 or actions.shape[1] < needed:
        raise ValueError(
            f"actions must be (B, T_a >= {needed}, A) for {num_latent_frames} latent frames with chunk size "
            f"{chunk_size}, got {tuple(actions.shape)}"
        )
    chunks = rearrange(actions[:, :needed], "b (t c) a -> b t c a", c=chunk_size)
    zeros = actions.new_zeros(actions.shape[0], 1, chunk_size, actions.shape[2])
    return torch.cat([zeros, chunks], dim=1)


def chunk_states(states: Tensor, chunk_size: int) -> Tensor:
    """States (B, T, S) with T = 1 + k*c -> the state head's layout (B, 1 + k, c, S).

    Row j >= 1 holds states[(j-1)*c + 1 : j*c + 1], the frames latent frame j covers; row 0 is state 0 repeated
    (frame 0 alone)."""
    if states.ndim != 3 or (states.shape[1] - 1) % chunk_size:
        raise ValueError(f"states must be (B, 1 + k*{chunk_size}, S), got {tuple(states.shape)}")
    first = states[:, :1, None].expand(-1, -1, chunk_size, -1)
    rest = rearrange(states[:, 1:], "b (t c) s -> b t c s", c=chunk_size)
    return torch.cat([first, rest], dim=1)


# ----------------------------------------------------------------------------------------------------------------------
# Embedders
# ----------------------------------------------------------------------------------------------------------------------


def sincos_1d(positions: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Positions (N,) -> (N, dim) sin-cos features."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    angles = positions.to(torch.float64)[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).float()


def sincos_2d(grid_size: int, dim: int) -> Tensor:
    """(grid_size**2, dim): half the channels encode the row, half the column."""
    coords = torch.arange(grid_size)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cat([sincos_1d(rows.flatten(), dim // 2), sincos_1d(cols.flatten(), dim // 2)], dim=-1)


class TimestepEmbedder(nn.Module):
    """Flow time t (...,) in [0, 1] -> (..., D)."""

    def __init__(self, hidden_dim: int, frequency_dim: int = 256) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(
            nn.Linear(frequency_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim)
        )

    def forward(self, t: Tensor) -> Tensor:
        # Scaled by 1000 so the sin-cos frequencies tuned for integer diffusion steps resolve t in [0, 1].
        freq = sincos_1d(t.flatten() * 1000.0, self.frequency_dim).to(t.device)
        return self.mlp(freq.to(self.mlp[0].weight.dtype)).view(*t.shape, -1)


class ActionEmbedder(nn.Module):
    """Flattened actions (..., in_dim) -> (..., D)."""

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.mlp[0], self.mlp[2]):
            layer.reset_parameters()

    def forward(self, actions: Tensor) -> Tensor:
        return self.mlp(actions)


# ----------------------------------------------------------------------------------------------------------------------
# Transformer block
# ----------------------------------------------------------------------------------------------------------------------


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """x (B, T, L, D), shift/scale (B, T, 1, D): per-frame affine modulation."""
    return x * (1 + scale) + shift


class Attention(nn.Module):
    """Multi-head self-attention over (B, N, D) with an optional boolean mask (N, N), True = may attend."""

    def __init__(self, hidden_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.proj = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class DiTBlock(nn.Module):
    """(B, T, L, D) tokens + (B, T, D) per-frame conditioning -> (B, T, L, D)."""

    def __init__(self, hidden_dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_dim, num_heads)
        self.norm2 = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        mlp_dim = int(hidden_dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_dim, mlp_dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_dim, hidden_dim)
        )
        self.adaln = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, 6 * hidden_dim))

    def forward(self, x: Tensor, cond: Tensor, mask: Tensor | None) -> Tensor:
        t = x.shape[1]
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaln(cond).unsqueeze(2).chunk(6, dim=-1)
        h = rearrange(modulate(self.norm1(x), shift1, scale1), "b t l d -> b (t l) d")
        x = x + gate1 * rearrange(self.attn(h, mask), "b (t l) d -> b t l d", t=t)
        x = x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x


# ----------------------------------------------------------------------------------------------------------------------
# Final layers
# ----------------------------------------------------------------------------------------------------------------------


class FinalLayer(nn.Module):
    """(B, T, L, D) -> (B, T, L, p*p*C) patch velocities, modulated per frame."""

    def __init__(self, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6)
        self.adaln = nn.Sequential(nn.SiLU(), nn.Linear(hidden_dim, 2 * hidden_dim))
        self.linear = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shift, scale = self.adaln(cond).unsqueeze(2).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class StateHead(nn.Module):
    """Proprio head: tokens (B, T, L, D) + conditioning (B, T, D) -> states (B, T, chunk, S).

    Mean-pools each latent frame's tokens after the last block, so a frame's state only sees that frame's tokens
    (causal whenever the attention is)."""

    def __init__(self, hidden_dim: int, chunk_size: int, state_dim: int) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        self.norm = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, chunk_size * state_dim)
        )

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        pooled = self.norm(x).mean(dim=2)  # (B, T, D)
        out = self.mlp(torch.cat([pooled, cond], dim=-1))
        return rearrange(out, "b t (c s) -> b t c s", c=self.chunk_size)


# ----------------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------------


class DiTOutput(NamedTuple):
    velocity: Tensor  # (B, T, C, h, w)
    state: Tensor  # (B, T, chunk, S)


class DiT(nn.Module):
    """Latent DiT. See the module docstring for the conditioning contract."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, p = cfg.hidden_dim, cfg.patch_size
        self.patch_embed = nn.Linear(cfg.latent_channels * p * p, d)
        # Fixed sin-cos positions (not saved: recomputed from the config) for space and time, added together.
        self.register_buffer("spatial_pos", sincos_2d(cfg.latent_size // p, d), persistent=False)
        self.register_buffer(
            "temporal_pos", sincos_1d(torch.arange(cfg.max_latent_frames), d), persistent=False
        )
        self.time_embed = TimestepEmbedder(d)
        action_in = cfg.action_chunk_size * cfg.action_dim
        if cfg.action_injection == "global":
            action_in *= cfg.max_latent_frames - 1
        self.action_embed = ActionEmbedder(action_in, d) if cfg.action_injection != "none" else None
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final = FinalLayer(d, p * p * cfg.latent_channels)
        self.state_head = StateHead(d, cfg.action_chunk_size, cfg.state_dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for layer in (self.time_embed.mlp[0], self.time_embed.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: every residual branch starts as the identity and the output as zero, so the untrained model
        # is a stable function and conditioning is learned from there (DiT, section 3.2).
        for block in self.blocks:
            nn.init.zeros_(block.adaln[-1].weight)
            nn.init.zeros_(block.adaln[-1].bias)
        for layer in (self.final.adaln[-1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def attention_mask(self, num_frames: int, device: torch.device) -> Tensor | None:
        """None (bidirectional) or a boolean (N, N) mask letting tokens of frame i see frames <= i."""
        if self.cfg.attention == "bidirectional":
            return None
        frame_of_token = torch.arange(num_frames, device=device).repeat_interleave(self.cfg.tokens_per_frame)
        return frame_of_token[None, :] <= frame_of_token[:, None]

    def embed_actions(self, actions: Tensor, num_frames: int, num_context_frames: int) -> Tensor:
        """Actions (B, T_a, A) -> per-frame action embeddings (B, T, D), zero on context frames."""
        b = actions.shape[0]
        if actions.shape[-1] != self.cfg.action_dim:
            raise ValueError(
                f"actions must have action_dim={self.cfg.action_dim} features, got {actions.shape[-1]}"
            )
        chunks = chunk_actions(actions, num_frames, self.cfg.action_chunk_size)  # (B, T, c, A)
        is_predicted = torch.arange(num_frames, device=actions.device) >= max(num_context_frames, 1)
        if self.cfg.action_injection == "chunked":
            emb = self.action_embed(rearrange(chunks, "b t c a -> b t (c a)"))
            # Multiplying the embedding (not the input) by 0 gives context frames a true zero embedding; the MLP of
            # a zero chunk would not be zero because of its biases.
            return emb * is_predicted[None, :, None].to(emb.dtype)
        # global: the predicted frames' actions, zero-padded to the longest clip, embedded once for all frames.
        chunks = chunks * is_predicted[None, :, None, None].to(chunks.dtype)
        flat = rearrange(chunks[:, 1:], "b t c a -> b (t c a)")
        flat = F.pad(flat, (0, self.action_embed.mlp[0].in_features - flat.shape[1]))
        return self.action_embed(flat)[:, None].expand(b, num_frames, -1)

    def forward(self, x: Tensor, t: Tensor, actions: Tensor, num_context_frames: int) -> DiTOutput:
        """Predict velocity and state.

        Args:
            x: (B, T, C, h, w) latents; frames < num_context_frames are clean, the rest noised at time t.
            t: (B,) flow time of the predicted frames (context frames get t = 0), or (B, T) per frame as given.
            actions: (B, T_a, A) with T_a >= (T - 1) * action_chunk_size; ignored when action_injection="none".
            num_context_frames: number of leading clean latent frames (0 <= n <= T).
        Returns:
            DiTOutput(velocity (B, T, C, h, w), state (B, T, action_chunk_size, S)).
        """
        cfg = self.cfg
        b, num_frames = x.shape[:2]
        if x.ndim != 5 or tuple(x.shape[2:]) != (cfg.latent_channels, cfg.latent_size, cfg.latent_size):
            raise ValueError(
                f"latents must be (B, T, {cfg.latent_channels}, {cfg.latent_size}, {cfg.latent_size}), "
                f"got {tuple(x.shape)}"
            )
        if not 1 <= num_frames <= cfg.max_latent_frames:
            raise ValueError(
                f"clip has {num_frames} latent frames; this DiT supports 1..{cfg.max_latent_frames}"
            )
        if not 0 <= num_context_frames <= num_frames:
            raise ValueError(f"num_context_frames={num_context_frames} must be in [0, {num_frames}]")
        if t.ndim == 1:
            is_context = torch.arange(num_frames, device=x.device) < num_context_frames
            t = t[:, None].expand(b, num_frames).masked_fill(is_context[None], 0.0)
        if tuple(t.shape) != (b, num_frames):
            raise ValueError(f"t must be (B,) or (B, T) = ({b}, {num_frames}), got {tuple(t.shape)}")

        p = cfg.patch_size
        tokens = rearrange(x, "b t c (h p1) (w p2) -> b t (h w) (p1 p2 c)", p1=p, p2=p)
        tokens = (
            self.patch_embed(tokens)
            + self.spatial_pos[None, None]
            + self.temporal_pos[None, :num_frames, None]
        )
        cond = self.time_embed(t)  # (B, T, D)
        if self.action_embed is not None:
            cond = cond + self.embed_actions(actions, num_frames, num_context_frames)

        mask = self.attention_mask(num_frames, x.device)
        for block in self.blocks:
            tokens = block(tokens, cond, mask)

        state = self.state_head(tokens, cond)
        out = self.final(tokens, cond)  # (B, T, L, p*p*C)
        g = cfg.latent_size // p
        velocity = rearrange(out, "b t (h w) (p1 p2 c) -> b t c (h p1) (w p2)", h=g, w=g, p1=p, p2=p)
        return DiTOutput(velocity=velocity, state=state)
