"""A pixel-space world model for CPUs: the next frame and state from the last few frames and one action, in one pass.

Why pixels and one pass: the dojo's objects are small (the agent is a 5.6 px disc, the T's arms 5.6 px wide at 96 px),
so a latent cell wider than them loses what decides success, and the simulator is deterministic, so one regression
pass stands in for a sampler. The design follows DIAMOND's small U-Net with adaptive group norm, on frames folded
space-to-depth (``pixel_unshuffle``) so that the convolutions run at 24x24 (``unshuffle=4``) while the output is
unfolded back to every pixel.

One step (``PixelWorldModel.step``)::

    frames (B, n, 3, H, W) float in [0, 1], the newest last      states (B, n, S), the agent state of each frame
    action (B, A): the action applied after the newest frame
    -> next frame (B, 3, H, W) = newest frame + predicted change, clamped to [0, 1]; next state (B, S)

Action conditioning, two paths:
- general (any action vector): the action relative to the newest state, with the last two state changes, goes
  through an MLP into every residual block's group-norm scale and shift (AdaGN);
- ``action_maps=True`` (robots whose actions are image positions, such as the dojo's PushT): the action target and
  the agent state are also drawn as Gaussian blobs, two extra input channels, so the model cannot ignore where
  the target is.
The next state comes from a small MLP head on the same inputs (the agent follows its target; the pixels of the
agent are predicted by the U-Net).

The pushed object's pose as state (``object_shape``, e.g. ``"tee"``; world_model/object_pose.py): the model also
carries the object's pose (x, y, theta) after the agent's state, so its states are (B, n, S + 3); a dynamics head
predicts the next pose, and the object is drawn at its current and next pose as two more input channels, so the
U-Net paints the object where the dynamics put it instead of averaging where it might be.

Moving objects, two ways to draw them:
- ``warp=False``: the next frame is the newest frame plus a predicted change. Where the motion is uncertain the
  change averages the outcomes, and a pushed object turns into overlapping ghosts that compound in closed loop.
- ``warp=True``: the U-Net also predicts, for every pixel, where in the newest frame its colour comes from (a
  displacement in pixels); the newest frame is resampled there (bilinear) before the change is added. Uncertain
  motion then moves a rigid object by an average amount and keeps it whole. The displacement head starts at zero,
  so a model with it still starts as copy-last, and it can be added to a trained model when fine-tuning.

One pass or a few sampling steps (``sampling_steps``):
- ``0`` (regression): one deterministic pass predicts the change; cheapest, but its prediction is the average of
  the outcomes it cannot tell apart, and averages blur.
- ``N >= 1`` (a flow-matching denoiser, as DIAMOND's few-step sampler): the U-Net also sees a noisy version of the
  change and the noise level t (rectified flow, t = 1 noise, t = 0 data) and predicts the clean change; the step
  starts from Gaussian noise and takes N deterministic (DDIM-like) steps down to t = 0, so a frame is one sharp
  outcome instead of their average. N passes per frame.

Shapes in comments: B batch, n context frames, H = W = image_size, u = unshuffle.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from world_model.object_pose import ObjectDynamics, check_shape, last_three, shape_parts, silhouettes


@dataclass
class PixelWorldModelConfig:
    """Architecture and normalisation of ``PixelWorldModel`` (saved in the checkpoint's config.json)."""

    image_size: int = 96
    action_dim: int = 2
    state_dim: int = 2
    num_context_frames: int = 3
    unshuffle: int = 4  # space-to-depth factor: the U-Net's first level runs at image_size / unshuffle
    channels: tuple[int, ...] = (32, 64, 96)  # U-Net levels, each half the resolution of the one before
    cond_dim: int = 64
    state_hidden: int = 64
    action_maps: bool = True  # draw the action target and the agent as Gaussian blobs (actions are positions)
    arena_size: float = 512.0  # action/state coordinates [0, arena_size) map onto the image (action_maps)
    blob_sigma: float = 1.5  # blob width in image pixels
    warp: bool = False  # also predict a per-pixel displacement and resample the newest frame with it
    sampling_steps: int = 0  # 0: one deterministic pass; N >= 1: a denoiser of the change, sampled in N steps
    object_shape: str = (
        ""  # "tee": also carry the pushed object's pose and draw it (world_model/object_pose.py)
    )
    object_hidden: int = 256  # width of the object dynamics head
    # Normalisation, set from the training data: relative action (action - state), state, one step's change.
    action_offset: float = 0.0
    action_scale: float = 1.0
    state_offset: float = 0.0
    state_scale: float = 1.0
    delta_scale: float = 1.0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.num_context_frames < 1:
            raise ValueError(f"num_context_frames must be >= 1, got {self.num_context_frames}")
        if not self.channels or any(c < 8 or c % 8 for c in self.channels):
            raise ValueError(f"channels must be multiples of 8 (group norm), got {self.channels}")
        if self.sampling_steps < 0:
            raise ValueError(
                f"sampling_steps must be >= 0 (0: one deterministic pass), got {self.sampling_steps}"
            )
        if self.unshuffle < 1:
            raise ValueError(f"unshuffle must be >= 1, got {self.unshuffle}")
        side = self.unshuffle * 2 ** (len(self.channels) - 1)
        if self.image_size % side:
            raise ValueError(
                f"image_size={self.image_size} must be divisible by unshuffle * 2**(levels-1) = {side}"
            )
        if self.action_maps and (self.action_dim != 2 or self.state_dim != 2):
            raise ValueError("action_maps draws 2-D positions: it needs action_dim = state_dim = 2")
        check_shape(self.object_shape)
        if self.object_shape and (self.action_dim != 2 or self.state_dim != 2):
            raise ValueError("object_shape pushes with a 2-D agent: it needs action_dim = state_dim = 2")
        if min(self.action_scale, self.state_scale, self.delta_scale, self.arena_size, self.blob_sigma) <= 0:
            raise ValueError("scales, arena_size and blob_sigma must be positive")

    @property
    def stochastic(self) -> bool:
        return self.sampling_steps > 0

    @property
    def has_object(self) -> bool:
        return bool(self.object_shape)

    @property
    def full_state_dim(self) -> int:
        """What the model carries per frame: the agent's state, then the object's pose with ``object_shape``."""
        return self.state_dim + (3 if self.has_object else 0)

    @property
    def in_channels(self) -> int:
        """Channels before unshuffling: n RGB frames, two blob maps with action_maps, two silhouettes with an
        object, the noisy change if sampled."""
        maps = (2 if self.action_maps else 0) + (2 if self.has_object else 0)
        return 3 * self.num_context_frames + maps + (3 if self.stochastic else 0)

    @property
    def cond_inputs(self) -> int:
        """The conditioning vector: relative action, and the last two state changes."""
        return self.action_dim + 2 * self.state_dim


# ----------------------------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------------------------


class AdaGroupNorm(nn.Module):
    """Group norm whose scale and shift come from the conditioning vector (zero-initialised: plain GN at start)."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(8, channels // 4), channels, affine=False)
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.proj(cond)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        return self.norm(x) * (1 + scale) + shift


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = AdaGroupNorm(cin, cond_dim)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = AdaGroupNorm(cout, cond_dim)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity (its skip)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x, cond)))
        h = self.conv2(F.silu(self.norm2(h, cond)))
        return self.skip(x) + h


# ----------------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------------


class PixelWorldModel(nn.Module):
    """The network and its one-step prediction (see the module docstring). A plain ``nn.Module``: training
    (world_model/lit_pixel_model.py) wraps it, ``PixelImaginedEnv`` and checkpoints use it directly."""

    def __init__(self, cfg: PixelWorldModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        u, ch, d = cfg.unshuffle, cfg.channels, cfg.cond_dim
        time_input = 1 if cfg.stochastic else 0  # the noise level t joins the conditioning vector
        self.cond = nn.Sequential(
            nn.Linear(cfg.cond_inputs + time_input, d), nn.SiLU(), nn.Linear(d, d), nn.SiLU()
        )
        self.stem = nn.Conv2d(cfg.in_channels * u * u, ch[0], 1)  # per cell: mixes the cell's pixels
        self.down = nn.ModuleList(ResBlock(ch[max(i - 1, 0)], c, d) for i, c in enumerate(ch))
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in ch[:-1])
        self.mid = ResBlock(ch[-1], ch[-1], d)
        self.up = nn.ModuleList(ResBlock(ch[i + 1] + ch[i], ch[i], d) for i in range(len(ch) - 1))
        self.out_norm = nn.GroupNorm(min(8, ch[0] // 4), ch[0])
        self.out = nn.Conv2d(ch[0], 3 * u * u, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # predicts "no change" at start: copy-last is where training begins
        nn.init.zeros_(self.out.bias)
        if cfg.warp:
            self.displacement = nn.Conv2d(ch[0], 2 * u * u, 3, padding=1)  # (dx, dy) in pixels, per pixel
            nn.init.zeros_(self.displacement.weight)
            nn.init.zeros_(self.displacement.bias)
        self.state_head = nn.Sequential(
            nn.Linear(cfg.cond_inputs, cfg.state_hidden),
            nn.SiLU(),
            nn.Linear(cfg.state_hidden, cfg.state_hidden),
            nn.SiLU(),
            nn.Linear(cfg.state_hidden, cfg.state_dim),
        )
        if cfg.has_object:
            self.object_dynamics = ObjectDynamics(cfg.object_hidden)
            self.register_buffer("_parts", shape_parts(cfg.object_shape), persistent=False)
        self.register_buffer("_grid", self._pixel_grid(cfg.image_size), persistent=False)

    @staticmethod
    def _pixel_grid(size: int) -> Tensor:
        centres = torch.arange(size, dtype=torch.float32) + 0.5
        return torch.stack(torch.meshgrid(centres, centres, indexing="xy"))  # (2, H, W): x, y of each pixel

    def conditioning_inputs(self, states: Tensor, action: Tensor) -> Tensor:
        """(B, n, S [+ 3]) states and (B, A) action -> (B, A + 2S): normalised relative action and the agent's
        last two changes."""
        c = self.cfg
        states = states[..., : c.state_dim]
        newest = states[:, -1]
        previous = states[:, -2] if states.shape[1] > 1 else newest
        before = states[:, -3] if states.shape[1] > 2 else previous
        relative = (action - newest[:, : c.action_dim] - c.action_offset) / c.action_scale
        return torch.cat(
            [relative, (newest - previous) / c.delta_scale, (previous - before) / c.delta_scale], 1
        )

    def blobs(self, points: Tensor) -> Tensor:
        """(B, P, 2) arena positions -> (B, P, H, W) Gaussian blobs at their image positions."""
        c = self.cfg
        pixels = points * (c.image_size / c.arena_size)  # (B, P, 2)
        d2 = (self._grid[None, None] - pixels[..., None, None]).square().sum(2)  # (B, P, H, W)
        return torch.exp(-d2 / (2 * c.blob_sigma**2))

    def resample(self, frame: Tensor, displacement: Tensor) -> Tensor:
        """frame (B, 3, H, W), displacement (B, 2, H, W) in pixels -> (B, 3, H, W): each pixel takes the colour at
        its own centre plus its displacement (bilinear; outside the image, the nearest border pixel)."""
        where = self._grid[None] + displacement  # (B, 2, H, W): x, y in pixels
        grid = (where * (2.0 / self.cfg.image_size) - 1).permute(0, 2, 3, 1)  # (B, H, W, 2) in [-1, 1]
        return F.grid_sample(frame, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def context_inputs(
        self, frames: Tensor, states: Tensor, action: Tensor, next_pose: Tensor | None = None
    ) -> Tensor:
        """frames (B, n, 3, H, W) in [0, 1], states (B, n, S [+ 3]), action (B, A), the object's next pose (B, 3)
        with an object -> (B, 3n [+ 2] [+ 2], H, W): the U-Net's image input before the noisy change (the blobs of
        the action target and the agent with action_maps; the object at its newest and next pose)."""
        c = self.cfg
        x = rearrange(frames, "b n c h w -> b (n c) h w")
        if c.action_maps:
            x = torch.cat([x, self.blobs(torch.stack([action, states[:, -1, : c.state_dim]], 1))], 1)
        if c.has_object:
            if next_pose is None:
                raise ValueError("a model with object_shape draws the object's next pose: pass next_pose")
            poses = torch.stack([states[:, -1, c.state_dim :], next_pose], 1)  # (B, 2, 3)
            x = torch.cat([x, silhouettes(poses, self._parts, self._grid, c.arena_size)], 1)
        return x

    def next_pose(self, states: Tensor, action: Tensor) -> Tensor:
        """The object dynamics head: states (B, n, S + 3) and action (B, A) -> the object's next pose (B, 3)."""
        s = self.cfg.state_dim
        return self.object_dynamics(last_three(states[..., :s]), last_three(states[..., s:]), action)

    def predict_frame(
        self,
        image: Tensor,
        newest: Tensor,
        inputs: Tensor,
        noisy: Tensor | None = None,
        t: Tensor | None = None,
    ) -> Tensor:
        """One U-Net pass -> the predicted next frame (B, 3, H, W) in [0, 1], before clamping it is newest + change.

        image: ``context_inputs`` (B, C, H, W); newest: the newest frame (B, 3, H, W); inputs: the conditioning
        vector (B, A + 2S). Stochastic models also take the noisy change (B, 3, H, W) and its noise level t (B,)
        and predict the clean change."""
        c = self.cfg
        if c.stochastic:
            if noisy is None or t is None:
                raise ValueError("a stochastic model needs the noisy change and its noise level t")
            image = torch.cat([image, noisy], 1)
            inputs = torch.cat([inputs, t[:, None]], 1)
        cond = self.cond(inputs)
        h = self.stem(F.pixel_unshuffle(image * 2 - 1, c.unshuffle))  # (B, ch0, H/u, W/u)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, cond)
            if i < len(self.downsample):
                skips.append(h)
                h = self.downsample[i](h)
        h = self.mid(h, cond)
        for i in reversed(range(len(self.up))):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = self.up[i](torch.cat([h, skips[i]], 1), cond)
        h = F.silu(self.out_norm(h))  # (B, ch0, H/u, W/u)
        change = F.pixel_shuffle(self.out(h), c.unshuffle)  # (B, 3, H, W)
        if c.warp:
            newest = self.resample(newest, F.pixel_shuffle(self.displacement(h), c.unshuffle))
        return newest + change

    def next_state(self, inputs: Tensor, newest_state: Tensor) -> Tensor:
        """The state head: conditioning vector (B, A + 2S) and newest state (B, S [+ 3]) -> the agent's next state
        (B, S)."""
        return newest_state[:, : self.cfg.state_dim] + self.state_head(inputs) * self.cfg.delta_scale

    def step(
        self,
        frames: Tensor,
        states: Tensor,
        action: Tensor,
        generator: torch.Generator | None = None,
        next_pose: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One step: frames (B, n, 3, H, W) in [0, 1], states (B, n, S [+ 3]), action (B, A) ->
        (next frame (B, 3, H, W) in [0, 1], next state (B, S [+ 3])). Stochastic models draw their starting noise
        from ``generator`` (torch's global one if None). With an object, ``next_pose`` (B, 3) overrides the
        dynamics head's (training draws the data's poses)."""
        c = self.cfg
        inputs = self.conditioning_inputs(states, action)  # (B, A + 2S)
        state = self.next_state(inputs, states[:, -1])  # (B, S)
        if c.has_object:
            next_pose = self.next_pose(states, action) if next_pose is None else next_pose
            state = torch.cat([state, next_pose], 1)  # (B, S + 3)
        image, newest = self.context_inputs(frames, states, action, next_pose), frames[:, -1]
        if not c.stochastic:
            frame = self.predict_frame(image, newest, inputs)
        else:
            b = frames.shape[0]
            noisy = torch.randn(newest.shape, generator=generator, device=newest.device, dtype=newest.dtype)
            times = torch.linspace(1.0, 0.0, c.sampling_steps + 1).tolist()
            for t, t_next in zip(times[:-1], times[1:], strict=True):
                level = torch.full((b,), t, device=newest.device, dtype=newest.dtype)
                clean = self.predict_frame(image, newest, inputs, noisy, level) - newest  # (B, 3, H, W)
                noise = (noisy - (1 - t) * clean) / t  # the noise this estimate implies
                noisy = t_next * noise + (1 - t_next) * clean
            frame = newest + noisy
        return frame.clamp(0, 1), state


__all__ = ["PixelWorldModel", "PixelWorldModelConfig"]
