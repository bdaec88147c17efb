"""The `embed` variant: each head's function is what it claims, each head learns, sampling keeps the prompt."""

from __future__ import annotations

import math

import pytest
import torch

from training.embed_heads import FourierHead, HyperHead, PlaidHead, WindowHead, fourier_basis, window_starts
from training.models import load_variant
from training.models.embed import Config, alpha_sigma, build, logsnr, logsnr_slope
from training.variant import Batch, SpecialIds
from wikimix.errors import ConfigError

torch.set_num_threads(2)
SPECIAL = SpecialIds(pad_id=0, mask_id=1, bos_id=2, eos_id=3)
VOCAB = 16


def tiny(head: str, **kw) -> Config:
    base = dict(
        head=head,
        d_model=32,
        n_layers=1,
        n_heads=2,
        max_len=64,
        embed_dim=8,
        mlp_hidden=8,
        fourier_terms=4,
        window_sizes=(1, 2, 3),
        sample_steps=6,
        nll_samples=2,
    )
    return Config(**{**base, **kw})


# ---- the functions are what they claim ----


def test_fourier_head_is_the_series_at_integer_dimension_indices():
    torch.manual_seed(0)
    n, terms = 10, 4
    head = FourierHead(d_model=12, embed_dim=n, terms=terms)
    params = torch.randn(2, 3, 2 * terms + 1)
    z = torch.randn(2, 3, n)
    got = head.apply_function(params, z)
    for b in range(2):
        for pos in range(3):
            a0, a, bb = params[b, pos, 0], params[b, pos, 1 : terms + 1], params[b, pos, terms + 1 :]
            for j in range(n):
                series = float(a0) + sum(
                    float(a[m - 1]) * math.cos(2 * math.pi * m * j / n)
                    + float(bb[m - 1]) * math.sin(2 * math.pi * m * j / n)
                    for m in range(1, terms + 1)
                )
                assert float(got[b, pos, j]) == pytest.approx(float(z[b, pos, j]) - series, abs=1e-5)


def test_fourier_full_basis_spans_the_embedding_space():
    basis = fourier_basis(8, 4)  # 1 + 4 cos + 4 sin rows; sin(pi j) = 0 is the one redundant row
    assert torch.linalg.matrix_rank(basis) == 8
    with pytest.raises(ConfigError, match="fourier_terms"):
        FourierHead(d_model=8, embed_dim=8, terms=5)


def test_hyper_head_applies_each_positions_own_mlp():
    torch.manual_seed(0)
    n, r = 6, 5
    head = HyperHead(d_model=8, embed_dim=n, hidden=r)
    params = torch.randn(2, 7, head.n_params)
    z = torch.randn(2, 7, n)
    out = head.apply_function(params, z)
    # direct computation of position (1, 4)'s MLP
    w1, b1, w2, b2 = head.unpack(params[1, 4])
    direct = z[1, 4] + w2 @ torch.nn.functional.gelu(w1 @ z[1, 4] + b1) + b2
    torch.testing.assert_close(out[1, 4], direct, rtol=1e-5, atol=1e-5)
    # changing one position's parameters changes that position's output only
    bumped = params.clone()
    bumped[1, 4] += torch.randn(head.n_params)
    changed = (head.apply_function(bumped, z) - out).abs().sum(-1) > 1e-6
    expected = torch.zeros(2, 7, dtype=torch.bool)
    expected[1, 4] = True
    assert torch.equal(changed, expected)


@pytest.mark.parametrize("t", [1, 2, 3, 9])
def test_window_head_touches_t_positions_and_covers_the_sequence_in_one_slide(t: int):
    torch.manual_seed(0)
    seq_len, n = 9, 4
    head = WindowHead(d_model=8, embed_dim=n, hidden=3)
    hidden, z = torch.randn(1, seq_len, 8), torch.randn(1, seq_len, n)
    params = head.function_params(hidden, t)
    assert params.shape == (1, seq_len - t + 1, head.n_params)  # one application per window
    assert torch.equal(window_starts(seq_len, t), torch.arange(seq_len - t + 1))
    base = head.apply_function(params, z, t)
    covered = torch.zeros(seq_len, dtype=torch.bool)
    for w in range(params.shape[1]):
        bumped = params.clone()
        bumped[0, w] += torch.randn(head.n_params)
        touched = ((head.apply_function(bumped, z, t) - base).abs().sum(-1) > 1e-6)[0]
        assert touched.sum() == t
        assert torch.equal(touched.nonzero().flatten(), torch.arange(w, w + t))
        covered |= touched
    assert covered.all()  # one full slide reaches every position
    with pytest.raises(ConfigError, match="window size"):
        window_starts(seq_len, seq_len + 1)


def test_window_function_sees_the_whole_group():
    torch.manual_seed(0)
    head = WindowHead(d_model=8, embed_dim=4, hidden=3)
    params = torch.randn(1, 1, head.n_params)
    group = torch.randn(1, 1, 3, 4)
    moved = group.clone()
    moved[0, 0, 2] += 1.0  # a neighbour moves: the other members' updates move too
    delta = (head.apply_window(params, moved) - head.apply_window(params, group)).abs().sum(-1)[0, 0]
    assert (delta[:2] > 1e-6).all()


def test_plaid_estimate_is_the_probability_weighted_mean_of_embeddings():
    torch.manual_seed(0)
    head = PlaidHead(d_model=8, embed_dim=4, vocab_size=5)
    emb = torch.randn(5, 4)
    logits = torch.randn(2, 3, 5)
    p = logits.softmax(-1)
    direct = sum(p[..., k : k + 1] * emb[k] for k in range(5))
    torch.testing.assert_close(head.apply_function(logits, emb), direct)


# ---- schedule, embeddings, config ----


def test_noise_schedule_endpoints_monotone_and_slope():
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    lam = logsnr(t, -10.0, 8.0)
    assert float(lam[0]) == pytest.approx(8.0) and float(lam[-1]) == pytest.approx(-10.0)
    assert (lam[1:] < lam[:-1]).all()
    mid = torch.tensor([0.3, 0.7], dtype=torch.float64)
    h = 1e-6
    numeric = (logsnr(mid + h, -10.0, 8.0) - logsnr(mid - h, -10.0, 8.0)) / (2 * h)
    torch.testing.assert_close(logsnr_slope(mid, -10.0, 8.0), numeric, rtol=1e-5, atol=1e-5)
    alpha, sigma = alpha_sigma(lam)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(lam))  # variance preserving


def test_embeddings_keep_a_fixed_norm_and_frozen_tables_do_not_move():
    torch.manual_seed(0)
    model = build(tiny("fourier"), VOCAB, SPECIAL)
    batch = Batch.from_tokens(torch.randint(4, VOCAB, (2, 10)))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(2):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    norms = model.embeddings().norm(dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, math.sqrt(8)))
    frozen = build(tiny("fourier", learn_embeddings=False), VOCAB, SPECIAL)
    assert not frozen.embed_table.requires_grad


def test_bad_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown embed head"):
        Config(head="wavelet")
    with pytest.raises(ConfigError, match="logsnr_min"):
        Config(logsnr_min=5.0, logsnr_max=1.0)
    with pytest.raises(ConfigError, match="window_sizes"):
        Config(window_sizes=(0,))
    model = build(tiny("window"), VOCAB, SPECIAL)
    with pytest.raises(ConfigError, match="window schedule"):
        model.generate(torch.randint(4, VOCAB, (1, 4)), 3, steps=4, window=[1, 2])


def test_registry_builds_embed():
    module = load_variant("embed")
    model = module.build(module.Config(**vars(tiny("hyper"))), VOCAB, SPECIAL)
    assert model.name == "embed-hyper" and model.nll_is_bound


# ---- the variant: conditioning, padding, bound, cost ----


@pytest.mark.parametrize("head", ["hyper", "fourier", "window", "plaid"])
def test_sampling_keeps_the_prompt_unchanged(head: str):
    torch.manual_seed(0)
    model = build(tiny(head), VOCAB, SPECIAL).eval()
    prompt = torch.randint(4, VOCAB, (2, 5))
    out = model.generate(prompt, 4, seed=1, window=[3, 3, 2, 2, 1, 1])
    assert out.shape == (2, 9)
    assert torch.equal(out[:, :5], prompt)
    assert torch.equal(model.generate(prompt, 4, seed=1, window=[3, 3, 2, 2, 1, 1]), out)  # seeded
    assert torch.equal(model.generate(prompt, 4, seed=1, clamp=True)[:, :5], prompt)
    sampled = [
        model.generate(prompt, 4, generator=torch.Generator().manual_seed(3), temperature=1.0, top_p=0.9)
        for _ in range(2)
    ]
    assert torch.equal(sampled[0], sampled[1]) and torch.equal(sampled[0][:, :5], prompt)


def test_prompt_is_clean_and_padding_is_invisible():
    torch.manual_seed(0)
    model = build(tiny("hyper"), VOCAB, SPECIAL).eval()
    tokens = torch.randint(4, VOCAB, (1, 10))
    emb = model.embeddings()
    clean = torch.zeros(1, 10, dtype=torch.bool)
    clean[0, :4] = True
    z = torch.where(clean[..., None], emb[tokens], torch.randn(1, 10, 8))
    lam = torch.tensor([0.0])
    keys = torch.ones(1, 10, dtype=torch.bool)
    keys[0, 8:] = False  # two pad positions at the end
    out = model.denoise(z, clean, lam, torch.zeros_like(z), emb, keys)
    torch.testing.assert_close(out.x0[:, :4], emb[tokens[:, :4]])  # the prompt's estimate is the prompt
    z2 = z.clone()
    z2[0, 8:] = torch.randn(2, 8) * 5  # whatever sits in the padding ...
    out2 = model.denoise(z2, clean, lam, torch.zeros_like(z), emb, keys)
    torch.testing.assert_close(out2.x0[:, :8], out.x0[:, :8])  # ... changes no real position


def test_nll_bound_counts_scored_tokens_and_is_deterministic():
    torch.manual_seed(0)
    model = build(tiny("window"), VOCAB, SPECIAL).eval()
    tokens = torch.randint(4, VOCAB, (2, 10))
    tokens[1, 8:] = SPECIAL.pad_id
    batch = Batch.from_tokens(tokens, prompt_len=3, pad_id=SPECIAL.pad_id)
    total, count = model.nll(batch)
    assert int(count) == 7 + 5
    assert torch.isfinite(total) and float(total) > 0
    assert float(model.nll(batch)[0]) == pytest.approx(float(total))  # seeded estimator
    assert float(model.nll(batch, seed=1)[0]) != pytest.approx(float(total))  # ... and a Monte Carlo one


def test_cost_report_counts_each_heads_parameters_and_flops():
    reports = {
        h: build(tiny(h), VOCAB, SPECIAL).cost_report(seq_len=20)
        for h in ("hyper", "fourier", "window", "plaid")
    }
    assert reports["fourier"]["params_head"] == 32 * 9 + 9  # d x (2M+1) + bias
    assert reports["plaid"]["params_head"] == 32 * VOCAB + VOCAB
    assert reports["hyper"]["params_head"] == 33 * (2 * 8 * 8 + 8 + 8)
    for h, rep in reports.items():
        model = build(tiny(h), VOCAB, SPECIAL)
        assert rep["params_total"] == sum(p.numel() for p in model.parameters())
        assert rep["flops_per_step"] > rep["flops_backbone_per_step"] + rep["flops_head_per_step"] > 0
        assert rep["flops_per_sample"] >= rep["sample_steps"] * rep["flops_per_step"]
    longer = build(tiny("fourier"), VOCAB, SPECIAL).cost_report(seq_len=40)
    assert longer["flops_head_per_step"] == 2 * reports["fourier"]["flops_head_per_step"]


# ---- each head learns ----


@pytest.mark.parametrize("head", ["hyper", "fourier", "window", "plaid"])
def test_each_head_overfits_a_tiny_batch(head: str):
    # A short schedule (logsnr_min=-4) and no self-conditioning keep this to ~120 cheap steps.
    torch.manual_seed(0)
    model = build(tiny(head, logsnr_min=-4.0, self_cond=False), VOCAB, SPECIAL)
    tokens = torch.randint(4, VOCAB, (2, 10), generator=torch.Generator().manual_seed(0))
    batch = Batch.from_tokens(tokens, prompt_len=4)

    def denoising_ce() -> float:  # at a moderate and a high noise level, fixed noise draws
        return sum(float(model.denoising_ce(batch, t=t)) for t in (0.5, 0.9))

    before = denoising_ce()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(120):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    after = denoising_ce()
    assert after < 0.65 * before, (before, after)


@pytest.mark.parametrize("head", ["hyper", "plaid"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_scored_logits_are_the_full_logits_at_the_scored_positions(head: str, precision: str):
    """The loss rounds only the scored estimates (training's speed-up): the same logits, bit for bit, and
    the same gradients as rounding every position and gathering the scored rows."""
    torch.manual_seed(0)
    model = build(tiny(head), 300, SPECIAL)
    tokens = torch.randint(4, 300, (3, 24))
    tokens[2, 20:] = SPECIAL.pad_id
    batch = Batch.from_tokens(tokens, prompt_len=5, pad_id=SPECIAL.pad_id)
    scored = batch.pad_mask & (torch.arange(24)[None, :] >= 5)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        embeddings, _, z, clean, lam = model._noise(batch, torch.full((3,), 0.4))
        out = model.denoise(z, clean, lam, torch.zeros_like(z), embeddings, batch.pad_mask)
        full = model.token_logits(out, embeddings)[scored]
        fast = model.scored_logits(out, embeddings, scored)
    assert full.dtype == fast.dtype and torch.equal(full, fast)
    target = tokens[scored]
    grads = []
    for logits in (full, fast):
        model.zero_grad()
        torch.nn.functional.cross_entropy(logits.float(), target).backward(retain_graph=True)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-7, msg=name)
