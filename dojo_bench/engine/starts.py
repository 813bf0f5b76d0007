"""Initial observations from the episode starts of a LeRobot dataset (``dojo-bench evaluate starts=DIR``).

A team with a real robot starts imagined rollouts from the first frames of its own recorded episodes instead of
dojo seeds: "seed" i of the evaluation is episode i of the dataset. ``DatasetStarts(seeds)`` returns the batch of
start observations in the env layout (``observation.image`` (B, H, W, 3) uint8, ``observation.state`` (B, S)),
the callable ``rollout.ImaginedWorld`` takes as ``initial``.

A dataset recorded in the dojo also knows how to put the real world in the same start state: its
``meta/dojo.json`` keeps each episode's reset seed. ``DojoStarts`` wraps the real world so that evaluation seed i
resets to episode i's recorded seed, and checks, at every reset, that the real start frame is the recorded one
(a dataset from another task, or edited, is refused in one line instead of being compared with other starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dojo_bench.core.errors import DojoError
from dojo_bench.core.files import read_input_json
from dojo_bench.core.keys import DOJO_META_FILE, OBS_IMAGE, OBS_STATE
from world_model.data import ClipDataConfig, ClipDataset

# A re-simulated start frame matches the recorded one when under 1% of its pixels are off by more than 64 levels.
# Measured on 10 validation episodes: the same start 0.08% at most (video encoding, ~38 dB PSNR), another start
# 4.2% at least. A mean difference does not separate them: the object covers a few percent of a white frame.
START_PIXEL_LEVELS = 64
START_PIXEL_SHARE = 0.01


class DatasetStarts:
    """Start observations of the episodes of one LeRobot dataset (first frame and state of each episode)."""

    def __init__(self, root: str | Path, image_size: int = 96, cache_dir: str | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DojoError(f"starts={self.root} does not exist or is not a directory")
        config = ClipDataConfig(
            train_roots=[str(self.root)], clip_length=2, temporal_compression=1, image_size=image_size,
            cache_dir=cache_dir,
        )  # fmt: skip
        self.dataset = ClipDataset(
            self.root, config
        )  # checks the keys and the image size, decodes the frame cache
        self.first = np.array([a for a, _ in self.dataset.episode_bounds], dtype=np.int64)

    @property
    def num_episodes(self) -> int:
        return len(self.first)

    def check_seeds(self, seeds: Sequence[int]) -> None:
        bad = [s for s in seeds if not 0 <= int(s) < self.num_episodes]
        if bad:
            raise DojoError(
                f"starts={self.root} has {self.num_episodes} episodes but seeds {bad[0]}..{max(bad)} were asked "
                f"for: lower seeds= (episode i starts seed i)"
            )

    def __call__(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        self.check_seeds(seeds)
        index = self.first[np.asarray(seeds, dtype=np.int64)]
        return {
            OBS_IMAGE: np.asarray(self.dataset.frames[index]),  # (B, H, W, 3) uint8
            OBS_STATE: self.dataset.states[index].astype(np.float32),  # (B, S)
        }


def dojo_reset_seeds(root: str | Path) -> list[int]:
    """The reset seed of each episode of a dataset recorded by ``dojo-bench data`` (meta/dojo.json)."""
    path = Path(root) / DOJO_META_FILE
    if not path.is_file():
        raise DojoError(
            f"starts={root} was not recorded in the dojo (no {DOJO_META_FILE}): the real dojo cannot start from its "
            "episodes; pass real_csv= with your real success rates"
        )
    meta = read_input_json(path)
    if meta.get("kind") == "counterfactual":
        raise DojoError(
            f"starts={root} is a counterfactual split; use a robot dataset's train/ or validation/"
        )
    return [int(record["seed"]) for record in meta["episodes"]]


class DojoStarts:
    """A real ``World`` whose seed i starts from episode i of a dojo dataset (see the module docstring)."""

    def __init__(self, world: Any, starts: DatasetStarts) -> None:
        self.world = world
        self.starts = starts
        self.reset_seeds = dojo_reset_seeds(starts.root)
        if len(self.reset_seeds) != starts.num_episodes:
            raise DojoError(
                f"starts={starts.root}: {DOJO_META_FILE} lists {len(self.reset_seeds)} episodes, the dataset has "
                f"{starts.num_episodes}"
            )
        self.name = world.name
        self.action_dim = world.action_dim
        self.chunk_multiple = world.chunk_multiple

    def reset(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        recorded = self.starts(seeds)
        observation = self.world.reset([self.reset_seeds[int(s)] for s in seeds])
        off = np.abs(observation[OBS_IMAGE].astype(np.int16) - recorded[OBS_IMAGE].astype(np.int16)).max(-1)
        share = (off > START_PIXEL_LEVELS).mean(axis=(1, 2))  # (B,)
        if (share > START_PIXEL_SHARE).any():
            seed = int(np.asarray(seeds)[share.argmax()])
            raise DojoError(
                f"starts={self.starts.root}: the dojo's start of episode {seed} differs from the recorded frame "
                f"({share.max():.1%} of pixels): recorded with another task? pass task= or real_csv="
            )
        return observation

    def step(self, action_chunk, active=None):
        return self.world.step(action_chunk, active)

    @property
    def render_frames(self) -> bool:  # media.RenderOnly switches rendering per batch through this
        return self.world.render_frames

    @render_frames.setter
    def render_frames(self, value: bool) -> None:
        self.world.render_frames = value
