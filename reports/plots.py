"""The report's charts: matplotlib (Agg) figures as PNG ``data:`` URIs, so a page carries its pictures inside.

Every function takes plain numbers (already read from stored results) and returns a ``data:image/png;base64,...``
string; none reads files or computes a metric beyond a least-squares line to guide the eye.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: reports are rendered on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PREDICTED_COLOUR = "#d9822b"  # imagination
REAL_COLOUR = "#2b6cb0"  # the dojo
DPI = 110


def _data_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def agreement_scatter(
    names: Sequence[str],
    predicted: Sequence[float],
    real: Sequence[float],
    pearson: float | None = None,
    mmrv: float | None = None,
) -> str:
    """Predicted (x) vs real (y) success per policy, the y = x diagonal, a least-squares fit line, and
    Pearson r / MMRV in the title."""
    x, y = np.asarray(predicted, float), np.asarray(real, float)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", linewidth=1, label="y = x")
    if len(x) >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(0, 1, 20)
        ax.plot(grid, slope * grid + intercept, color="#444444", linewidth=1.4, label="least-squares fit")
    ax.scatter(x, y, s=46, color=REAL_COLOUR, edgecolor="white", zorder=3)
    labels: dict[tuple[float, float], list[str]] = {}  # policies on the same point share one label
    for name, xi, yi in zip(names, x, y, strict=True):
        labels.setdefault((round(float(xi), 3), round(float(yi), 3)), []).append(_short(name, 20))
    for (xi, yi), group in labels.items():
        text = ", ".join(group) if len(group) <= 3 else f"{', '.join(group[:3])} +{len(group) - 3}"
        ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("predicted success (imagination)")
    ax.set_ylabel("real success (dojo)")
    ax.set_title(f"r = {_fmt(pearson)}   MMRV = {_fmt(mmrv)}", fontsize=11)
    ax.grid(alpha=0.25)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _data_uri(fig)


def success_intervals(
    names: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float, float] | None]],
    colours: Mapping[str, str] | None = None,
) -> str:
    """Horizontal interval chart: per name, one point with its interval per series.

    ``series``: {label: [(rate, low, high) or None per name]} (e.g. predicted and real success)."""
    colours = dict(colours or {"predicted": PREDICTED_COLOUR, "real": REAL_COLOUR})
    n = len(names)
    fig, ax = plt.subplots(figsize=(5.6, 0.55 * n + 1.3))
    offsets = np.linspace(-0.15, 0.15, max(len(series), 1)) if len(series) > 1 else [0.0]
    for offset, (label, values) in zip(offsets, series.items(), strict=True):
        ys, rates, lows, highs = [], [], [], []
        for i, value in enumerate(values):
            if value is None:
                continue
            ys.append(n - 1 - i + offset)
            rates.append(value[0])
            lows.append(value[0] - value[1])
            highs.append(value[2] - value[0])
        if ys:
            ax.errorbar(rates, ys, xerr=[np.clip(lows, 0, None), np.clip(highs, 0, None)], fmt="o",
                        color=colours.get(label, "#555555"), capsize=3, label=label)  # fmt: skip
    ax.set_yticks(range(n))
    ax.set_yticklabels([_short(name) for name in reversed(names)], fontsize=9)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("success rate (Wilson interval)")
    ax.grid(axis="x", alpha=0.25)
    if sum(any(v is not None for v in values) for values in series.values()) > 1:  # above the axes: below,
        # it would collide with the x label on short charts
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    return _data_uri(fig)


def delta_intervals(
    names: Sequence[str], series: Mapping[str, Sequence[tuple[float, float, float] | None]]
) -> str:
    """Per name, the change in success (new - base) with its interval, per series, around a zero line."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(5.6, 0.55 * n + 1.3))
    ax.axvline(0, color="#888888", linewidth=1)
    colours = {"predicted": PREDICTED_COLOUR, "real": REAL_COLOUR}
    offsets = np.linspace(-0.15, 0.15, len(series)) if len(series) > 1 else [0.0]
    for offset, (label, values) in zip(offsets, series.items(), strict=True):
        points = [(n - 1 - i + offset, v) for i, v in enumerate(values) if v is not None]
        if not points:
            continue
        ys = [y for y, _ in points]
        mid = np.array([v[0] for _, v in points])
        low = np.clip(mid - np.array([v[1] for _, v in points]), 0, None)
        high = np.clip(np.array([v[2] for _, v in points]) - mid, 0, None)
        ax.errorbar(mid, ys, xerr=[low, high], fmt="o", capsize=3, color=colours.get(label, "#555555"),
                    label=label)  # fmt: skip
    ax.set_yticks(range(n))
    ax.set_yticklabels([_short(name) for name in reversed(names)], fontsize=9)
    ax.set_xlim(-1.02, 1.02)
    ax.set_xlabel("change in success, new − base (Newcombe interval)")
    ax.grid(axis="x", alpha=0.25)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return _data_uri(fig)


def success_over_seeds(seeds: Sequence[int], rows: Mapping[str, Sequence[float | None]]) -> str:
    """A strip per world: one cell per seed, green success / red failure / grey not run."""
    worlds = list(rows)
    grid = np.full((len(worlds), len(seeds)), np.nan)
    for r, world in enumerate(worlds):
        for c, value in enumerate(rows[world]):
            if value is not None:
                grid[r, c] = float(value)
    fig, ax = plt.subplots(figsize=(min(1.2 + 0.28 * len(seeds), 11), 0.5 * len(worlds) + 0.9))
    cmap = matplotlib.colors.ListedColormap(["#e05252", "#3fa34d"]).with_extremes(bad="#dddddd")
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(worlds)))
    ax.set_yticklabels(worlds)
    step = max(1, len(seeds) // 20)
    ax.set_xticks(range(0, len(seeds), step))
    ax.set_xticklabels([str(s) for s in seeds][::step], fontsize=8)
    ax.set_xlabel("seed (green: success, red: failure)")
    ax.set_xticks(np.arange(-0.5, len(seeds)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(worlds)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    return _data_uri(fig)


def progress_curves(
    curves: Mapping[str, Sequence[tuple[Sequence[int], Sequence[float]]]],
    threshold: float | None = None,
    title: str = "",
) -> str:
    """Progress over time: per label (e.g. "value model, imagined"), one thin line per episode and the mean."""
    styles = {
        "value model, imagined": (PREDICTED_COLOUR, "-"),
        "value model, real": (REAL_COLOUR, "-"),
        "ground truth, real": ("#2f855a", "--"),
    }
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for label, episodes in curves.items():
        colour, style = styles.get(label, ("#555555", "-"))
        longest = 0
        for steps, progress in episodes:
            ax.plot(steps, progress, color=colour, linestyle=style, alpha=0.25, linewidth=0.8)
            longest = max(longest, len(steps))
        if episodes and longest:
            stacked = np.full((len(episodes), longest), np.nan)
            for i, (_, progress) in enumerate(episodes):
                stacked[i, : len(progress)] = progress
            mean = np.nanmean(stacked, axis=0)
            ax.plot(np.arange(1, longest + 1), mean, color=colour, linestyle=style, linewidth=2.2,
                    label=f"{label} (mean of {len(episodes)})")  # fmt: skip
    if threshold is not None:
        ax.axhline(
            threshold, color="#999999", linewidth=1, linestyle=":", label=f"success threshold {threshold:g}"
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("progress")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    return _data_uri(fig)


def _short(name: str, limit: int = 28) -> str:
    """Matplotlib draws text as pixels, so nothing here can inject markup; long names are cut for the axes."""
    short = name if len(name) <= limit else name[: limit - 1] + "…"
    return short.replace("$", r"\$")  # a '$' would start matplotlib mathtext
