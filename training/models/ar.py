"""`ar`: the autoregressive baseline. A causal transformer predicts token i from tokens < i; generation
runs with a KV cache, temperature and top-p.

    wikimix train ar --data NAME-docs --out runs/ar --budget bench-cpu
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.blocks import BackboneConfig, KVCache, Transformer
from training.samplers import sample_tokens
from training.tokenizers import SpecialIds
from training.variant import Batch, scored_mask


@dataclass
class Config:
    d_model: int = 256
    n_layers: int = 5
    n_heads: int = 4
    attn: str = "mha"  # 'mha' | 'mla'
    ffn: str = "swiglu"  # 'swiglu' | 'mish'
    max_len: int = 1024
    dropout: float = 0.0
    tie_embeddings: bool = True


class AR(nn.Module):
    name = "ar"
    nll_is_bound = False

    def __init__(self, cfg: Config, vocab_size: int, special: SpecialIds):
        super().__init__()
        self.cfg, self.vocab_size, self.special = cfg, vocab_size, special
        self.backbone = Transformer(BackboneConfig.of(cfg, causal=True), vocab_size)
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.backbone.embed.weight

    def _scored_nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Per-token NLL of every scored position i >= 1 given tokens < i (logits only where scored)."""
        hidden = self.backbone(batch.tokens[:, :-1])
        targets = batch.tokens[:, 1:]
        scored = scored_mask(batch)[:, 1:]
        logits = self.head(hidden[scored])
        return F.cross_entropy(logits.float(), targets[scored], reduction="none"), scored.sum()

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        token_nll, n = self._scored_nll(batch)
        loss = token_nll.sum() / n.clamp_min(1)
        return loss, {"nll": loss.item()}

    @torch.no_grad()
    def nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        token_nll, n = self._scored_nll(batch)
        return token_nll.sum(), n

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        **_diffusion_options,  # steps, method, ... mean nothing here; accepted so callers stay uniform
    ) -> Tensor:
        """prompt (B, P) -> (B, P + max_new_tokens), one forward of one token per step on a KV cache."""
        cache = KVCache(self.cfg.n_layers)
        out = prompt
        logits = self.head(self.backbone(prompt, kv_cache=cache)[:, -1])
        for i in range(max_new_tokens):
            token = sample_tokens(logits, temperature, top_p, generator)[:, None]
            out = torch.cat([out, token], dim=1)
            if i + 1 < max_new_tokens:
                logits = self.head(self.backbone(token, kv_cache=cache)[:, -1])
        return out


def build(cfg: Config, vocab_size: int, special: SpecialIds) -> AR:
    return AR(cfg, vocab_size, special)
