"""Small building blocks shared by the project's own networks (value model, pixel policy)."""

from __future__ import annotations

from torch import nn


def make_conv_stack(in_channels: int, channels: tuple[int, ...] | list[int]) -> nn.Sequential:
    """Stride-2 3x3 convolutions, each followed by GroupNorm and SiLU: (B, C, H, W) -> (B, channels[-1], H/2^n, W/2^n).

    No pooling at the end: callers flatten, which keeps where things are in the frame.
    """
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
            nn.GroupNorm(min(8, out_channels), out_channels),
            nn.SiLU(),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)
