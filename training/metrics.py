"""Evaluation metrics over token sequences: likelihood summaries and generation quality.

All functions are plain and deterministic, so each is checked on hand-computed cases in
tests/test_metrics.py. Sequences are lists of hashable tokens (ids or strings).

Definitions used:
- perplexity = exp(total NLL in nats / scored tokens); bits per byte = total NLL / (bytes * ln 2), which
  makes byte-level and BPE models comparable (same text, same bytes).
- unigram entropy: Shannon entropy (bits) of the empirical token distribution of the pooled sequences.
- distinct-n (Li et al. 2016): distinct n-grams / all n-grams, pooled over every sequence.
- repeated-n-gram rate (seq-rep-n, Welleck et al. 2019): per sequence 1 - unique n-grams / n-grams, averaged
  over sequences; a sequence with fewer than n tokens has no n-grams and is skipped.
- token accuracy: share of positions where the completion equals the reference, over the reference length
  (missing positions count as wrong).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

Tokens = Sequence[Hashable]


def perplexity(nll_sum_nats: float, n_tokens: int) -> float:
    if n_tokens <= 0:
        raise ValueError("perplexity needs at least one scored token")
    return math.exp(nll_sum_nats / n_tokens)


def bits_per_byte(nll_sum_nats: float, n_bytes: int) -> float:
    if n_bytes <= 0:
        raise ValueError("bits per byte needs at least one byte")
    return nll_sum_nats / (n_bytes * math.log(2))


def ngrams(tokens: Tokens, n: int) -> list[tuple]:
    if n < 1:
        raise ValueError("n must be >= 1")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def unigram_entropy(sequences: Sequence[Tokens]) -> float:
    counts = Counter(tok for seq in sequences for tok in seq)
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def distinct_n(sequences: Sequence[Tokens], n: int) -> float:
    grams = [g for seq in sequences for g in ngrams(seq, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(sequences: Sequence[Tokens], n: int) -> float:
    rates = []
    for seq in sequences:
        grams = ngrams(seq, n)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else 0.0


def token_accuracy(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> float:
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in count")
    hits = total = 0
    for pred, ref in zip(predictions, references, strict=True):
        total += len(ref)
        hits += sum(1 for p, r in zip(pred, ref, strict=False) if p == r)
    return hits / total if total else 0.0


def median_iqr(values: Sequence[float]) -> str:
    """'median [q1-q3]' (linear interpolation, as numpy's default), the length-fidelity summary."""
    if not values:
        return "-"
    ordered = sorted(values)

    def quantile(q: float) -> float:
        pos = q * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return f"{quantile(0.5):g} [{quantile(0.25):g}-{quantile(0.75):g}]"


def language_mix_distance(prompt_langs: Counter, completion_langs: Counter) -> float:
    """Total-variation distance between two language distributions (0 = same mix, 1 = disjoint)."""
    p_total, c_total = sum(prompt_langs.values()), sum(completion_langs.values())
    if not p_total or not c_total:
        return 1.0
    langs = set(prompt_langs) | set(completion_langs)
    return 0.5 * sum(abs(prompt_langs[x] / p_total - completion_langs[x] / c_total) for x in langs)
