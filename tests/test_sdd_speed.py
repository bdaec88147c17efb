"""SDD at its FLOP cost: the packed, flash-compatible network computes exactly what the dense L*k
formulation (absent keys masked by an additive -inf, a learned alpha_h * log p bias on the scores) did."""

from __future__ import annotations

import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from training.blocks import apply_rotary
from training.config import ENTRIES, make_entry_config
from training.models import load_variant, make_config
from training.models.sdd import SDD, Config, build, one_hot_state
from training.variant import Batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dense_reference(model: SDD, cand, logp, noise_std=None, generator=None):
    """The original network: all L*k slots are tokens; the bias alpha_h * log p (absent: -inf) is added to
    the attention scores, computed explicitly."""
    B, L, k = cand.shape
    emb = model.embed(cand)
    if noise_std is not None:
        rms = model.embed.weight.detach().pow(2).mean().sqrt()
        noise = torch.randn(emb.shape, generator=generator, dtype=emb.dtype)
        emb = emb + (noise_std * rms)[..., None, None] * noise
    finite = torch.isfinite(logp)
    position_in = (logp.exp()[..., None] * emb).sum(2, keepdim=True)
    feature = (logp.masked_fill(~finite, 0.0) / math.log(model.vocab_size)).clamp(min=-2.0)
    x = (emb + position_in + model.prob_in(feature[..., None])).reshape(B, L * k, -1)
    positions = torch.arange(L).repeat_interleave(k)
    key_logp = logp.reshape(B, L * k)
    for block in model.blocks:
        attn, H = block.attn, block.attn.n_heads
        q, key, v = attn.qkv(block.norm1(x)).view(B, L * k, 3, H, -1).permute(2, 0, 3, 1, 4)
        cos, sin = attn.cos[positions], attn.sin[positions]
        q, key = apply_rotary(q, cos, sin), apply_rotary(key, cos, sin)
        bias = attn.prob_scale[None, :, None] * key_logp.masked_fill(~torch.isfinite(key_logp), 0.0)[:, None]
        bias = bias.masked_fill(~torch.isfinite(key_logp)[:, None], float("-inf"))[:, :, None, :]
        weights = (q @ key.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias).softmax(-1)
        x = x + attn.out((weights @ v).transpose(1, 2).reshape(B, L * k, -1))
        x = x + block.ffn(block.norm2(x))
    h = model.norm(x).view(B, L, k, -1)
    score = model.readout(h).squeeze(-1) + model.readout_prob_scale * logp.masked_fill(~finite, 0.0)
    weights = score.masked_fill(~finite, float("-inf")).softmax(-1)
    return (weights[..., None] * h).sum(2) @ model.embed.weight.T


def mixed_state(model: SDD, B=3, L=10, seed=0):
    """Clean one-hot positions (absent spare slots) and open ones, different per row."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.vocab_size, (B, L), generator=g)
    open_ = torch.rand(B, L, generator=g) < torch.tensor([0.2, 0.6, 1.0])[:B, None]
    cand, logp = model.noised_state(tokens, open_, torch.tensor([0.3, 0.7, 0.9])[:B], model.cfg.k, g)
    return cand, logp, open_


def test_packed_network_equals_the_dense_formulation_logits_and_gradients():
    torch.manual_seed(0)
    model = build(Config(d_model=32, n_layers=2, n_heads=2, k=4, max_len=64), 40, None)
    with torch.no_grad():  # a non-trivial learned scale, different per head
        for block in model.blocks:
            block.attn.prob_scale.copy_(torch.tensor([0.4, 1.7]))
    cand, logp, open_ = mixed_state(model)
    noise_std = 0.5 * open_.float()
    new = model(cand, logp, noise_std, torch.Generator().manual_seed(3))
    ref = dense_reference(model, cand, logp, noise_std, torch.Generator().manual_seed(3))
    torch.testing.assert_close(new, ref, atol=1e-5, rtol=1e-5)
    # the same gradients, alpha_h included: the scale still learns through the query channel
    new.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref.square().mean().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-6, rtol=1e-4, msg=name)
    assert grads["blocks.0.attn.prob_scale"].abs().min() > 0


def test_absent_slots_are_inert_and_logits_at_selected_positions_are_the_full_ones():
    torch.manual_seed(0)
    model = build(Config(d_model=32, n_layers=1, n_heads=2, k=4, max_len=64), 40, None).eval()
    cand, logp, _ = mixed_state(model)
    absent = torch.isinf(logp)
    assert absent.any()
    shuffled = torch.where(absent, torch.randint(0, 40, cand.shape), cand)
    full = model(cand, logp)
    assert torch.equal(full, model(shuffled, logp))  # exactly: absent slots never enter the network
    at = torch.rand(cand.shape[:2]) < 0.5
    torch.testing.assert_close(model(cand, logp, at=at), full[at], atol=1e-6, rtol=1e-6)


def test_attention_runs_on_the_flash_kernel_in_training():
    torch.manual_seed(0)
    model = build(Config(d_model=32, n_layers=1, n_heads=2, k=4, max_len=64), 40, None)
    batch = Batch.from_tokens(torch.randint(0, 40, (2, 12)), prompt_len=3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss, _ = model.loss(batch)
        loss.backward()
    ops = {event.key for event in prof.key_averages()}
    assert any("flash_attention" in op for op in ops), sorted(op for op in ops if "attention" in op)
    assert not any("attention_math" in op for op in ops)


def test_one_token_per_clean_position():
    model = build(Config(d_model=32, n_layers=1, n_heads=2, k=8, max_len=64), 40, None)
    seen = []
    model.blocks[0].attn.register_forward_hook(lambda mod, args, out: seen.append(args[3]))
    cand, logp = one_hot_state(torch.randint(0, 40, (2, 10)), 8)
    open_ = torch.zeros(2, 10, dtype=torch.bool)
    open_[1, 6:] = True
    cand, logp = model.blank_state(cand[..., 0], open_, 8)
    model(cand, logp)
    assert seen == [[10, 6 + 4 * 8]]  # tokens per sequence: 1 per clean position, k per open one


def test_pooled_ablation_entry_builds_trains_and_samples():
    assert ENTRIES["sdd-pooled"] == ("sdd", {"pooled": True})
    cfg = make_entry_config("sdd-pooled", budget="smoke", data="-", out="-")
    model = load_variant("sdd").build(make_config("sdd", cfg.model), 30, None)
    assert model.cfg.pooled and not hasattr(model, "blocks")
    torch.manual_seed(0)
    batch = Batch.from_tokens(torch.randint(0, 30, (4, 12)), prompt_len=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    out = model.generate(batch.tokens[:2, :4], 6, steps=3)
    assert out.shape == (2, 10) and torch.equal(out[:, :4], batch.tokens[:2, :4])
