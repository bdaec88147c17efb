"""95% intervals by a bootstrap clustered by concept, the standard error of a Monte-Carlo bound, and the
t-interval over training seeds.

Pairs of one concept share content (a document cut into several pairs, its translations, its topic), so
they are not independent: the bootstrap resamples whole clusters (concepts) with replacement and recomputes
the statistic over the pairs of the drawn clusters; the interval is the 2.5 / 97.5 percentiles (percentile
bootstrap). With a single cluster there is nothing to resample: the interval is None, never a zero-width
one, and `clusters` says why.

    low, high = ratio_interval(bits, n_bytes, concepts)          # bits per byte, a ratio of sums
    low, high = ratio_interval(values, [1.0] * len(values), concepts)   # a mean of per-pair values
    low, high = cluster_bootstrap(lambda idx: statistic(idx), concepts)  # any statistic of the pairs
    interval([1.71, 1.74, 1.69])["low"]                           # seeds: mean and t-interval
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np

LEVEL = 0.95


def _cluster_index(clusters: Sequence[str]) -> tuple[np.ndarray, int]:
    names = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    return np.array([names[c] for c in clusters]), len(names)


def _draws(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_clusters) counts: how often each cluster is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    return np.stack([np.bincount(row, minlength=n_clusters) for row in picks])


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    return float(lo), float(hi)


def ratio_interval(
    numerators: Sequence[float],
    denominators: Sequence[float],
    clusters: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Interval of sum(numerators) / sum(denominators), resampling clusters."""
    index, k = _cluster_index(clusters)
    if k < 2:
        return None
    num = np.bincount(index, weights=np.asarray(numerators, dtype=float), minlength=k)
    den = np.bincount(index, weights=np.asarray(denominators, dtype=float), minlength=k)
    draws = _draws(k, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _percentiles((draws @ num) / (draws @ den))


def cluster_bootstrap(
    statistic: Callable[[np.ndarray], float | None],
    clusters: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Interval of a statistic that is not a ratio of sums (MAUVE, say): `statistic(indices)` is evaluated
    on the pairs of each replicate's drawn clusters, a cluster's pairs repeated as often as it was drawn."""
    index, k = _cluster_index(clusters)
    if k < 2:
        return None
    members = [np.flatnonzero(index == c) for c in range(k)]
    values = []
    for counts in _draws(k, n_boot, seed):
        picked = np.concatenate([np.tile(members[c], n) for c, n in enumerate(counts) if n])
        value = statistic(picked)
        values.append(np.nan if value is None else value)
    return _percentiles(np.asarray(values, dtype=float))


def mean_and_standard_error(samples: Sequence[float]) -> tuple[float, float]:
    """Mean of independent Monte-Carlo estimates and its standard error (0 for a single estimate)."""
    x = np.asarray(samples, dtype=float)
    if len(x) < 2:
        return float(x.mean()), 0.0
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))


# two-sided 95% Student t quantiles by degrees of freedom (1..30); beyond, the normal's 1.96
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
       2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
       2.045, 2.042]  # fmt: skip


def interval(values: list[float]) -> dict[str, float | int | None]:
    """Mean and 95% t-interval over seeds (no interval from a single seed)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    df = len(values) - 1
    half = (T95[df - 1] if df <= len(T95) else 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(values)}
