"""Evaluation metrics on cases computed by hand from their definitions."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from training.metrics import (
    bits_per_byte,
    distinct_n,
    language_mix_distance,
    median_iqr,
    ngrams,
    perplexity,
    repeated_ngram_rate,
    token_accuracy,
    unigram_entropy,
)


def test_perplexity_of_a_known_distribution():
    # A uniform model over 8 symbols assigns each token ln 8 nats: perplexity 8, 3 bits per token.
    n = 100
    assert perplexity(n * math.log(8), n) == pytest.approx(8.0)
    # Two tokens with p = 1/2 and p = 1/8: NLL = ln 2 + ln 8 = ln 16, perplexity = sqrt(16) = 4.
    assert perplexity(math.log(2) + math.log(8), 2) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        perplexity(1.0, 0)


def test_bits_per_byte():
    # 10 bytes of text scored at a total of 10 * ln 2 nats is exactly 1 bit per byte.
    assert bits_per_byte(10 * math.log(2), 10) == pytest.approx(1.0)
    # A BPE model with 4 tokens over 12 bytes at ln 16 nats each: 4 * 4 bits / 12 bytes.
    assert bits_per_byte(4 * math.log(16), 12) == pytest.approx(16 / 12)
    with pytest.raises(ValueError):
        bits_per_byte(1.0, 0)


def test_unigram_entropy():
    assert unigram_entropy([["a", "b", "c", "d"]]) == pytest.approx(2.0)  # uniform over 4
    assert unigram_entropy([["a", "a"], ["a", "a"]]) == 0.0
    # p = (1/2, 1/4, 1/4): H = 0.5 + 0.5 + 0.5 = 1.5 bits, pooled across sequences
    assert unigram_entropy([["x", "x"], ["y", "z"]]) == pytest.approx(1.5)
    assert unigram_entropy([[]]) == 0.0


def test_distinct_n_and_repeated_ngram_rate():
    seqs = [["the", "cat", "the", "cat"], ["a", "b", "c"]]
    assert ngrams(seqs[0], 2) == [("the", "cat"), ("cat", "the"), ("the", "cat")]
    # pooled bigrams: (the,cat) x2, (cat,the), (a,b), (b,c) -> 4 distinct of 5
    assert distinct_n(seqs, 2) == pytest.approx(4 / 5)
    assert distinct_n(seqs, 1) == pytest.approx(5 / 7)
    # seq 1: 1 - 2/3, seq 2: 0 -> mean 1/6
    assert repeated_ngram_rate(seqs, 2) == pytest.approx((1 / 3 + 0) / 2)
    # "They They They": every bigram is the same
    assert repeated_ngram_rate([["They"] * 4], 2) == pytest.approx(1 - 1 / 3)
    assert repeated_ngram_rate([["a"]], 2) == 0.0  # too short: no bigrams, skipped
    with pytest.raises(ValueError):
        ngrams(["a"], 0)


def test_token_accuracy_counts_missing_positions_as_wrong():
    assert token_accuracy([[1, 2, 3]], [[1, 9, 3]]) == pytest.approx(2 / 3)
    assert token_accuracy([[1]], [[1, 2, 3, 4]]) == pytest.approx(1 / 4)
    assert token_accuracy([[1, 2], [5]], [[1, 2], [6]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        token_accuracy([[1]], [])


def test_language_mix_distance():
    assert language_mix_distance(Counter(uk=2, vi=2), Counter(uk=1, vi=1)) == 0.0
    assert language_mix_distance(Counter(uk=1), Counter(ja=3)) == 1.0
    assert language_mix_distance(Counter(uk=3, vi=1), Counter(uk=1, vi=1)) == pytest.approx(0.25)
    assert language_mix_distance(Counter(), Counter(uk=1)) == 1.0


def test_median_iqr_summarises_lengths():
    assert median_iqr([50, 50, 50]) == "50 [50-50]"
    # sorted 1, 2, 3, 4: median 2.5, q1 at position 0.75 -> 1.75, q3 at 2.25 -> 3.25
    assert median_iqr([4, 1, 3, 2]) == "2.5 [1.75-3.25]"
    assert median_iqr([]) == "-"
