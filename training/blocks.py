"""Shared transformer parts: RMSNorm, RoPE, attention (MHA and DeepSeek-V2 multi-head latent attention),
SwiGLU and Mish feed-forwards, a pre-norm Block and the `Transformer` backbone every variant builds on.

    cfg = BackboneConfig(d_model=256, n_layers=5, n_heads=4, attn="mla", ffn="mish", causal=False)
    net = Transformer(cfg, vocab_size=8192)      # vocab_size=None: feed embeddings instead of ids
    hidden = net(ids)                            # (B, L, d_model), final norm applied
    hidden = net(ids, attn_bias=padding_bias(pad_mask))   # bool (True = may attend) or additive float

Parameter budgets match across choices: SwiGLU (3 matrices, hidden 8/3 d) and Mish (2 matrices,
hidden 4 d) both hold ~8 d^2; MLA with the default ranks holds about what MHA's 4 d^2 does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wikimix.errors import ConfigError


@dataclass
class BackboneConfig:
    d_model: int = 256
    n_layers: int = 5
    n_heads: int = 4
    attn: str = "mha"  # 'mha' | 'mla'
    ffn: str = "swiglu"  # 'swiglu' | 'mish'
    causal: bool = False
    max_len: int = 1024
    dropout: float = 0.0
    rope_base: float = 10000.0
    # multi-head latent attention (0 = the defaults noted)
    kv_rank: int = 0  # compressed KV width; default d_model // 2
    q_rank: int = 0  # compressed query width; 0 = queries are not compressed
    rope_dim: int = 0  # decoupled RoPE key/query width per head; default head_dim // 2

    def __post_init__(self) -> None:
        if self.attn not in ("mha", "mla"):
            raise ConfigError(f"attn must be 'mha' or 'mla', got {self.attn!r}")
        if self.ffn not in ("swiglu", "mish"):
            raise ConfigError(f"ffn must be 'swiglu' or 'mish', got {self.ffn!r}")
        for name in ("d_model", "n_layers", "n_heads", "max_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ConfigError("head dim d_model / n_heads must be even for RoPE")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def of(cls, variant_cfg, causal: bool, d_model: int | None = None) -> BackboneConfig:
        """The backbone of a variant Config: every variant carries the same backbone fields."""
        return cls(
            d_model=d_model or variant_cfg.d_model,
            n_layers=variant_cfg.n_layers,
            n_heads=variant_cfg.n_heads,
            attn=variant_cfg.attn,
            ffn=variant_cfg.ffn,
            causal=causal,
            max_len=variant_cfg.max_len,
            dropout=variant_cfg.dropout,
        )


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x * self.weight).to(dtype)


# ---- rotary position embeddings -------------------------------------------------------------------------


def rope_tables(dim: int, max_len: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos, sin of shape (max_len, dim) for the rotate-half convention."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., T, D) by per-position angles; cos/sin are (T, D) (already sliced to positions)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


# ---- attention -------------------------------------------------------------------------------------------


class LayerCache:
    """Keys/values (or MLA's compressed latents) of the positions seen so far, for one layer.
    A frozen cache lends its positions to every later pass without adding theirs."""

    def __init__(self) -> None:
        self.tensors: tuple[Tensor, ...] | None = None
        self.frozen = False

    def update(self, *new: Tensor) -> tuple[Tensor, ...]:
        if self.tensors is None:
            joined = new
        else:
            joined = tuple(torch.cat([old, n], dim=-2) for old, n in zip(self.tensors, new, strict=True))
        if not self.frozen:
            self.tensors = joined
        return joined


class KVCache:
    """One LayerCache per block plus `length`, the first position of the next pass (its RoPE offset;
    in causal decoding, the number of cached positions).

    Causal decoding appends each pass's positions. A bidirectional model's caches (the diffusion
    samplers' Fast-dLLM caches): one full pass records every position, then `keep(start)` keeps the
    positions before `start` (prefix cache) or `keep(start, end)` all but start..end-1 (dual cache), and
    freezes; later passes over positions start.. (or start..end-1) attend to the kept keys and to each
    other. Keys are stored with their rotation applied, so their order in the cache does not matter to a
    bidirectional pass."""

    def __init__(self, n_layers: int):
        self.layers = [LayerCache() for _ in range(n_layers)]
        self.length = 0
        self.frozen = False

    def keep(self, start: int, end: int | None = None) -> None:
        """Keep the cached positions before `start` (and from `end` on), freeze; later passes start there."""
        for layer in self.layers:
            if layer.tensors is not None:
                layer.tensors = tuple(
                    t[..., :start, :]
                    if end is None
                    else torch.cat([t[..., :start, :], t[..., end:, :]], dim=-2)
                    for t in layer.tensors
                )
            layer.frozen = True
        self.length, self.frozen = min(start, self.length), True


def padding_bias(pad_mask: Tensor) -> Tensor | None:
    """Key-padding mask (B, 1, 1, L), True = may attend; None when nothing is padded (faster kernels)."""
    if bool(pad_mask.all()):
        return None
    return pad_mask[:, None, None, :]


def _attend(
    q: Tensor, k: Tensor, v: Tensor, causal: bool, attn_bias: Tensor | None, dropout: float
) -> Tensor:
    """SDPA with a causal flag and/or a bias; queries are the last q_len of the k_len positions."""
    q_len, k_len = q.shape[-2], k.shape[-2]
    mask = attn_bias
    if causal and (mask is not None or q_len != k_len):
        if q_len == 1 and mask is None:
            causal_mask = None  # one new query may see every cached key
        else:
            causal_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=q.device).tril(k_len - q_len)
        if mask is None:
            mask = causal_mask
        elif causal_mask is not None:
            if mask.dtype == torch.bool:
                mask = mask & causal_mask
            else:
                mask = mask.masked_fill(~causal_mask, float("-inf"))
        causal = False
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)


class Attention(nn.Module):
    """Multi-head self-attention with RoPE, fused QKV projection and torch SDPA."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.n_heads, self.head_dim, self.causal = cfg.n_heads, cfg.head_dim, cfg.causal
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_len, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(
        self, x: Tensor, attn_bias: Tensor | None = None, cache: LayerCache | None = None, offset: int = 0
    ) -> Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        cos, sin = self.cos[offset : offset + t], self.sin[offset : offset + t]
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(k, v)
        y = _attend(q, k, v, self.causal, attn_bias, self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))


class MultiHeadLatentAttention(nn.Module):
    """DeepSeek-V2 MLA: keys and values come from one low-rank latent c_kv (the only thing a cache must
    hold, with a single shared RoPE key); RoPE lives in separate 'decoupled' query/key dims because a
    rotation cannot be absorbed into the latent up-projection."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.n_heads, self.causal, self.dropout = cfg.n_heads, cfg.causal, cfg.dropout
        self.nope_dim = cfg.head_dim
        self.rope_dim = cfg.rope_dim or max(2, cfg.head_dim // 2)
        self.v_dim = cfg.head_dim
        self.kv_rank = cfg.kv_rank or cfg.d_model // 2
        q_out = cfg.n_heads * (self.nope_dim + self.rope_dim)
        if cfg.q_rank:
            self.q_down = nn.Linear(cfg.d_model, cfg.q_rank, bias=False)
            self.q_norm = RMSNorm(cfg.q_rank)
            self.q_up = nn.Linear(cfg.q_rank, q_out, bias=False)
        else:
            self.q_proj = nn.Linear(cfg.d_model, q_out, bias=False)
        self.kv_down = nn.Linear(cfg.d_model, self.kv_rank + self.rope_dim, bias=False)
        self.kv_norm = RMSNorm(self.kv_rank)
        self.kv_up = nn.Linear(self.kv_rank, cfg.n_heads * (self.nope_dim + self.v_dim), bias=False)
        self.proj = nn.Linear(cfg.n_heads * self.v_dim, cfg.d_model, bias=False)
        cos, sin = rope_tables(self.rope_dim, cfg.max_len, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(
        self, x: Tensor, attn_bias: Tensor | None = None, cache: LayerCache | None = None, offset: int = 0
    ) -> Tensor:
        b, t, _ = x.shape
        h = self.n_heads
        q = self.q_up(self.q_norm(self.q_down(x))) if hasattr(self, "q_down") else self.q_proj(x)
        q = q.view(b, t, h, self.nope_dim + self.rope_dim).transpose(1, 2)
        q_nope, q_rope = q.split([self.nope_dim, self.rope_dim], dim=-1)
        cos, sin = self.cos[offset : offset + t], self.sin[offset : offset + t]
        q_rope = apply_rotary(q_rope, cos, sin)

        c_kv, k_rope = self.kv_down(x).split([self.kv_rank, self.rope_dim], dim=-1)
        k_rope = apply_rotary(k_rope[:, None], cos, sin)  # (B, 1, T, rope_dim): one key shared by heads
        c_kv = self.kv_norm(c_kv)[:, None]  # (B, 1, T, kv_rank)
        if cache is not None:
            c_kv, k_rope = cache.update(c_kv, k_rope)
        s = c_kv.shape[-2]
        kv = self.kv_up(c_kv[:, 0]).view(b, s, h, self.nope_dim + self.v_dim).transpose(1, 2)
        k_nope, v = kv.split([self.nope_dim, self.v_dim], dim=-1)
        q = torch.cat([q_nope, q_rope], dim=-1)
        k = torch.cat([k_nope, k_rope.expand(b, h, s, self.rope_dim)], dim=-1)
        y = _attend(q, k, v, self.causal, attn_bias, self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))


# ---- feed-forward ----------------------------------------------------------------------------------------


def _round_up(x: float, multiple: int = 32) -> int:
    return int(math.ceil(x / multiple) * multiple)


class SwiGLU(nn.Module):
    """silu(x W1) * (x W3), then W2; hidden 8/3 d so it costs what a 4 d GELU MLP does."""

    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or _round_up(8 * d_model / 3)
        self.w13 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


class MishFFN(nn.Module):
    """Mish(x W1) W2 with hidden 4 d (the seed's LLaDA-byte feed-forward)."""

    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 4 * d_model
        self.w1 = nn.Linear(d_model, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.mish(self.w1(x)))


# ---- block and backbone ----------------------------------------------------------------------------------


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model)
        self.attn = MultiHeadLatentAttention(cfg) if cfg.attn == "mla" else Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model)
        self.ffn = MishFFN(cfg.d_model) if cfg.ffn == "mish" else SwiGLU(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, attn_bias: Tensor | None = None, cache: LayerCache | None = None, offset: int = 0
    ) -> Tensor:
        x = x + self.drop(self.attn(self.attn_norm(x), attn_bias, cache, offset))
        return x + self.drop(self.ffn(self.ffn_norm(x)))


class Transformer(nn.Module):
    """Token embeddings (optional), n_layers Blocks, final RMSNorm. Returns hidden states."""

    def __init__(self, cfg: BackboneConfig, vocab_size: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model) if vocab_size else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: shrink residual-branch outputs with depth
            if name.endswith(("proj.weight", "w2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor, attn_bias: Tensor | None = None, kv_cache: KVCache | None = None) -> Tensor:
        if x.dtype in (torch.long, torch.int32, torch.int64):
            if self.embed is None:
                raise ValueError("this Transformer has no embeddings: pass embeddings (B, L, d)")
            x = self.embed(x)
        offset = kv_cache.length if kv_cache is not None else 0
        if offset + x.shape[1] > self.cfg.max_len:
            raise ValueError(f"sequence of {offset + x.shape[1]} exceeds max_len {self.cfg.max_len}")
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, attn_bias, kv_cache.layers[i] if kv_cache is not None else None, offset)
        if kv_cache is not None and not kv_cache.frozen:
            kv_cache.length += x.shape[1]
        return self.norm(x)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
