"""Fakes shared by the rollout and result-store tests: a scripted chunk policy and a fake imagined env.

Importable from any test because pyproject's pytest ``pythonpath`` adds tests/ to sys.path.
"""

from __future__ import annotations

import numpy as np
import torch

from dojo_bench.core.keys import OBS_IMAGE, OBS_STATE
from dojo_bench.engine.rollout import ImaginedWorld


class ScriptedPolicy:
    """LoadedPolicy-like: ``predict_chunk`` returns ``script(call, observation)`` as a (B, chunk, 2) tensor."""

    action_dim = 2

    def __init__(self, name="scripted", chunk_size=8, script=None):
        self.name = name
        self.chunk_size = chunk_size
        self.script = script or (
            lambda call, obs: obs[OBS_STATE][:, None].repeat(1, self.chunk_size, 1) + 1.0
        )
        self.calls = 0
        self.resets = 0

    def reset(self):
        self.resets += 1

    def predict_chunk(self, observation):
        assert observation[OBS_IMAGE].dtype == torch.float32 and observation[OBS_IMAGE].shape[1] == 3
        chunk = self.script(self.calls, observation)
        self.calls += 1
        return chunk


class FakeImaginedEnv:
    """ImaginedEnv's face: every executed action brightens the frame by 10 (progress = brightness / 255)."""

    action_dim = 2
    chunk_size = 4

    def reset(self, observations, seed=None):
        self.level = np.zeros(len(observations[OBS_STATE]), dtype=np.int64)
        self.state = np.asarray(observations[OBS_STATE], dtype=np.float32).copy()
        self.received = []
        return self._obs()

    def step(self, action_chunk):
        action_chunk = np.asarray(action_chunk)
        assert np.isfinite(action_chunk).all(), "the engine must never send non-finite actions to a world"
        b, k, _ = action_chunk.shape
        assert k % self.chunk_size == 0
        self.received.append(action_chunk.copy())
        frames = np.zeros((b, k, 96, 96, 3), dtype=np.uint8)
        for j in range(k):
            self.level += 10
            frames[:, j] = np.minimum(self.level, 255)[:, None, None, None]
        self.state = action_chunk[:, -1].astype(np.float32)
        return self._obs(), {"frames": frames, "states": action_chunk.astype(np.float32), "steps": 0}

    def _obs(self):
        b = len(self.state)
        image = np.broadcast_to(
            np.minimum(self.level, 255).astype(np.uint8)[:, None, None, None], (b, 96, 96, 3)
        )
        return {OBS_IMAGE: image.copy(), OBS_STATE: self.state.copy()}


def fake_initial(seeds):
    b = len(seeds)
    return {
        OBS_IMAGE: np.zeros((b, 96, 96, 3), dtype=np.uint8),
        OBS_STATE: np.array([[float(s), 100.0] for s in seeds], dtype=np.float32),
    }


def brightness(frames):
    return frames.reshape(len(frames), -1).mean(axis=1) / 255.0


def imagined(env=None):
    return ImaginedWorld(env or FakeImaginedEnv(), fake_initial)


def interrupt_run(out, parts: int | None = None):
    """Make the finished run in ``out`` look interrupted: run.json back to "running" and, when ``parts`` is given
    (the number of result parts the run must hold), its last batch of episodes lost."""
    import json

    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "status": "running"}))
    if parts is not None:
        written = sorted((out / "episodes").glob("part-*.parquet"))
        assert len(written) == parts
        written[-1].unlink()
