"""The fast diffusion sampler (Fast-dLLM): confidence-threshold parallel decoding and a prefix KV cache,
for mdlm (MHA) and llada-byte (MLA), exact where it claims to be."""

from __future__ import annotations

import pytest
import torch

from training import samplers
from training.models import load_variant
from training.models import make_config as model_config
from training.tokenizers import ByteTokenizer
from training.variant import Batch
from wikimix.errors import ConfigError

TOK = ByteTokenizer()
MASK = TOK.special.mask_id
VARIANTS = ("mdlm", "llada-byte")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(name: str):
    torch.manual_seed(0)
    cfg = model_config(name, {"d_model": 32, "n_layers": 2, "n_heads": 2, "max_len": 64})
    return load_variant(name).build(cfg, TOK.vocab_size, TOK.special).eval()


def prompt(batch: int = 2, length: int = 7) -> torch.Tensor:
    return torch.randint(10, 250, (batch, length), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize(("steps", "block_len"), [(12, None), (6, None), (8, 4)])
def test_threshold_one_without_cache_reproduces_low_confidence(name, steps, block_len):
    model = tiny(name)
    p = prompt()
    options = {"steps": steps, "block_len": block_len, "temperature": 1.0}
    reference = model.generate(
        p, 12, method="low_confidence", generator=torch.Generator().manual_seed(5), **options
    )
    fast = model.generate(
        p,
        12,
        method="fast",
        threshold=1.0,
        cache="none",
        generator=torch.Generator().manual_seed(5),
        **options,
    )
    assert torch.equal(fast, reference)


@pytest.mark.parametrize("name", VARIANTS)
def test_prefix_cache_first_step_logits_equal_the_uncached_ones(name):
    model = tiny(name)
    P = 7
    x = torch.cat([prompt(2, P), torch.full((2, 10), MASK)], dim=1)
    uncached = model.denoise_logits(x)
    cache = model.new_cache()
    recorded = model.denoise_logits(x, kv_cache=cache)  # the block's first step: the whole sequence
    assert torch.equal(recorded, uncached)
    cache.keep(P)
    assert cache.length == P and all(t.shape[-2] == P for layer in cache.layers for t in layer.tensors)
    # nothing decoded yet: the cached prompt keys are the true ones, so the suffix pass is exact
    suffix = model.denoise_logits(x[:, P:], kv_cache=cache)
    torch.testing.assert_close(suffix, uncached[:, P:], atol=1e-5, rtol=1e-5)
    # the frozen cache lends its keys without growing
    assert cache.length == P and all(t.shape[-2] == P for layer in cache.layers for t in layer.tensors)
    # once the suffix changes, the cached prompt keys are stale: the cache is approximate from here on
    x[:, P : P + 5] = prompt(2, 5)
    stale = model.denoise_logits(x[:, P:], kv_cache=cache)
    assert not torch.allclose(stale, model.denoise_logits(x)[:, P:], atol=1e-4)


@pytest.mark.parametrize("name", VARIANTS)
def test_dual_cache_first_step_logits_equal_the_uncached_ones(name):
    model = tiny(name)
    x = torch.cat([prompt(2, 7), torch.full((2, 12), MASK)], dim=1)
    uncached = model.denoise_logits(x)
    cache = model.new_cache()
    model.denoise_logits(x, kv_cache=cache)
    cache.keep(9, 13)  # the block is columns 9..12: the prompt, 2 masks before it and 6 after are kept
    assert cache.length == 9 and all(t.shape[-2] == 19 - 4 for layer in cache.layers for t in layer.tensors)
    block = model.denoise_logits(x[:, 9:13], kv_cache=cache)  # RoPE at columns 9..12, keys outside cached
    torch.testing.assert_close(block, uncached[:, 9:13], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_fast_sampler_keeps_the_prompt_and_fills_every_position(name):
    model = tiny(name)
    p = prompt(3, 5)
    for block_len in (None, 4):
        for cache in ("prefix", "dual"):
            out = model.generate(
                p, 10, method="fast", steps=10, block_len=block_len, threshold=0.5, cache=cache
            )
            assert out.shape == (3, 15) and torch.equal(out[:, :5], p) and not (out == MASK).any()


def test_confident_model_commits_many_tokens_per_step():
    """A model trained to one deterministic continuation: above the threshold it fills the 12 positions
    in far fewer forward passes than the 12 steps the schedule allows."""
    model = tiny("mdlm").train()
    seq = torch.tensor([TOK.encode("abcdefghijklmnopqrstuvw")]).repeat(16, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(300):
        loss, _ = model.loss(Batch.from_tokens(seq))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    calls = []
    model.backbone.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[1]))
    slow = model.generate(seq[:1, :11], 12, method="low_confidence", steps=12)
    assert len(calls) == 12
    calls.clear()
    fast = model.generate(seq[:1, :11], 12, method="fast", steps=12, threshold=0.7)
    assert len(calls) <= 4 and calls[0] == 23 and all(n == 12 for n in calls[1:])  # cached prompt
    assert torch.equal(fast, seq[:1]) and torch.equal(slow, seq[:1])


def test_bad_fast_options_are_config_errors():
    model = tiny("mdlm")
    x = torch.cat([prompt(1, 3), torch.full((1, 4), MASK)], dim=1)
    with pytest.raises(ConfigError, match="threshold"):
        samplers.sample(model.denoise_logits, x, MASK, method="fast", threshold=0.0)
    with pytest.raises(ConfigError, match="unknown cache"):
        samplers.sample(model.denoise_logits, x, MASK, method="fast", cache="full", new_cache=model.new_cache)
    with pytest.raises(ConfigError, match="KV cache"):
        samplers.sample(model.denoise_logits, x, MASK, method="fast")  # no new_cache given
    out = samplers.sample(model.denoise_logits, x, MASK, method="fast", cache="none", steps=4)
    assert not (out == MASK).any()
