"""Token sampling shared by every variant: temperature / top-p with Gumbel-max in float64, and the
masked-diffusion samplers (MDLM ancestral, LLaDA low-confidence remasking, semi-autoregressive blocks,
ReMDM remasking, and Fast-dLLM's "fast": parallel decoding above a confidence threshold on a prefix cache).

A masked-diffusion sampler needs only `denoise(x) -> logits (B, L, V)`: the model's prediction of the
clean tokens at every position of a partly masked sequence. Positions that are not masked at the start
(the prompt) are never changed.

    x = torch.cat([prompt, torch.full((B, 50), mask_id)], dim=1)
    out = sample(model.denoise_logits, x, mask_id, method="low_confidence", steps=64, block_len=16)
    out = sample(model.denoise_logits, x, mask_id, method="fast", threshold=0.9, new_cache=model.new_cache)

"fast" (Fast-dLLM, Wu et al. 2025): low-confidence remasking that also commits, at each step, every draw
whose probability exceeds `threshold` (so a confident model fills many positions per step; never fewer
than the linear schedule's count, so a block is filled within its steps) and stops when its block is
filled. Its caches (a denoiser `denoise(x, kv_cache=...)` plus `new_cache`): the first step of each
block runs the whole sequence and records every key; `cache="prefix"` keeps the keys of everything before
the block (prompt and finished blocks) and later steps run the block and what follows it; `cache="dual"`
(the default) also keeps the keys after the block, and later steps run the block alone. Both are
Fast-dLLM's caches and APPROXIMATE for a bidirectional model (the cached keys would change as the block
is decoded; they are refreshed every block); the first step of each block is exact. With threshold=1.0
and cache="none", "fast" draws exactly what "low_confidence" does.

Why float64 Gumbel noise: with float32 uniforms, -log(-log(u)) is truncated in the tail, so rare tokens
are drawn less often than they should be, which acts like a lower temperature (LLaDA's finding).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from training.blocks import KVCache
from wikimix.errors import ConfigError

METHODS = ("ancestral", "low_confidence", "semi_ar", "remdm", "fast")
CACHES = ("none", "prefix", "dual")  # the fast sampler's KV caches
Denoiser = Callable[..., Tensor]  # denoise(x) -> logits; "fast" with a cache: denoise(x, kv_cache=...)


def top_p_filter(logits: Tensor, top_p: float) -> Tensor:
    """Logits with everything outside the smallest set of tokens whose probability reaches top_p at -inf."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    drop = probs.cumsum(-1) - probs > top_p  # the most likely token always survives
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


def sample_tokens(
    logits: Tensor, temperature: float = 1.0, top_p: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """One token per row of logits (..., V): argmax at temperature 0, else Gumbel-max in float64."""
    if temperature < 0 or not 0 < top_p <= 1:
        raise ConfigError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if temperature == 0:
        return logits.argmax(-1)
    scaled = top_p_filter(logits.double() / temperature, top_p)
    u = torch.rand(scaled.shape, dtype=torch.float64, device=scaled.device, generator=generator)
    gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(torch.float64).tiny)))
    return (scaled + gumbel).argmax(-1)


def _uniform(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(like.shape, device=like.device, generator=generator)


def _num_to_unmask(masked: Tensor, steps: int) -> Tensor:
    """(B, steps): LLaDA's schedule, each row's masked count spread as evenly as possible over the steps."""
    count = masked.sum(-1, keepdim=True)
    base = count // steps
    extra = torch.arange(steps, device=masked.device)[None, :] < count % steps
    return base + extra.long()


def sample(
    denoise: Denoiser,
    x: Tensor,
    mask_id: int,
    method: str = "ancestral",
    steps: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    block_len: int | None = None,
    eta: float = 0.05,
    generator: torch.Generator | None = None,
    threshold: float = 0.9,
    cache: str = "dual",
    new_cache: Callable[[], KVCache] | None = None,
) -> Tensor:
    """Fill every masked position of x (B, L). With `block_len`, the masked region is generated in
    left-to-right blocks (semi-autoregressive), `steps` split evenly among the blocks; later blocks
    stay masked (visible as masks) while an earlier one is decoded. `threshold`, `cache` and `new_cache`
    (an empty KVCache for the denoiser's model) are the "fast" sampler's (see the module docstring)."""
    if method not in METHODS:
        raise ConfigError(f"unknown sampler {method!r} (known: {', '.join(METHODS)})")
    if steps < 1:
        raise ConfigError(f"sampler steps must be >= 1, got {steps}")
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    if cache not in CACHES:
        raise ConfigError(f"unknown cache {cache!r} (known: {', '.join(CACHES)})")
    if method == "fast" and cache != "none" and new_cache is None:
        raise ConfigError("the fast sampler's cache needs a model with a KV cache (or cache='none')")
    if method == "semi_ar":
        method, block_len = "low_confidence", block_len or 32
    if block_len is not None and block_len < 1:
        raise ConfigError(f"block_len must be >= 1, got {block_len}")
    x = x.clone()
    to_fill = x == mask_id
    if not to_fill.any():
        return x
    positions = torch.nonzero(to_fill.any(0)).flatten()
    first, last = int(positions[0]), int(positions[-1]) + 1
    block_len = block_len or (last - first)
    n_blocks = math.ceil((last - first) / block_len)
    block_steps = max(1, math.ceil(steps / n_blocks))
    for b in range(n_blocks):
        lo, hi = first + b * block_len, min(last, first + (b + 1) * block_len)
        region = torch.zeros_like(to_fill)
        region[:, lo:hi] = to_fill[:, lo:hi]
        if method == "fast":
            cache_of = None if cache == "none" else new_cache
            span = (lo, hi if cache == "dual" else None)
            options = (mask_id, block_steps, temperature, top_p, threshold, cache_of, generator)
            x = _fast(denoise, x, region, span, *options)
        else:
            x = _STEPPERS[method](
                denoise, x, region, mask_id, block_steps, temperature, top_p, eta, generator
            )
    return x


def _predict(denoise: Denoiser, x: Tensor, mask_id: int) -> Tensor:
    logits = denoise(x).float()
    logits[..., mask_id] = float("-inf")  # never predict the mask itself (SUBS)
    return logits


def _ancestral(denoise, x, region, mask_id, steps, temperature, top_p, eta, generator) -> Tensor:
    """MDLM's reverse process under alpha_t = 1 - t: going from t to s, each masked position is revealed
    with probability (t - s) / t, the others stay masked; revealed tokens are carried over (SUBS).
    When a step reveals nothing the logits are reused (MDLM's caching sampler)."""
    logits = None
    for i in range(steps):
        t, s = 1 - i / steps, 1 - (i + 1) / steps
        masked = region & (x == mask_id)
        if not masked.any():
            break
        reveal = masked & (_uniform(masked, generator) < (t - s) / t)
        if reveal.any():
            if logits is None:
                logits = _predict(denoise, x, mask_id)
            x = torch.where(reveal, sample_tokens(logits, temperature, top_p, generator), x)
            logits = None
    return x


def _low_confidence(denoise, x, region, mask_id, steps, temperature, top_p, eta, generator) -> Tensor:
    """LLaDA: predict every masked position, keep the k most confident predictions, re-mask the rest;
    k follows a linear schedule so the region is filled after `steps` steps."""
    schedule = _num_to_unmask(region & (x == mask_id), steps)
    for i in range(steps):
        masked = region & (x == mask_id)
        if not masked.any():
            break
        logits = _predict(denoise, x, mask_id)
        x0 = sample_tokens(logits, temperature, top_p, generator)
        confidence = logits.softmax(-1).gather(-1, x0[..., None]).squeeze(-1)
        confidence = confidence.masked_fill(~masked, float("-inf"))
        rank = confidence.argsort(-1, descending=True).argsort(-1)
        keep = masked & (rank < schedule[:, i : i + 1])
        x = torch.where(keep, x0, x)
    return x


def _fast(
    denoise: Denoiser,
    x: Tensor,
    region: Tensor,
    span: tuple[int, int | None],
    mask_id: int,
    steps: int,
    temperature: float,
    top_p: float,
    threshold: float,
    new_cache: Callable[[], KVCache] | None,
    generator: torch.Generator | None,
) -> Tensor:
    """Low-confidence remasking plus every draw above `threshold` committed at once, on the block whose
    columns are span = (start, end); with `new_cache`, a cache of the columns before start (end None: the
    prefix cache) or outside start..end-1 (the dual cache), refreshed here (module docstring)."""
    schedule = _num_to_unmask(region & (x == mask_id), steps)
    kv_cache, (lo, hi) = None, (0, x.shape[1])
    for i in range(steps):
        masked = region & (x == mask_id)
        if not masked.any():
            break
        if new_cache is None:
            logits = _predict(denoise, x, mask_id)
        elif kv_cache is None:  # the block's first step: the whole sequence, recording every key
            kv_cache = new_cache()
            logits = _predict(partial(denoise, kv_cache=kv_cache), x, mask_id)
            kv_cache.keep(*span)
        else:  # later steps: the block (and, prefix cache, what follows it) on the cached keys
            lo, hi = span[0], span[1] or x.shape[1]
            logits = _predict(partial(denoise, kv_cache=kv_cache), x[:, lo:hi], mask_id)
        masked, current = masked[:, lo:hi], x[:, lo:hi]
        x0 = sample_tokens(logits, temperature, top_p, generator)
        confidence = logits.softmax(-1).gather(-1, x0[..., None]).squeeze(-1)
        confidence = confidence.masked_fill(~masked, float("-inf"))
        rank = confidence.argsort(-1, descending=True).argsort(-1)
        keep = masked & ((rank < schedule[:, i : i + 1]) | (confidence > threshold))
        x = torch.cat([x[:, :lo], torch.where(keep, x0, current), x[:, hi:]], dim=1)
    return x


def _remdm(denoise, x, region, mask_id, steps, temperature, top_p, eta, generator) -> Tensor:
    """ReMDM (Wang et al. 2025), 'cap' schedule: like ancestral, but each already-decoded token is
    re-masked with probability sigma_t = min(eta, (1 - alpha_s) / alpha_t), so early mistakes can be
    revised; masked tokens are revealed with (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t)."""
    for i in range(steps):
        t, s = 1 - i / steps, 1 - (i + 1) / steps
        alpha_t, alpha_s = 1 - t, 1 - s
        sigma = min(eta, (1 - alpha_s) / alpha_t) if alpha_t > 0 else 0.0
        masked = region & (x == mask_id)
        decoded = region & ~masked
        logits = _predict(denoise, x, mask_id)
        reveal_p = (alpha_s - (1 - sigma) * alpha_t) / (1 - alpha_t) if alpha_t < 1 else 1.0
        reveal = masked & (_uniform(masked, generator) < reveal_p)
        remask = decoded & (_uniform(decoded, generator) < sigma)
        x = torch.where(reveal, sample_tokens(logits, temperature, top_p, generator), x)
        x = x.masked_fill(remask, mask_id)
    return x


_STEPPERS = {"ancestral": _ancestral, "low_confidence": _low_confidence, "remdm": _remdm}
