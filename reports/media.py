"""Rollout strips for the report: stored frames -> animated GIF ``data:`` URIs (PIL), real and imagined side by side.

GIFs play in every browser with no script and no codec, and a ``data:`` URI keeps the page self-contained.
Inputs are the arrays of ``dojo_bench.engine.media`` files (frames (T, H, W, 3) uint8); nothing is recomputed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MAX_FRAMES = 60  # per GIF: keeps a policy page with several strips in the low megabytes
FRAME_MS = 120
SCALE = 2  # 96 px frames are small on a screen
GAP = 6  # pixels between the two panels


def load_strip(path: str | Path) -> dict[str, np.ndarray] | None:
    """The arrays of one media file, or None when it is missing or unreadable (a report shows what exists)."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError):
        return None


def side_by_side(panels: Sequence[np.ndarray | None]) -> np.ndarray:
    """Panels of frames (T_i, H_i, W_i, 3) -> one strip (T, H, W, 3): each panel resized to a common height, the
    shorter ones holding their last frame, a missing panel (None) grey."""
    present = [p for p in panels if p is not None and len(p)]
    if not present:
        raise ValueError("side_by_side needs at least one non-empty panel")
    height = max(p.shape[1] for p in present) * SCALE
    length = max(len(p) for p in present)
    columns = []
    for panel in panels:
        if panel is None or not len(panel):
            columns.append(np.full((length, height, height, 3), 200, np.uint8))
            continue
        width = round(panel.shape[2] * height / panel.shape[1])
        resized = np.stack([_resize(frame, width, height) for frame in panel])
        if len(resized) < length:
            resized = np.concatenate([resized, np.repeat(resized[-1:], length - len(resized), axis=0)])
        columns.append(resized)
    gap = np.full((length, height, GAP, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for column in columns:
        parts.extend([column, gap])
    return np.concatenate(parts[:-1], axis=2)


def gif_data_uri(frames: np.ndarray, frame_ms: int = FRAME_MS) -> str:
    """Frames (T, H, W, 3) uint8 -> an endlessly looping animated GIF as a ``data:image/gif;base64`` URI; more
    than ``MAX_FRAMES`` frames are thinned evenly (the last frame is kept)."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape}")
    if len(frames) > MAX_FRAMES:
        frames = frames[np.unique(np.linspace(0, len(frames) - 1, MAX_FRAMES).round().astype(int))]
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0,
                   optimize=False)  # fmt: skip
    return "data:image/gif;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def episode_strip(real: dict[str, Any] | None, imagined: dict[str, Any] | None) -> str | None:
    """Real | imagined frames of one episode as one animated GIF URI; None when neither has frames."""
    panels = [s["frames"] if s is not None and "frames" in s else None for s in (real, imagined)]
    if all(p is None or not len(p) for p in panels):
        return None
    return gif_data_uri(side_by_side(panels))


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.NEAREST))
