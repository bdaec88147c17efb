"""Code-switching metrics against values worked out by hand from the papers' definitions."""

from __future__ import annotations

import math

import pytest

from pipeline import csmetrics as cs

OTHER = cs.OTHER


def test_two_language_utterance_by_hand() -> None:
    # 2 English, 3 Hindi and 1 language-independent token (n=6, u=1, max w=3).
    tags = ["en", "en", "hi", "hi", "hi", OTHER]
    # CMI = 100 * (1 - max(w) / (n - u)) = 100 * (1 - 3/5) = 40
    assert cs.cmi(tags) == pytest.approx(40.0)
    # M = (1 - sum p^2) / ((k - 1) sum p^2), p = (0.4, 0.6): (1 - 0.52) / 0.52
    assert cs.m_index(tags) == pytest.approx(0.48 / 0.52)
    # I = switch points / (n - 1) over the 5 language tokens: 1 / 4
    assert cs.i_index(tags) == pytest.approx(0.25)
    # spans (2, 3): mu = 2.5, sigma = 0.5 -> (0.5 - 2.5) / (0.5 + 2.5)
    assert cs.burstiness(tags) == pytest.approx(-2 / 3)
    assert cs.lang_entropy(tags) == pytest.approx(-(0.4 * math.log2(0.4) + 0.6 * math.log2(0.6)))
    assert cs.mean_segment_len(tags) == pytest.approx(2.5)


def test_monolingual_text_scores_zero() -> None:
    tags = ["uk"] * 7 + [OTHER]
    assert cs.cmi(tags) == 0.0
    assert cs.m_index(tags) == 0.0
    assert cs.i_index(tags) == 0.0
    assert cs.lang_entropy(tags) == 0.0
    assert cs.mean_segment_len(tags) == 7
    assert cs.burstiness(tags) == -1.0  # one span: sigma 0


def test_only_language_independent_tokens() -> None:
    tags = [OTHER, OTHER]
    assert cs.cmi(tags) == 0.0
    assert cs.doc_metrics(tags)["n_langs"] == 0
    assert cs.burstiness(tags) == 0.0
    assert cs.mean_segment_len(tags) == 0.0


def test_perfectly_alternating_three_languages() -> None:
    tags = ["uk", "vi", "ja"] * 4
    assert cs.cmi(tags) == pytest.approx(100 * (1 - 4 / 12))
    assert cs.m_index(tags) == pytest.approx(1.0)  # equal shares
    assert cs.i_index(tags) == pytest.approx(1.0)  # a switch at every token
    assert cs.burstiness(tags) == pytest.approx(-1.0)  # periodic
    assert cs.lang_entropy(tags) == pytest.approx(math.log2(3))
    m = cs.doc_metrics(tags)
    assert (m["n_langs"], m["n_switches"]) == (3, 11)


def test_bursty_spans_score_higher_than_regular_ones() -> None:
    regular = ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    bursty = ["a"] * 1 + ["b"] * 1 + ["a"] * 9 + ["b"] * 1
    assert cs.burstiness(bursty) > cs.burstiness(regular)


def test_token_tags_follow_segments_and_skip_numbers() -> None:
    text = "Kyiv 1919 は東京 then ok"
    segments = [
        {"start": 0, "end": 9, "lang": "uk"},
        {"start": 10, "end": 13, "lang": "ja"},
        {"start": 14, "end": 21, "lang": "en"},
    ]
    # Tokens: Kyiv, 1919, は, 東, 京, then, ok  (CJK: one token per character; digits: OTHER)
    assert cs.token_tags(text, segments) == ["uk", OTHER, "ja", "ja", "ja", "en", "en"]


def test_dataset_metrics_average_documents_and_never_switch_across_them() -> None:
    doc_a = ["en", "en", "hi", "hi", "hi", OTHER]
    doc_b = ["hi"] * 4
    out = cs.dataset_metrics([doc_a, doc_b])
    assert out["n_docs"] == 2
    assert out["mean_cmi"] == pytest.approx((40.0 + 0.0) / 2)
    assert out["cmi"] == out["mean_cmi"]
    # 1 switch inside doc_a; the hi -> hi boundary between the documents is no switch: 1 / (4 + 3)
    assert out["i_index"] == pytest.approx(1 / 7)
    # pooled shares: en 2, hi 7 of 9
    p = (2 / 9, 7 / 9)
    assert out["m_index"] == pytest.approx((1 - sum(x * x for x in p)) / sum(x * x for x in p))
    assert out["n_langs"] == 2
    assert cs.dataset_metrics([])["n_docs"] == 0
