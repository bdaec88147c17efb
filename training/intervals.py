"""95% intervals by a bootstrap clustered by concept, and the standard error of a Monte-Carlo bound.

Pairs of one concept share content (a document cut into several pairs, its translations, its topic), so
they are not independent: the bootstrap resamples whole clusters (concepts) with replacement and recomputes
the statistic over the pairs of the drawn clusters; the interval is the 2.5 / 97.5 percentiles (percentile
bootstrap). With a single cluster there is nothing to resample: the interval is None, never a zero-width
one, and `clusters` says why.

    low, high = ratio_interval(bits, n_bytes, concepts)          # bits per byte, a ratio of sums
    low, high = ratio_interval(values, [1.0] * len(values), concepts)   # a mean of per-pair values
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def mean_and_standard_error(samples: Sequence[float]) -> tuple[float, float]:
    """Mean of independent Monte-Carlo estimates and its standard error (0 for a single estimate)."""
    x = np.asarray(samples, dtype=float)
    if len(x) < 2:
        return float(x.mean()), 0.0
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
