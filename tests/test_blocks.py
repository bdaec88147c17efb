"""Transformer building blocks: RoPE, causal/padded attention, KV cache, MLA, feed-forwards."""

from __future__ import annotations

import pytest
import torch

from training.blocks import (
    Attention,
    BackboneConfig,
    KVCache,
    MishFFN,
    MultiHeadLatentAttention,
    RMSNorm,
    SwiGLU,
    Transformer,
    apply_rotary,
    count_parameters,
    padding_bias,
    rope_tables,
)
from wikimix.errors import ConfigError

torch.set_num_threads(2)


def test_rmsnorm_normalises_rms():
    x = torch.randn(3, 5, 16) * 7
    y = RMSNorm(16)(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(3, 5), atol=1e-3)


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    cos, sin = rope_tables(8, 64)
    q, k = torch.randn(8), torch.randn(8)

    def score(i: int, j: int) -> float:
        qi = apply_rotary(q[None], cos[i : i + 1], sin[i : i + 1])[0]
        kj = apply_rotary(k[None], cos[j : j + 1], sin[j : j + 1])[0]
        return float(qi @ kj)

    assert score(3, 1) == pytest.approx(score(40, 38), abs=1e-4)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-4)


@pytest.mark.parametrize("attn", ["mha", "mla"])
def test_causal_backbone_ignores_the_future_and_cache_matches_full_pass(attn):
    torch.manual_seed(0)
    cfg = BackboneConfig(d_model=32, n_layers=2, n_heads=4, attn=attn, causal=True, max_len=64)
    net = Transformer(cfg, vocab_size=50).eval()
    ids = torch.randint(0, 50, (2, 12))
    full = net(ids)
    changed = ids.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 50
    assert torch.allclose(net(changed)[:, :8], full[:, :8], atol=1e-5)
    assert not torch.allclose(net(changed)[:, 8:], full[:, 8:], atol=1e-3)

    cache = KVCache(cfg.n_layers)
    parts = [net(ids[:, :5], kv_cache=cache)]  # prefill, then one token at a time, then a chunk of 3
    for i in range(5, 9):
        parts.append(net(ids[:, i : i + 1], kv_cache=cache))
    parts.append(net(ids[:, 9:], kv_cache=cache))
    assert cache.length == 12
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_mla_caches_only_the_compressed_latent_and_shared_rope_key():
    cfg = BackboneConfig(d_model=32, n_layers=1, n_heads=4, attn="mla", max_len=32)
    attn = MultiHeadLatentAttention(cfg)
    cache = KVCache(1)
    attn(torch.randn(2, 6, 32), cache=cache.layers[0])
    c_kv, k_rope = cache.layers[0].tensors
    assert c_kv.shape == (2, 1, 6, 16)  # kv_rank = d_model / 2, one latent for all heads
    assert k_rope.shape == (2, 1, 6, 4)  # decoupled RoPE key: head_dim / 2, shared by the heads
    # about the parameters of standard attention, despite the extra paths
    mha = count_parameters(Attention(cfg))
    assert 0.8 * mha <= count_parameters(attn) <= 1.2 * mha


def test_bidirectional_attention_with_padding_ignores_pad_keys():
    torch.manual_seed(0)
    net = Transformer(BackboneConfig(d_model=32, n_layers=2, n_heads=2, causal=False, max_len=32), 40).eval()
    ids = torch.randint(0, 40, (1, 10))
    pad_mask = torch.tensor([[True] * 7 + [False] * 3])
    a = net(ids, attn_bias=padding_bias(pad_mask))
    junk = ids.clone()
    junk[:, 7:] = 3
    b = net(junk, attn_bias=padding_bias(pad_mask))
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5)
    assert torch.allclose(net(ids[:, :7]), a[:, :7], atol=1e-5)
    assert padding_bias(torch.ones(2, 5, dtype=torch.bool)) is None
    # an additive float bias works the same as the boolean mask
    float_bias = torch.zeros(1, 1, 1, 10).masked_fill(~pad_mask[:, None, None, :], float("-inf"))
    assert torch.allclose(net(ids, attn_bias=float_bias)[:, :7], a[:, :7], atol=1e-5)


def test_feed_forwards_hold_the_same_parameters_and_differ():
    torch.manual_seed(0)
    swiglu, mish = SwiGLU(96), MishFFN(96)
    assert abs(count_parameters(swiglu) - count_parameters(mish)) / count_parameters(mish) < 0.05
    x = torch.randn(4, 96)
    assert swiglu(x).shape == mish(x).shape == (4, 96)


def test_backbone_accepts_embeddings_and_rejects_too_long_input():
    net = Transformer(BackboneConfig(d_model=16, n_layers=1, n_heads=2, max_len=8))
    assert net(torch.randn(2, 8, 16)).shape == (2, 8, 16)
    with pytest.raises(ValueError, match="exceeds max_len"):
        net(torch.randn(1, 9, 16))
    with pytest.raises(ValueError, match="no embeddings"):
        net(torch.zeros(1, 4, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attn": "gqa"}, "attn must be"),
        ({"ffn": "gelu"}, "ffn must be"),
        ({"d_model": 30, "n_heads": 4}, "divisible"),
        ({"d_model": 12, "n_heads": 4}, "even"),
        ({"n_layers": 0}, "n_layers must be >= 1"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_backbone_config_is_a_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BackboneConfig(**kwargs)
