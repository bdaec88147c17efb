"""SDD: the noise process, the probability-biased L*k attention, training, and the two samplers."""

from __future__ import annotations

import math

import pytest
import torch

from training.models import load_variant, make_config
from training.models.sdd import (
    SDD,
    CandidateAttention,
    Config,
    build,
    clean_logits,
    flatten,
    one_hot_state,
    prediction_state,
)
from training.sdd_diagnostics import (
    SamplerTrace,
    ablation_sample,
    ce_by_state,
    chain_samples,
    cross_position_overlap,
    duplicate_rate,
    investigate,
    markov_chain,
    neighbour_top1_agreement,
    repetition_stats,
    valid_transition_rate,
)
from training.variant import Batch
from wikimix.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**over) -> Config:
    base = dict(d_model=32, n_layers=1, n_heads=2, k=4, max_len=64)
    return Config(**{**base, **over})


# ---- noise process ---------------------------------------------------------------------------------------


def test_noise_invariants_indices_kept_mass_below_one_and_flat_at_t1():
    torch.manual_seed(0)
    V, k = 50, 8
    tokens = torch.randint(0, V, (4, 16))
    cand, logit0 = clean_logits(tokens, k, V, Config(k=k))
    # the true token is a candidate, and the k candidates of a position are distinct
    assert (cand == tokens[..., None]).sum(-1).eq(1).all()
    assert duplicate_rate(cand) == 0.0
    is_true = cand == tokens[..., None]
    previous_true_p = torch.ones(4, 16)
    for level in torch.linspace(0, 0.9, 10):
        logp = flatten(logit0, torch.full((4,), float(level)), V)
        mass = logp.exp().sum(-1)
        assert (mass < 1).all() and (mass > 0).all()  # true softmax values, never renormalised over k
        true_p = logp.exp()[is_true].view(4, 16)
        assert (true_p < previous_true_p).all() and (true_p > 1 / V).all()  # flattening toward 1/V
        previous_true_p = true_p
        # below t = 1 flattening keeps the candidates' order: the truth stays the most probable one
        assert torch.equal(logp.argsort(-1), logit0.argsort(-1))
    at_one = flatten(logit0, torch.ones(4), V).exp()
    torch.testing.assert_close(at_one, torch.full_like(at_one, 1 / V))
    at_zero = flatten(logit0, torch.zeros(4), V).exp()
    true_p = at_zero.gather(-1, (cand == tokens[..., None]).float().argmax(-1, keepdim=True))
    assert (true_p > 0.9).all() and (true_p == at_zero.amax(-1, keepdim=True)).all()


def test_noised_state_never_swaps_indices_and_keeps_clean_positions_one_hot():
    V, k = 40, 4
    model = build(tiny(k=k), V, None)
    tokens = torch.randint(0, V, (3, 10))
    noised = torch.zeros(3, 10, dtype=torch.bool)
    noised[:, 4:] = True
    for level in (0.0, 0.5, 1.0):
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        cand, logp = model.noised_state(tokens, noised, torch.full((3,), level), k, g1)
        ref_cand, _ = clean_logits(tokens, k, V, model.cfg, g2)
        assert torch.equal(cand[:, 4:], ref_cand[:, 4:])  # the level changes probabilities only
        assert torch.equal(cand[:, :4, 0], tokens[:, :4]) and (logp[:, :4, 0] == 0).all()
        assert torch.isinf(logp[:, :4, 1:]).all()


def test_prediction_state_is_top_k_with_flattened_true_softmax_values():
    logp_full = torch.randn(2, 3, 30).log_softmax(-1)
    cand, logp = prediction_state(logp_full, torch.zeros(2), 5)
    assert torch.equal(cand, logp_full.topk(5, -1).indices)
    torch.testing.assert_close(logp, logp_full.topk(5, -1).values)
    _, flat = prediction_state(logp_full, torch.ones(2), 5)
    torch.testing.assert_close(flat.exp(), torch.full_like(flat, 1 / 30))


# ---- attention -------------------------------------------------------------------------------------------


def test_attention_bias_shifts_attention_toward_probable_candidates():
    torch.manual_seed(0)
    cfg = tiny(n_heads=2)
    attn = CandidateAttention(cfg)
    L, k = 3, 4
    x = torch.randn(L * k, cfg.d_model)  # one sequence, packed
    positions = torch.arange(L).repeat_interleave(k)
    flat = torch.full((L * k,), -math.log(50.0))
    favoured = flat.clone()
    favoured[5] = math.log(0.9)  # one candidate becomes probable
    (w_flat,) = attn(x, positions, flat, [L * k], return_weights=True)
    (w_fav,) = attn(x, positions, favoured, [L * k], return_weights=True)
    assert (w_fav[..., 5] > w_flat[..., 5]).all()  # every head, every query attends more to it
    # the fused SDPA path (bias in an extra query/key channel) computes the explicit attention
    v = attn.qkv(x).view(L * k, 3, cfg.n_heads, -1)[:, 2].transpose(0, 1)
    explicit = attn.out((w_fav @ v).transpose(0, 1).reshape(L * k, -1))
    torch.testing.assert_close(attn(x, positions, favoured, [L * k]), explicit, atol=1e-5, rtol=1e-4)
    # two sequences packed together attend only within themselves
    two = attn(torch.cat([x, x]), torch.cat([positions, positions]), torch.cat([favoured, flat]), [12, 12])
    torch.testing.assert_close(two[:12], explicit, atol=1e-5, rtol=1e-4)


def test_candidate_order_does_not_matter():
    torch.manual_seed(0)
    model = build(tiny(), 30, None).eval()
    cand = torch.randint(0, 30, (2, 6, 4))
    logp = torch.randn(2, 6, 4).log_softmax(-1) - 1.0
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(
        model(cand, logp), model(cand[..., perm], logp[..., perm]), atol=1e-4, rtol=1e-4
    )


# ---- training --------------------------------------------------------------------------------------------


def test_overfits_a_tiny_batch_and_nll_bound_follows():
    torch.manual_seed(0)
    V = 40
    model = build(tiny(d_model=48, n_layers=2), V, None)
    batch = Batch.from_tokens(torch.randint(0, V, (4, 16)), prompt_len=4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(250):
        loss, metrics = model.loss(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    final, _ = model.loss(batch)
    assert first > math.log(V) - 1.0 and final.item() < 0.5
    assert int(model.train_steps) == 250
    nll, count = model.nll(batch)
    assert int(count) == 4 * 12 and model.nll_is_bound
    assert nll / count < 1.0 < math.log(V)  # the bound falls with the loss, far below a uniform guess


def test_k_curriculum_raises_k_in_equal_stages():
    model = build(tiny(k=8, k_curriculum=(1, 2, 4, 8), curriculum_steps=8), 30, None)
    batch = Batch.from_tokens(torch.randint(0, 30, (2, 8)))
    seen = []
    for _ in range(10):
        _, metrics = model.loss(batch)
        seen.append(int(metrics["k"]))
    assert seen == [1, 1, 2, 2, 4, 4, 8, 8, 8, 8]


def test_registry_builds_sdd_and_bad_config_is_one_line_error():
    module = load_variant("sdd")
    model = module.build(make_config("sdd", {"d_model": 32, "n_layers": 1, "n_heads": 2, "k": 2}), 20, None)
    assert isinstance(model, SDD) and model.name == "sdd"
    for bad in ({"k": 0}, {"self_cond_prob": 1.5}, {"k_curriculum": (1, 16)}, {"d_model": 30}):
        with pytest.raises(ConfigError):
            Config(**bad)
    prompt = torch.zeros(1, 3, dtype=torch.long)
    for bad_options in ({"sampler": "nope"}, {"steps": 0}, {"temperature": 0.0}, {"commit_order": "nope"}):
        with pytest.raises(ConfigError):
            model.generate(prompt, 4, **bad_options)
    with pytest.raises(ConfigError):
        model.generate(prompt, model.cfg.max_len, steps=2)  # longer than the model's positions
    with pytest.raises(ConfigError):
        clean_logits(torch.zeros(1, 2, dtype=torch.long), 8, 4, Config())


# ---- samplers and diagnostics ----------------------------------------------------------------------------


def test_diagnostics_on_hand_made_cases():
    cand = torch.tensor([[[1, 2, 1], [1, 5, 6], [1, 2, 3]]])
    logp = torch.tensor([[[0.0, -1.0, -2.0], [-0.1, -3.0, -4.0], [-0.2, -1.0, float("-inf")]]])
    assert duplicate_rate(cand, logp) == pytest.approx(1 / 8)  # slot 3 of position 0 repeats slot 1
    assert neighbour_top1_agreement(cand, logp) == 1.0  # token 1 is every position's top candidate
    assert cross_position_overlap(cand) == pytest.approx((2 / 3 + 1 / 3) / 2)  # slots of i found at i + 1
    stats = repetition_stats(torch.tensor([[7, 7, 7, 8], [1, 2, 3, 4]]))
    assert stats["repeat_rate"] == pytest.approx(2 / 6)
    assert stats["repeated_2gram_rate"] == pytest.approx((1 / 3 + 0) / 2)


@pytest.fixture(scope="module")
def chain_model():
    """A tiny SDD trained briefly on a Markov chain with no self-transitions (any repeat is an error)."""
    torch.manual_seed(0)
    V, L = 24, 20
    T = markov_chain(V, successors=3)
    model = build(tiny(d_model=48, n_layers=2, k=4), V, None)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(150):
        loss, _ = model.loss(Batch.from_tokens(chain_samples(T, 16, L, g)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), T, chain_samples(T, 32, L, g)


def test_generate_keeps_the_prompt_and_traces_every_step(chain_model):
    model, _, data = chain_model
    prompt = data[:4, :6]
    for sampler, order in (("original", "confidence"), ("fixed", "random"), ("fixed", "confidence")):
        trace = SamplerTrace()
        out = model.generate(prompt, 8, sampler=sampler, steps=5, on_step=trace, commit_order=order)
        assert out.shape == (4, 14) and torch.equal(out[:, :6], prompt)
        assert [r["step"] for r in trace.rows] == list(range(5))
        assert trace.rows[0]["t"] == 1.0 and trace.rows[0]["cand_mass"] == pytest.approx(4 / 24)
    assert trace.rows[-1]["committed"] > trace.rows[0]["committed"] == 0.0


def test_fixed_sampler_repeats_less_than_the_original(chain_model):
    model, T, data = chain_model
    prompt = data[:, :6]
    results = {}
    for sampler in ("original", "fixed"):
        trace = SamplerTrace()
        out = model.generate(prompt, 14, sampler=sampler, steps=14, on_step=trace)
        valid = valid_transition_rate(T, out[:, 5:])
        results[sampler] = (repetition_stats(out[:, 6:]), valid, trace.rows)
    original, fixed = results["original"], results["fixed"]
    # the original collapses onto a few tokens repeated across positions; the chain never repeats a token
    assert original[0]["repeat_rate"] > 0.1
    assert fixed[0]["repeat_rate"] < 0.5 * original[0]["repeat_rate"]
    assert fixed[1] > original[1]  # and more of its transitions exist in the chain
    assert original[2][-1]["neighbour_top1_agreement"] > fixed[2][-1]["neighbour_top1_agreement"]


def test_one_hot_state_shapes():
    cand, logp = one_hot_state(torch.tensor([[3, 4]]), 3)
    assert cand.tolist() == [[[3, 3, 3], [4, 4, 4]]]
    assert logp[0, :, 0].tolist() == [0.0, 0.0] and torch.isinf(logp[0, :, 1:]).all()


def test_author_objective_leaks_the_answer_while_the_bound_stays_honest(chain_model):
    """The author's training (self_cond_prob=0) drives its denoising CE far below the source's entropy
    rate, which no predictor of the data can do: the truth sits among the candidates. Its ELBO, which
    sees no truth, stays above the entropy rate, and above the fixed training's ELBO."""
    fixed_model, T, data = chain_model
    torch.manual_seed(0)
    model = build(tiny(d_model=48, n_layers=2, k=4, self_cond_prob=0.0), T.shape[0], None)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(80):
        loss, metrics = model.loss(Batch.from_tokens(chain_samples(T, 16, 20, g)))
        assert metrics["self_cond"] == 0.0
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    entropy_rate = float(-(T * T.clamp_min(1e-30).log()).sum(-1).mean())  # uniform starts: ~stationary
    batch = Batch.from_tokens(data, prompt_len=6)
    assert model.denoising_ce(batch, 0.5) < 0.5 * entropy_rate
    author_nll, count = model.nll(batch)
    fixed_nll, _ = fixed_model.nll(batch)
    assert float(author_nll / count) > entropy_rate
    assert float(fixed_nll / count) > 0.9 * entropy_rate  # a bound (up to the estimate's noise)
    assert float(fixed_nll / count) < float(author_nll / count)


def test_ablation_loop_reproduces_both_samplers_and_ce_by_state_shows_the_copying(chain_model):
    model, T, data = chain_model
    prompt = data[:6, :6]
    cases = (("original", (False, False, False), "confidence"), ("fixed", (True, True, True), "confidence"))
    for sampler, flags, order in (*cases, ("fixed", (True, True, True), "random")):
        out = model.generate(prompt, 8, sampler=sampler, steps=4, seed=3, commit_order=order)
        again, trace = ablation_sample(model, prompt, 8, 4, *flags, seed=3, order=order)
        assert torch.equal(out, again) and len(trace.rows) == 4
    row = ce_by_state(model, data, 6, 0.3)
    assert row["truth_ce"] < row["own_ce"] < row["no_truth_ce"]
    assert 0 < row["own_truth_in_candidates"] < 1


def test_investigation_runs_end_to_end(capsys):
    report = investigate(["--train-steps", "3", "--vocab", "12", "--seq-len", "8", "--prompt-len", "3",
                          "--batch", "4", "--d-model", "16", "--layers", "1", "--k", "2", "--eval-seqs", "4"])  # fmt: skip
    assert set(report["samplers"]) >= {"original", "fixed, random order (default)"}
    assert report["elbo"] > 0 and len(report["levels"]) == 6
    assert "ELBO estimate" in capsys.readouterr().out
