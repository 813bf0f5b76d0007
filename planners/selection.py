"""Selection among scored proposals: pure numpy functions, tested against hand-made cases.

Scores are (B, N): one row per env of the batch, one column per proposal. A higher score is better. NaN scores
(a value model or simulator that produced garbage) count as the worst possible score, never as the best, and
ties go to the lowest index, so a selection is a deterministic function of its scores.
"""

from __future__ import annotations

import numpy as np


def _clean_scores(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"scores must be (B, N) with N >= 1, got shape {scores.shape}")
    return np.where(np.isnan(scores), -np.inf, scores)


def select_best(scores: np.ndarray) -> np.ndarray:
    """(B, N) scores -> (B,) int64 index of the best proposal per env; ties go to the lowest index, NaN loses."""
    return np.argmax(_clean_scores(scores), axis=1).astype(np.int64)  # argmax returns the first maximum


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(B, N) scores -> (B, k) int64 indices of the k best proposals per env, best first (ties: lowest index)."""
    scores = _clean_scores(scores)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be in [1, {scores.shape[1]}], got {k}")
    # A stable sort of the negated scores keeps equal scores in index order.
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)


def uniform_choice(rng: np.random.Generator, batch: int, num_proposals: int) -> np.ndarray:
    """(B,) int64 indices drawn uniformly from [0, num_proposals) with ``rng``: the 'uniform' baseline."""
    if batch < 0 or num_proposals < 1:
        raise ValueError(f"need batch >= 0 and num_proposals >= 1, got {batch}, {num_proposals}")
    return rng.integers(0, num_proposals, size=batch, dtype=np.int64)


def gather(proposals: np.ndarray, index: np.ndarray) -> np.ndarray:
    """proposals (B, N, K, A) and index (B,) -> the chosen chunks (B, K, A) (a copy)."""
    proposals = np.asarray(proposals)
    index = np.asarray(index, dtype=np.int64)
    if proposals.ndim != 4 or index.shape != (proposals.shape[0],):
        raise ValueError(
            f"need proposals (B, N, K, A) and index (B,), got {proposals.shape} and {index.shape}"
        )
    return proposals[np.arange(len(index)), index].copy()


def mask_nonfinite(scores: np.ndarray, proposals: np.ndarray) -> np.ndarray:
    """Scores (B, N) with -inf where a proposal (B, N, K, A) holds NaN or inf actions: never select those
    while a finite proposal exists."""
    finite = np.isfinite(np.asarray(proposals)).all(axis=(2, 3))  # (B, N)
    return np.where(finite, _clean_scores(scores), -np.inf)


__all__ = ["gather", "mask_nonfinite", "select_best", "top_k", "uniform_choice"]
