"""The pushed object's pose inside the pixel world model: its shape, its drawn silhouette and its dynamics.

Why: in closed loop, a pixel model that must keep the pushed T whole by itself averages the outcomes of a push it
cannot tell apart, and within about 20 steps of contact the T turns into a blob that no value model can read. With
``PixelWorldModelConfig.object_shape`` set, the model also carries the object's pose (x, y, theta, in the arena's
units and ``gt.object_pose``'s convention) as state:

- ``ObjectDynamics``, a small MLP, predicts the next pose from the pose's last two changes, the agent's position,
  last two moves and the action, all in the object's own frame (a push looks the same wherever the T lies);
- ``silhouettes`` draws the object at its current and next pose as two soft masks, extra input channels of the
  U-Net, so the U-Net paints the T where the dynamics put it instead of averaging where it might be.

The dynamics head trains on states alone (``fit_object_dynamics``: thousands of long unrolls a minute on a CPU, no
frames decoded); the U-Net learns to paint the silhouettes from the data's poses. At ``reset`` the pose comes from
the observation's ``gt.object_pose`` when the world provides it, else from the probe (world_model/probe.py) reading
the frame.

Shapes in comments: B batch, P parts, V vertices per part, H = W image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

# Convex parts in the body frame (arena units), as gym-pusht builds its T: a 120 x 30 bar and a 30 x 90 stem.
SHAPES: dict[str, tuple[tuple[tuple[float, float], ...], ...]] = {
    "tee": (
        ((-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (-60.0, 30.0)),
        ((-15.0, 30.0), (15.0, 30.0), (15.0, 120.0), (-15.0, 120.0)),
    ),
}

# Typical size of one step's pose change, and of the agent's offsets from the object (arena units, radians).
POSITION_STEP, ANGLE_STEP, OFFSET_SCALE, AGENT_STEP = 5.0, 0.05, 100.0, 10.0
POSE_SCALE = (POSITION_STEP, POSITION_STEP, ANGLE_STEP)


def check_shape(name: str) -> None:
    if name and name not in SHAPES:
        raise ValueError(
            f"object_shape must be '' (no object state) or one of {sorted(SHAPES)}, got {name!r}"
        )


def shape_parts(name: str) -> Tensor:
    """(P, V, 2) the shape's convex parts, each counter-clockwise in the body frame (y down, as the arena)."""
    parts = torch.tensor(SHAPES[name], dtype=torch.float32)
    x, y = parts[..., 0], parts[..., 1]
    area = (x * y.roll(-1, 1) - x.roll(-1, 1) * y).sum(1)  # twice the signed area of each part
    return torch.where((area < 0)[:, None, None], parts.flip(1), parts)


def shape_centroid(name: str) -> tuple[float, float]:
    """The area centroid of the shape in its body frame: where the centroid of its pixels lies."""
    parts = shape_parts(name).numpy()
    areas = np.array([abs(_area(p)) for p in parts])
    centres = np.array([p.mean(0) for p in parts])  # the parts are parallelograms (rectangles here)
    cx, cy = (areas[:, None] * centres).sum(0) / areas.sum()
    return float(cx), float(cy)


def _area(p: np.ndarray) -> float:
    return 0.5 * float((p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1]).sum())


def to_object_frame(vectors: Tensor, angle: Tensor) -> Tensor:
    """(B, 2) vectors in the arena -> (B, 2) in the frame of an object turned by ``angle`` (B,)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([c * vectors[:, 0] + s * vectors[:, 1], -s * vectors[:, 0] + c * vectors[:, 1]], 1)


def from_object_frame(vectors: Tensor, angle: Tensor) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([c * vectors[:, 0] - s * vectors[:, 1], s * vectors[:, 0] + c * vectors[:, 1]], 1)


def silhouettes(
    poses: Tensor, parts: Tensor, grid: Tensor, arena_size: float, softness: float = 0.5
) -> Tensor:
    """Soft masks of the object: poses (B, K, 3) x, y, theta; parts (P, V, 2); grid (2, H, W) pixel centres in
    pixels -> (B, K, H, W) in [0, 1], 1 inside the object. The edge is a sigmoid ``softness`` pixels wide."""
    b, k = poses.shape[:2]
    h, w = grid.shape[1:]
    to_pixels = w / arena_size
    xs, ys = grid[0, 0] / to_pixels, grid[1, :, 0] / to_pixels  # (W,), (H,) pixel centres in arena units
    pose = poses.reshape(-1, 3)  # (BK, 3)
    c, s = torch.cos(pose[:, 2]), torch.sin(pose[:, 2])
    # into the body frame: local = (point - origin) @ into, the rotation by -theta as a matrix on row vectors
    into = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (BK, 2, 2)
    p, v = parts.shape[:2]
    start, end = parts, parts.roll(-1, 1)  # (P, V, 2) each edge's two ends, counter-clockwise
    edge = end - start
    normal = torch.stack([edge[..., 1], -edge[..., 0]], -1) / edge.norm(
        dim=-1, keepdim=True
    )  # (P, V, 2) outward
    # A point's distance to the inner side of an edge's line, reach - local . normal, is affine in the point:
    # a x + b y + const per (pose, edge), so it is one broadcast sum over the image's rows and columns.
    m = into @ normal.reshape(p * v, 2).T  # (BK, 2, PV): local @ normal = point @ m - origin @ m
    const = (normal * start).sum(-1).reshape(1, p * v) + (pose[:, None, :2] @ m)[:, 0]  # (BK, PV)
    rows = const[..., None] - m[:, 1, :, None] * ys  # (BK, PV, H)
    columns = m[:, 0, :, None] * xs  # (BK, PV, W)
    depth = (
        rows[..., :, None] - columns[..., None, :]
    )  # (BK, PV, H, W): positive on the inner side of each edge
    # inside a convex part: on the inner side of all its edges; the object: inside any part
    inside = depth.reshape(b * k, p, v, h, w).amin(2).amax(1)  # (BK, H, W)
    return torch.sigmoid(inside * (to_pixels / softness)).reshape(b, k, h, w)


class ObjectDynamics(nn.Module):
    """The next pose from the pose's last changes, the agent and the action, in the object's frame.

    forward(agents (B, 3, 2) the agent's last three positions, poses (B, 3, 3) the object's last three poses,
    oldest first, action (B, 2)) -> next pose (B, 3). The last layer starts at zero: the object keeps its pose."""

    inputs = 14

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(self.inputs, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 3),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def features(self, agents: Tensor, poses: Tensor, action: Tensor) -> Tensor:
        """(B, 14): offsets of the agent and the action from the object, the agent's last two moves and the
        object's last two changes, all in the object's frame and scaled to about one."""
        angle, origin = poses[:, -1, 2], poses[:, -1, :2]

        def local(v: Tensor, scale: float) -> Tensor:
            return to_object_frame(v, angle) / scale

        return torch.cat(
            [
                local(agents[:, -1] - origin, OFFSET_SCALE),
                local(action - origin, OFFSET_SCALE),
                local(agents[:, -1] - agents[:, -2], AGENT_STEP),
                local(agents[:, -2] - agents[:, -3], AGENT_STEP),
                local(poses[:, -1, :2] - poses[:, -2, :2], POSITION_STEP),
                ((poses[:, -1, 2] - poses[:, -2, 2]) / ANGLE_STEP)[:, None],
                local(poses[:, -2, :2] - poses[:, -3, :2], POSITION_STEP),
                ((poses[:, -2, 2] - poses[:, -3, 2]) / ANGLE_STEP)[:, None],
            ],
            1,
        )

    def forward(self, agents: Tensor, poses: Tensor, action: Tensor) -> Tensor:
        change = self.net(self.features(agents, poses, action))  # (B, 3) in the object's frame, scaled
        angle = poses[:, -1, 2]
        moved = poses[:, -1, :2] + from_object_frame(change[:, :2] * POSITION_STEP, angle)
        return torch.cat([moved, (angle + change[:, 2] * ANGLE_STEP)[:, None]], 1)


def last_three(x: Tensor) -> Tensor:
    """(B, n, D) -> (B, 3, D): the last three entries, the oldest repeated when n < 3 (no motion before it)."""
    while x.shape[1] < 3:
        x = torch.cat([x[:, :1], x], 1)
    return x[:, -3:]


def pose_error(predicted: Tensor, true: Tensor) -> Tensor:
    """(..., 3) poses -> (..., 3) the error in units of one step's typical change (the angle wrapped)."""
    scale = predicted.new_tensor(POSE_SCALE)
    diff = predicted - true
    angle = torch.atan2(torch.sin(diff[..., 2]), torch.cos(diff[..., 2]))
    return torch.cat([diff[..., :2], angle[..., None]], -1) / scale


def fit_object_dynamics(
    head: ObjectDynamics,
    episodes: Sequence[np.ndarray],
    *,
    steps: int,
    unroll: int = 16,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> float:
    """Train ``head`` on state trajectories alone: each episode (T, 2 + 3 + 2) holds the agent position, the object
    pose and the action per frame. Every step draws ``batch_size`` windows of 3 + ``unroll`` frames and unrolls the
    head on its own poses (the agent's recorded positions and actions drive it), with the gradient through the
    whole unroll; squared pose error in units of one step's change, cosine learning rate. Returns the last loss."""
    if steps < 1 or unroll < 1 or batch_size < 1:
        raise ValueError("steps, unroll and batch_size must be >= 1")
    length = 3 + unroll
    usable = [e for e in episodes if len(e) >= length]
    if not usable:
        longest = max((len(e) for e in episodes), default=0)
        raise ValueError(f"no episode has {length} frames for unrolls of {unroll} (longest: {longest})")
    weights = np.array([len(e) - length + 1 for e in usable], dtype=np.float64)
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate)
    was_training = head.training
    head.train()
    loss = torch.zeros(())
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        picks = rng.choice(len(usable), batch_size, p=weights)
        starts = [int(rng.integers(0, len(usable[i]) - length + 1)) for i in picks]
        clip = torch.from_numpy(
            np.stack([usable[i][s : s + length] for i, s in zip(picks, starts, strict=True)])
        )
        agents, poses, actions = (
            clip[..., :2],
            clip[..., 2:5],
            clip[..., 5:7],
        )  # (B, L, 2), (B, L, 3), (B, L, 2)
        window = poses[:, :3]
        loss = torch.zeros(())
        for k in range(unroll):
            t = 2 + k  # the newest frame
            nxt = head(agents[:, t - 2 : t + 1], window, actions[:, t])
            loss = loss + pose_error(nxt, poses[:, t + 1]).square().mean()
            window = torch.cat([window[:, 1:], nxt[:, None]], 1)
        loss = loss / unroll
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimizer.step()
        if progress is not None:
            progress(step, float(loss.detach()))
    head.train(was_training)
    return float(loss.detach())


def coverage(poses: np.ndarray, goal: Sequence[float], shape: str) -> np.ndarray:
    """(N, 3) object poses -> (N,) the fraction of the object at ``goal`` (x, y, theta) that it covers: the dojo's
    (gym-pusht's) coverage, computed on the same polygons. The parts of one pose do not overlap, so the covered
    area is the sum over pairs of parts of convex intersections."""
    import shapely  # the geometry library gym-pusht scores coverage with; only scorers need it

    parts = shape_parts(shape).numpy().astype(np.float64)  # (P, V, 2)

    def placed(pose: np.ndarray) -> np.ndarray:  # (N, 3) -> (N, P, V, 2) in the arena
        c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
        x = c[:, None, None] * parts[None, ..., 0] - s[:, None, None] * parts[None, ..., 1]
        y = s[:, None, None] * parts[None, ..., 0] + c[:, None, None] * parts[None, ..., 1]
        return np.stack([x + pose[:, None, None, 0], y + pose[:, None, None, 1]], -1)

    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    objects = shapely.polygons(placed(poses))  # (N, P)
    targets = shapely.polygons(placed(np.asarray(goal, dtype=np.float64)[None]))[0]  # (P,)
    covered = shapely.area(shapely.intersection(objects[:, :, None], targets[None, None, :])).sum((1, 2))
    return covered / shapely.area(targets).sum()


def pose_from_frames(images: np.ndarray, shape: str) -> np.ndarray:
    """(B, H, W, 3) uint8 frames -> (B, 3) the object's body pose read by the probe (its pixels' centroid and
    angle, the centroid moved back to the body origin); raises where a frame shows no object."""
    from world_model.probe import tee_angle, tee_centroid  # numpy only; the probe reads gym-pusht's colours

    if shape != "tee":
        raise ValueError(
            f"the probe reads only the T's pose, not {shape!r}: pass gt.object_pose in the observations"
        )
    centre, angle = tee_centroid(images), tee_angle(images)
    if np.isnan(centre).any() or np.isnan(angle).any():
        raise ValueError("the probe finds no T in a start frame: pass gt.object_pose in the observations")
    cx, cy = shape_centroid(shape)
    c, s = np.cos(angle), np.sin(angle)
    origin = centre - np.stack([c * cx - s * cy, s * cx + c * cy], 1)
    return np.concatenate([origin, angle[:, None]], 1).astype(np.float32)


__all__ = [
    "SHAPES",
    "ObjectDynamics",
    "check_shape",
    "coverage",
    "fit_object_dynamics",
    "last_three",
    "pose_error",
    "pose_from_frames",
    "shape_centroid",
    "shape_parts",
    "silhouettes",
]
