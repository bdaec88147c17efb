"""The knowledge cloze scorer, checked by hand: ar span scores against a token-by-token brute force, the
mdlm bound against a single masked forward (one-token spans), against Monte Carlo (longer spans) and
against the closed form for context-free predictions; the bootstrap on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training import knowledge as KS
from training.models import load_variant
from training.models import make_config as make_model_config
from training.tokenizers import ByteTokenizer
from wikimix.errors import ConfigError


def tiny(name: str):
    tok = ByteTokenizer()
    torch.manual_seed(0)
    cfg = make_model_config(name, {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_len": 128})
    return load_variant(name).build(cfg, tok.vocab_size, tok.special).eval(), tok


def test_encode_span_keeps_the_value_tokens_apart():
    tok = ByteTokenizer()
    ids, a, b = KS.encode_span(tok, "Her colour is ", "red", ".")
    assert (
        tok.decode(ids[:a]) == "Her colour is"
        and tok.decode(ids[a:b]) == " red"
        and tok.decode(ids[b:]) == "."
    )


@torch.no_grad()
def test_ar_span_nll_equals_brute_force_log_probs():
    model, tok = tiny("ar")
    prefix, suffix, candidates = "Zuzaro Nobe's favourite colour is ", ".", ["red", "blue", "purple"]
    scores = KS.value_span_nll(model, tok, prefix, candidates, suffix)
    for cand, score in zip(candidates, scores, strict=True):
        ids, a, b = KS.encode_span(tok, prefix, cand, suffix)
        brute = 0.0
        for i in range(a, b):  # one full forward per value token: log p(ids[i] | ids[:i])
            logits = model.head(model.backbone(torch.tensor([ids[:i]])))[0, -1]
            brute -= float(F.log_softmax(logits.float(), -1)[ids[i]])
        assert score == pytest.approx(brute, rel=1e-4, abs=1e-4)
    assert len(set(scores)) == 3


@torch.no_grad()
def test_mdlm_bound_of_a_one_token_span_is_the_masked_cross_entropy():
    model, tok = tiny("mdlm")
    ids = tok.encode("ab c d")
    a = 3  # the single token 'c', with everything else given
    got = KS.mdlm_span_nll(model, [(ids, a, a + 1)])[0]
    x = torch.tensor([ids])
    x[0, a] = model.mask_id
    logits = model.denoise_logits(x, torch.ones_like(x, dtype=torch.bool))
    assert got == pytest.approx(-float(F.log_softmax(logits[0, a], -1)[ids[a]]), rel=1e-5)


def test_subset_weights_give_m_times_a_context_free_loss():
    for m in range(1, 9):
        total = sum(math.comb(m, k) * k * KS.subset_weight(k, m) for k in range(1, m + 1))
        assert total == pytest.approx(m)  # each of the m tokens' loss counted once in expectation
    assert KS.subset_weight(1, 2) == pytest.approx(0.5) and KS.subset_weight(2, 2) == pytest.approx(0.5)


@torch.no_grad()
def test_mdlm_exact_bound_agrees_with_monte_carlo():
    model, tok = tiny("mdlm")
    ids, a, b = KS.encode_span(tok, "Das Lieblingstier ist ", "Igel", ".")
    exact = KS.mdlm_span_nll(model, [(ids, a, b)], exact_max=8)[0]  # 5 tokens: 31 subsets
    mc = KS.mdlm_span_nll(model, [(ids, a, b)], mc_samples=4000, exact_max=0, chunk=1000)[0]
    assert mc == pytest.approx(exact, rel=0.05)
    # and the bound is no smaller than the model's own best single-order chain would give for 1 token
    assert exact > 0


@torch.no_grad()
def test_score_items_ranks_and_rejects_other_variants():
    model, tok = tiny("ar")
    items = [{"entity": "E1", "prefix": "x is ", "suffix": ".", "candidates": ["a", "bb"], "answer": 1}]
    out = KS.score_items(model, tok, items)
    assert out[0]["choice"] == min(range(2), key=out[0]["nll"].__getitem__)
    assert out[0]["hit"] == (out[0]["choice"] == 1)
    sdd, _ = tiny("sdd")
    with pytest.raises(ConfigError):
        KS.value_span_nll(sdd, tok, "x is ", ["a"], ".")


def test_bootstrap_on_known_cases():
    certain = KS.bootstrap_accuracy({"a": [1, 1], "b": [1.0]})
    assert certain["mean"] == 1 and certain["low"] == 1 and certain["high"] == 1 and certain["se"] == 0
    half = KS.bootstrap_accuracy({f"e{i}": [float(i % 2)] for i in range(200)}, n_boot=2000)
    assert half["mean"] == 0.5
    se = math.sqrt(0.25 / 200)  # binomial SE of a proportion over 200 independent entities
    assert half["se"] == pytest.approx(se, rel=0.15)
    assert half["low"] == pytest.approx(0.5 - 1.96 * se, abs=0.02) and half["high"] == pytest.approx(
        0.5 + 1.96 * se, abs=0.02
    )
    same = KS.paired_difference({"a": [1, 0], "b": [1]}, {"a": [1, 0], "b": [1]})
    assert same["mean"] == 0 and same["mdd"] == 0
    one = KS.bootstrap_accuracy({"a": [1, 0]})  # one entity: nothing to resample, no interval
    assert one["mean"] == 0.5 and one["low"] is None and one["se"] is None
    with pytest.raises(ConfigError):
        KS.paired_difference({"a": [1]}, {"b": [1]})
    assert KS.chance([{"candidates": [1, 2]}, {"candidates": [1, 2, 3, 4]}]) == pytest.approx(0.375)
