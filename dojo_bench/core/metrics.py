"""Metrics for ranking policies: success rates, sim-vs-real agreement, calibration, bootstrap intervals.

Everything here is a pure function of plain numbers (no torch), so it can be tested against hand-computed cases
and reused by any evaluation or report code.

Sections:
    1. Per-policy success rate with a Wilson score interval.
    2. Agreement between predicted (sim, S) and real (R) per-policy success: Pearson, Spearman, Kendall, MMRV.
    3. Calibration: mean absolute error, raw and after a linear fit on held-out policies.
    4. Bootstrap confidence intervals over episodes.

Conventions:
    * Agreement metrics take ``(sim, real)`` in that order. Correlations are symmetric, MMRV is not.
    * Correlations return ``float('nan')`` (no warning) when either input is constant: the correlation is
      undefined, and a ranking benchmark will hit that case whenever all policies succeed or all fail.
    * Bad input (length mismatch, too few points, non-finite values) raises ``ValueError`` with a message
      naming the argument and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = [
    "BootstrapCI",
    "RateSummary",
    "bootstrap_ci",
    "calibrated_threshold",
    "calibration_mae",
    "calibration_mae_fitted",
    "kendall",
    "mmrv",
    "pearson",
    "spearman",
    "success_rate",
    "wilson_interval",
]


# --------------------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------------------


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _as_1d_finite(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array, rejecting other shapes and NaN/inf."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values: {array.tolist()}")
    return array


def _as_pair(
    x: ArrayLike, y: ArrayLike, x_name: str, y_name: str, min_len: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two paired 1-D samples of equal length (at least ``min_len``)."""
    xa = _as_1d_finite(x, x_name)
    ya = _as_1d_finite(y, y_name)
    if xa.shape[0] != ya.shape[0]:
        raise ValueError(
            f"{x_name} and {y_name} must have the same length (one entry per policy), "
            f"got {xa.shape[0]} and {ya.shape[0]}"
        )
    if xa.shape[0] < min_len:
        raise ValueError(f"need at least {min_len} paired points, got {xa.shape[0]}")
    return xa, ya


def _is_constant(array: np.ndarray) -> bool:
    return bool(np.all(array == array[0]))


# --------------------------------------------------------------------------------------------------------------
# 1. Success rate with a Wilson interval
# --------------------------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    With ``p = successes / n`` and ``z`` the two-sided normal quantile for ``confidence``::

        centre = (p + z²/(2n)) / (1 + z²/n)
        half   = z / (1 + z²/n) · sqrt(p(1 − p)/n + z²/(4n²))

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at 0/n or n/n, which matters
    for policies that always fail or always succeed on a few episodes.

    Args:
        successes: Number of successful episodes, ``0 <= successes <= n``.
        n: Number of episodes, ``n >= 1``.
        confidence: Two-sided coverage in (0, 1).

    Returns:
        ``(low, high)`` with ``0 <= low <= p <= high <= 1``.

    Raises:
        ValueError: If ``n < 1``, ``successes`` is outside ``[0, n]`` or ``confidence`` is outside (0, 1).
    """
    if n < 1:
        raise ValueError(f"wilson_interval needs at least one episode (n >= 1), got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n]=[0, {n}], got {successes}")
    _check_confidence(confidence)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    z2_n = z * z / n
    centre = (p + z2_n / 2.0) / (1.0 + z2_n)
    half = z / (1.0 + z2_n) * math.sqrt(p * (1.0 - p) / n + z2_n / (4.0 * n))
    # At p=0 (p=1) the lower (upper) bound is exactly 0 (1) analytically; floating point can land a rounding error
    # away on either side, so pin it, and clip the general case into [0, 1].
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class RateSummary:
    """Success rate of one policy over ``n`` episodes with its Wilson interval ``[low, high]``."""

    rate: float
    n: int
    low: float
    high: float


def success_rate(successes: Sequence[bool] | ArrayLike, confidence: float = 0.95) -> RateSummary:
    """Summarise per-episode success flags as a rate with a Wilson interval.

    Args:
        successes: One flag per episode; bools or 0/1 numbers (anything else is rejected rather than silently
            thresholded, so a progress value passed by mistake fails loudly).
        confidence: Two-sided coverage of the interval.

    Raises:
        ValueError: On an empty sequence or values other than 0/1.
    """
    flags = np.asarray(successes)
    if flags.ndim != 1:
        raise ValueError(f"successes must be one-dimensional (one flag per episode), got shape {flags.shape}")
    if flags.size == 0:
        raise ValueError("success_rate needs at least one episode, got an empty sequence")
    if not np.all((flags == 0) | (flags == 1)):
        raise ValueError(f"successes must be booleans or 0/1, got values {np.unique(flags).tolist()}")
    n = int(flags.size)
    k = int(np.count_nonzero(flags))
    low, high = wilson_interval(k, n, confidence)
    return RateSummary(rate=k / n, n=n, low=low, high=high)


# --------------------------------------------------------------------------------------------------------------
# 2. Agreement between sim (S) and real (R) per-policy success
# --------------------------------------------------------------------------------------------------------------


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation of two paired samples; ``nan`` if either is constant.

    Raises:
        ValueError: On length mismatch, fewer than 2 points, or non-finite values.
    """
    xa, ya = _as_pair(x, y, "x", "y")
    # Check constancy ourselves: scipy would return nan too, but with a ConstantInputWarning on every call,
    # which floods the log inside a bootstrap loop.
    if _is_constant(xa) or _is_constant(ya):
        return float("nan")
    return float(stats.pearsonr(xa, ya).statistic)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman rank correlation (ties get average ranks); ``nan`` if either input is constant.

    Raises:
        ValueError: On length mismatch, fewer than 2 points, or non-finite values.
    """
    xa, ya = _as_pair(x, y, "x", "y")
    if _is_constant(xa) or _is_constant(ya):
        return float("nan")
    return float(stats.spearmanr(xa, ya).statistic)


def kendall(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b (tie-corrected); ``nan`` if either input is constant.

    Raises:
        ValueError: On length mismatch, fewer than 2 points, or non-finite values.
    """
    xa, ya = _as_pair(x, y, "x", "y")
    if _is_constant(xa) or _is_constant(ya):
        return float("nan")
    return float(stats.kendalltau(xa, ya).statistic)


def mmrv(sim: ArrayLike, real: ArrayLike) -> float:
    """Mean maximum rank violation of a predicted ranking against the real one.

    ::

        MMRV(S, R) = (1/N) Σ_i max_j |R_i − R_j| · 1[(S_i > S_j) ≠ (R_i > R_j)]

    For each policy ``i`` it takes the worst pair it is mis-ordered in, weighted by how far apart the two policies
    really are, and averages over policies. 0 means the sim ordering agrees with the real one on every pair whose
    real rates differ; larger values mean costlier mistakes (in units of real success rate).

    Argument order matters — the metric is NOT symmetric: the penalty is the gap in ``real`` (second argument),
    so swapping a large real gap for a small one gives a different value. Always call ``mmrv(sim, real)``.

    Ties follow the formula literally: pairs tied in ``real`` cost nothing (their gap is 0); a pair tied in
    ``sim`` but not in ``real`` counts as a violation once (for the policy that is really better).

    Args:
        sim: Predicted per-policy success (S), shape (N,).
        real: Real per-policy success (R), shape (N,).

    Raises:
        ValueError: On length mismatch, fewer than 2 policies, or non-finite values.
    """
    s, r = _as_pair(sim, real, "sim", "real")
    sim_greater = s[:, None] > s[None, :]  # (N, N): [i, j] = S_i > S_j
    real_greater = r[:, None] > r[None, :]  # (N, N): [i, j] = R_i > R_j
    real_gap = np.abs(r[:, None] - r[None, :])  # (N, N)
    violation = real_gap * (sim_greater != real_greater)  # diagonal is 0: both sides are False
    return float(violation.max(axis=1).mean())


# --------------------------------------------------------------------------------------------------------------
# 3. Calibration
# --------------------------------------------------------------------------------------------------------------


def calibration_mae(pred: ArrayLike, real: ArrayLike) -> float:
    """Mean absolute error between predicted and real per-policy success: ``mean_i |pred_i − real_i|``.

    Raises:
        ValueError: On length mismatch, empty input, or non-finite values.
    """
    p, r = _as_pair(pred, real, "pred", "real", min_len=1)
    return float(np.mean(np.abs(p - r)))


def calibration_mae_fitted(
    pred_train: ArrayLike,
    real_train: ArrayLike,
    pred_test: ArrayLike,
    real_test: ArrayLike,
    clip: bool = True,
) -> float:
    """MAE after a linear recalibration fitted on held-out policies.

    Fits ``real ≈ a · pred + b`` by least squares on the ``*_train`` policies, maps ``pred_test`` through it, and
    returns ``mean |a · pred_test + b − real_test|``. This separates "ranks well but is biased" (a shift/scale
    that a handful of real evaluations can correct) from "is wrong". Train and test policies must be disjoint,
    or the number is optimistic; that split is the caller's job.

    Args:
        pred_train: Predicted success of the calibration policies, shape (M,), M >= 2, not all equal.
        real_train: Real success of the calibration policies, shape (M,).
        pred_test: Predicted success of the evaluated policies, shape (K,), K >= 1.
        real_test: Real success of the evaluated policies, shape (K,).
        clip: Clip recalibrated predictions to [0, 1], the range of a success rate. A line fitted on few
            points can extrapolate outside it, and clipping can only lower the error against real rates in [0, 1].

    Raises:
        ValueError: On length mismatches, too few points, non-finite values, or constant ``pred_train`` (the
            slope is then undefined).
    """
    p_train, r_train = _as_pair(pred_train, real_train, "pred_train", "real_train", min_len=2)
    p_test, r_test = _as_pair(pred_test, real_test, "pred_test", "real_test", min_len=1)
    if _is_constant(p_train):
        raise ValueError(
            "pred_train is constant, so a linear calibration is undefined; hold out policies whose "
            f"predictions differ (got {p_train.tolist()})"
        )
    slope, intercept = np.polyfit(p_train, r_train, deg=1)
    fitted = slope * p_test + intercept
    if clip:
        fitted = np.clip(fitted, 0.0, 1.0)
    return float(np.mean(np.abs(fitted - r_test)))


# --------------------------------------------------------------------------------------------------------------
# 4. Bootstrap over episodes
# --------------------------------------------------------------------------------------------------------------


class BootstrapCI(NamedTuple):
    """A statistic on the full data with a percentile bootstrap interval; unpacks as ``point, low, high``."""

    point: float
    low: float
    high: float


def _episode_matrix(group: Sequence[ArrayLike], group_index: int) -> list[np.ndarray]:
    episodes = []
    for policy_index, outcomes in enumerate(group):
        array = _as_1d_finite(outcomes, f"group {group_index}, policy {policy_index}")
        if array.size == 0:
            raise ValueError(
                f"group {group_index}, policy {policy_index} has no episodes; every policy needs at least one"
            )
        episodes.append(array)
    return episodes


def bootstrap_ci(
    stat_fn: Callable[..., float],
    *episode_groups: Sequence[ArrayLike],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap over episodes for a statistic of per-policy rates.

    Each positional ``episode_groups[g]`` is one "world" (e.g. sim, then real): a sequence with one entry per
    policy, each entry that policy's per-episode outcomes (success flags, or max progress). Groups must list the
    same policies in the same order; policies may have different episode counts.

    The point estimate is ``stat_fn(*rates)`` where ``rates[g]`` is the (P,) array of per-policy means of group
    ``g``. Each resample draws, independently for every (group, policy) cell, as many episodes as that cell has,
    with replacement, recomputes the per-policy means and then the statistic. Resampling within each policy keeps
    every policy's episode count fixed, which is how the experiment was run; resampling groups independently
    treats sim and real episodes as independent runs.

    Example::

        point, low, high = bootstrap_ci(mmrv, sim_episodes, real_episodes, seed=0)
        point, low, high = bootstrap_ci(lambda r: r.max() - r.min(), real_episodes)

    Resamples where the statistic is NaN (e.g. a correlation when all resampled rates tie) are dropped from the
    interval; if all of them are NaN the interval is ``(nan, nan)``.

    Caveat: this is the plain percentile interval. For a statistic bounded at a value it often takes (MMRV >= 0,
    |r| <= 1) or biased under resampling, it is lopsided and need not contain the point estimate; report the
    point beside it rather than the interval's midpoint.

    Args:
        stat_fn: Maps one (P,) rate array per group to a float, e.g. ``pearson`` or ``mmrv`` for (sim, real).
        *episode_groups: One or more groups, each a length-P sequence of 1-D episode-outcome arrays.
        n_resamples: Number of bootstrap resamples, >= 1.
        confidence: Two-sided coverage of the percentile interval, in (0, 1).
        seed: Seed for ``numpy.random.default_rng``; the same inputs and seed give the same interval.

    Returns:
        ``BootstrapCI(point, low, high)``.

    Raises:
        ValueError: On no groups, groups with different policy counts, a policy with no episodes, non-finite
            outcomes, ``n_resamples < 1`` or ``confidence`` outside (0, 1).
    """
    if not episode_groups:
        raise ValueError("bootstrap_ci needs at least one group of per-policy episode arrays after stat_fn")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    _check_confidence(confidence)
    groups = [_episode_matrix(group, g) for g, group in enumerate(episode_groups)]
    n_policies = {len(group) for group in groups}
    if len(n_policies) != 1:
        raise ValueError(
            "every group must list the same policies; got policy counts "
            f"{[len(group) for group in groups]} for the {len(groups)} groups"
        )
    if n_policies == {0}:
        raise ValueError("episode groups are empty; need at least one policy")

    point = float(stat_fn(*[np.array([episodes.mean() for episodes in group]) for group in groups]))

    rng = np.random.default_rng(seed)
    # resampled_rates[g] has shape (n_resamples, P). Cells are drawn in a fixed order (group, then policy), so
    # the result depends only on the inputs and the seed.
    resampled_rates = []
    for group in groups:
        columns = []
        for episodes in group:
            # (n_resamples, n_episodes): which episodes each resample draws, with replacement
            indices = rng.integers(0, episodes.size, size=(n_resamples, episodes.size))
            columns.append(episodes[indices].mean(axis=1))  # (n_resamples,)
        resampled_rates.append(np.stack(columns, axis=1))  # (n_resamples, P)

    values = np.array(
        [float(stat_fn(*[rates[b] for rates in resampled_rates])) for b in range(n_resamples)],
        dtype=np.float64,
    )
    values = values[~np.isnan(values)]
    if values.size == 0:
        return BootstrapCI(point=point, low=float("nan"), high=float("nan"))
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapCI(point=point, low=float(low), high=float(high))


# ----------------------------------------------------------------------------------------------------------------------
# Episode-level agreement and the sampling ceiling
# ----------------------------------------------------------------------------------------------------------------------


def paired_agreement(
    sim_success: ArrayLike, real_success: ArrayLike, sim_progress: ArrayLike, real_progress: ArrayLike
) -> dict[str, float | int]:
    """Same policy, same seed, imagined vs real: how often the outcome agrees, and the progress gap.

    All four are per-episode arrays aligned by seed. Returns ``accuracy`` (share of episodes where imagined and real
    success agree), the four cells (``both``, ``neither``, ``imagined_only``, ``real_only``), ``progress_gap``
    (mean |imagined - real| max progress) and ``n``."""
    sim, real = (np.asarray(a, dtype=bool) for a in (sim_success, real_success))
    sim_p, real_p = (np.asarray(a, dtype=np.float64) for a in (sim_progress, real_progress))
    if not (sim.shape == real.shape == sim_p.shape == real_p.shape) or sim.ndim != 1:
        raise ValueError("paired_agreement needs four 1-D arrays of the same length")
    if sim.size == 0:
        raise ValueError("paired_agreement needs at least one episode")
    return {
        "accuracy": float((sim == real).mean()),
        "both": int((sim & real).sum()),
        "neither": int((~sim & ~real).sum()),
        "imagined_only": int((sim & ~real).sum()),
        "real_only": int((~sim & real).sum()),
        "progress_gap": float(np.abs(sim_p - real_p).mean()),
        "n": int(sim.size),
    }


def sampling_ceiling(
    rates: ArrayLike, seeds: int, simulations: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """What finite seeds alone allow: r and MMRV of a world model that is right on average but whose episode
    outcomes are unrelated to the real ones.

    Each simulation draws, for every policy with true rate ``rates[i]``, ``seeds`` real and ``seeds`` imagined
    Bernoulli episodes independently, and scores the two sets of rates. Returns the mean Pearson r and MMRV and
    their central ``confidence`` ranges over simulations (a simulation with constant rates counts as r = 0)."""
    p = _as_1d_finite(rates, "rates")
    if p.size < 2 or ((p < 0) | (p > 1)).any():
        raise ValueError("sampling_ceiling needs at least two rates in [0, 1]")
    if seeds < 1 or simulations < 1:
        raise ValueError("seeds and simulations must be >= 1")
    _check_confidence(confidence)
    rng = np.random.default_rng(seed)
    real = rng.binomial(seeds, p, size=(simulations, p.size)) / seeds
    sim = rng.binomial(seeds, p, size=(simulations, p.size)) / seeds
    r = np.array(
        [0.0 if _is_constant(a) or _is_constant(b) else pearson(a, b) for a, b in zip(sim, real, strict=True)]
    )
    m = np.array([mmrv(a, b) for a, b in zip(sim, real, strict=True)])
    tail = (1 - confidence) / 2
    return {
        "seeds": int(seeds),
        "pearson": float(r.mean()),
        "pearson_low": float(np.quantile(r, tail)),
        "pearson_high": float(np.quantile(r, 1 - tail)),
        "mmrv": float(m.mean()),
        "mmrv_low": float(np.quantile(m, tail)),
        "mmrv_high": float(np.quantile(m, 1 - tail)),
    }


def calibrated_threshold(imagined_max: ArrayLike, real_success: ArrayLike) -> float:
    """The success threshold on imagined progress at which calibration episodes succeed in imagination as often as
    they did for real.

    ``imagined_max`` (N,): each episode's highest imagined progress in [0, 1]; ``real_success`` (N,): whether the
    same episode succeeded in the real world. With k real successes, the threshold lies halfway between the k-th
    and (k+1)-th highest imagined values, so that k imagined episodes reach it (ties aside): a world model whose
    progress reads low but in the right order is corrected, one that orders episodes wrongly is not. k = N gives
    the lowest value, k = 0 just above the highest (at most 1)."""
    im = _as_1d_finite(imagined_max, "imagined_max")
    real = np.asarray(real_success, dtype=bool).reshape(-1)
    if im.size == 0 or real.size != im.size:
        raise ValueError(
            f"calibrated_threshold needs as many outcomes as episodes, got {im.size} and {real.size}"
        )
    if ((im < 0) | (im > 1)).any():
        raise ValueError("imagined_max must lie in [0, 1]")
    ranked = np.sort(im)[::-1]
    k = int(real.sum())
    if k == im.size:
        return float(max(ranked[-1], 1e-6))
    if k == 0:
        return float(min(1.0, ranked[0] + 1e-6))
    return float((ranked[k - 1] + ranked[k]) / 2)
