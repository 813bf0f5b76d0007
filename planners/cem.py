"""CEM refinement of best-of-N proposals through the world model.

    refiner = CEMRefiner(ImaginationScorer(env, value_model.score), CEMConfig(iterations=2, samples=16))
    planner = Planner("cem", sampler, refiner.scorer, chunk_size=8, refiner=refiner)

The cross-entropy method on action chunks, started from the ensemble's proposals (already scored by the planner):
each iteration fits a diagonal Gaussian per env (per action and dimension, (B, K, A)) to the ``elites`` best
candidates scored so far, draws ``samples`` new chunks from it, clips them to the action bounds, and scores them with
the same scorer (imagination + value model). The result is every scored candidate (the proposals first), so the
planner executes the best of everything that was evaluated: never a chunk that was not scored, and never a worse
value-model score than best-of-N on the same proposals. ``min_std`` keeps the search from collapsing onto the
elites when the proposals agree (a deterministic ensemble gives few distinct chunks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dojo_bench.core.errors import DojoError
from planners.selection import mask_nonfinite, top_k


@dataclass
class CEMConfig:
    """iterations: refit rounds; samples: new chunks per env and round; elites: best candidates the Gaussian is
    fitted to; min_std: floor of its standard deviation (env units); low / high: action bounds (the dojo's arena,
    where the real world clips anyway), None to leave samples unclipped."""

    iterations: int = 2
    samples: int = 16
    elites: int = 4
    min_std: float = 4.0
    low: float | None = 0.0
    high: float | None = 512.0

    def __post_init__(self) -> None:
        for name in ("iterations", "samples", "elites"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise DojoError(f"cem {name} must be a positive integer, got {value!r}")
        if not self.min_std >= 0:
            raise DojoError(f"cem min_std must be >= 0, got {self.min_std}")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise DojoError(f"cem bounds must satisfy low < high, got {self.low} and {self.high}")


class CEMRefiner:
    """``refine(observation, proposals (B, N, K, A), scores (B, N), seed) -> (candidates (B, N + I*S, K, A),
    scores (B, N + I*S))``: the proposals and every CEM sample, with their scores (module doc)."""

    def __init__(self, scorer, cfg: CEMConfig | None = None) -> None:
        self.scorer = scorer
        self.cfg = cfg or CEMConfig()

    def refine(
        self, observation: dict[str, np.ndarray], proposals: np.ndarray, scores: np.ndarray, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        candidates = np.asarray(proposals, dtype=np.float32)
        scores = mask_nonfinite(scores, candidates)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xCE])
        b = candidates.shape[0]
        for iteration in range(cfg.iterations):
            elite_index = top_k(scores, min(cfg.elites, candidates.shape[1]))  # (B, E)
            elites = candidates[np.arange(b)[:, None], elite_index]  # (B, E, K, A)
            finite = np.isfinite(elites)
            mean = np.where(finite, elites, 0).sum(1) / np.maximum(finite.sum(1), 1)  # (B, K, A)
            spread = np.sqrt(
                (np.where(finite, elites - mean[:, None], 0) ** 2).sum(1) / np.maximum(finite.sum(1), 1)
            )
            std = np.maximum(spread, cfg.min_std)
            noise = rng.standard_normal((b, cfg.samples, *mean.shape[1:]))
            samples = (mean[:, None] + std[:, None] * noise).astype(np.float32)  # (B, S, K, A)
            if cfg.low is not None or cfg.high is not None:
                samples = np.clip(samples, cfg.low, cfg.high)
            sample_scores = mask_nonfinite(
                self.scorer.score(observation, samples, int(seed) + 1 + iteration), samples
            )
            candidates = np.concatenate([candidates, samples], axis=1)
            scores = np.concatenate([scores, sample_scores], axis=1)
        return candidates, scores


__all__ = ["CEMConfig", "CEMRefiner"]
