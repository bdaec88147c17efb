"""`mdlm`: absorbing-state masked diffusion (Sahoo et al. 2024, MDLM) with the SUBS parameterisation.

Forward process: each scored token is replaced by <mask> with probability t (log-linear schedule,
alpha_t = 1 - t). The denoiser sees x_t with no time input and predicts x_0 at masked positions.
SUBS: the mask token gets zero probability, unmasked tokens are carried over unchanged, so the ELBO is
a masked cross-entropy weighted by -alpha'_t / (1 - alpha_t) = 1 / t:

    NELBO = E_t [ (1/t) * sum_{i masked} -log p(x_0^i | x_t) ]      (t ~ U(eps, 1))

t is drawn low-discrepancy (antithetic: one uniform offset, B evenly spaced points) to cut variance.
Prompt positions are never masked, so with a prompt the NELBO bounds -log p(continuation | prompt).
Logits are computed only at masked positions: the only ones with a loss term.

    wikimix train mdlm --data NAME-docs --out runs/mdlm --budget bench-cpu
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training import samplers
from training.blocks import BackboneConfig, KVCache, Transformer, padding_bias
from training.tokenizers import SpecialIds
from training.variant import Batch, scored_mask
from wikimix.errors import ConfigError


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
    sampling_eps: float = 1e-3  # t ~ U(eps, 1): keeps the 1/t weight finite
    antithetic: bool = True  # low-discrepancy t across the batch
    nll_samples: int = 8  # t draws per sequence when estimating the bound for evaluation
    sampler: str = "ancestral"  # default sampler for generate(): see training/samplers.py
    steps: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.sampling_eps < 1:
            raise ConfigError(f"sampling_eps must be in (0, 1), got {self.sampling_eps}")
        if self.nll_samples < 1 or self.steps < 1:
            raise ConfigError("nll_samples and steps must be >= 1")
        if self.sampler not in samplers.METHODS:
            raise ConfigError(f"unknown sampler {self.sampler!r} (known: {', '.join(samplers.METHODS)})")


class MDLM(nn.Module):
    name = "mdlm"
    nll_is_bound = True

    def __init__(self, cfg: Config, vocab_size: int, special: SpecialIds):
        super().__init__()
        self.cfg, self.vocab_size, self.special = cfg, vocab_size, special
        self.mask_id = special.mask_id
        self.backbone = Transformer(BackboneConfig.of(cfg, causal=False), vocab_size)
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.backbone.embed.weight

    # ---- noise ------------------------------------------------------------------------------------------

    def sample_t(self, batch_size: int, device: torch.device) -> Tensor:
        """(B,) times in [eps, 1): antithetic draws are B evenly spaced points with one random offset."""
        if self.cfg.antithetic:
            u = (torch.rand(1, device=device) + torch.arange(batch_size, device=device) / batch_size) % 1
        else:
            u = torch.rand(batch_size, device=device)
        return self.cfg.sampling_eps + (1 - self.cfg.sampling_eps) * u

    def mask_probability(self, t: Tensor, batch: Batch) -> Tensor:
        """(B, L) probability that each token is masked at time t (log-linear: alpha_t = 1 - t)."""
        return t[:, None].expand_as(batch.tokens)

    def loss_weight(self, t: Tensor) -> Tensor:
        """-alpha'_t / (1 - alpha_t) for alpha_t = 1 - t."""
        return 1.0 / t

    # ---- denoiser ---------------------------------------------------------------------------------------

    def denoise_logits(
        self, x_t: Tensor, pad_mask: Tensor | None = None, kv_cache: KVCache | None = None
    ) -> Tensor:
        """Logits (B, L, V) over clean tokens for every position of x_t, mask token at -inf (SUBS).
        With a frozen cache (samplers' "fast"), x_t holds the positions from kv_cache.length on."""
        bias = None if pad_mask is None else padding_bias(pad_mask)
        hidden = self.backbone(x_t, attn_bias=bias, kv_cache=kv_cache)
        logits = self.head(hidden).float()
        logits[..., self.mask_id] = float("-inf")
        return logits

    def _weighted_masked_ce(self, batch: Batch, t: Tensor) -> Tensor:
        """(B,) sum over masked positions of weight(t) * -log p(x_0 | x_t): one NELBO sample per row."""
        scored = scored_mask(batch)
        masked = scored & (torch.rand(batch.tokens.shape, device=t.device) < self.mask_probability(t, batch))
        x_t = batch.tokens.masked_fill(masked, self.mask_id)
        hidden = self.backbone(x_t, attn_bias=padding_bias(batch.pad_mask))
        logits = self.head(hidden[masked]).float()
        logits[:, self.mask_id] = float("-inf")
        ce = F.cross_entropy(logits, batch.tokens[masked], reduction="none")
        weights = self.loss_weight(t)[:, None].expand_as(masked)[masked]
        rows = torch.nonzero(masked)[:, 0]
        return torch.zeros(t.shape[0], device=t.device).index_add_(0, rows, ce * weights)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        t = self.sample_t(batch.tokens.shape[0], batch.tokens.device)
        n = scored_mask(batch).sum().clamp_min(1)
        loss = self._weighted_masked_ce(batch, t).sum() / n
        return loss, {"nelbo": loss.item()}

    @torch.no_grad()
    def nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """NELBO in nats summed over scored tokens, averaged over `nll_samples` stratified t per row."""
        k = self.cfg.nll_samples
        b = batch.tokens.shape[0]
        offset = torch.rand(b, device=batch.tokens.device)
        total = torch.zeros(b, device=batch.tokens.device)
        for j in range(k):
            u = (offset + j / k) % 1
            total += self._weighted_masked_ce(batch, self.cfg.sampling_eps + (1 - self.cfg.sampling_eps) * u)
        return total.sum() / k, scored_mask(batch).sum()

    def new_cache(self) -> KVCache:
        """An empty KV cache for this model's backbone (the fast sampler's prefix / dual cache)."""
        return KVCache(len(self.backbone.blocks))

    @torch.no_grad()
    def generate(self, prompt: Tensor, max_new_tokens: int, **sampler) -> Tensor:
        """prompt (B, P) -> (B, P + n): start from all-mask, denoise with a sampler (default from Config).
        `method="fast"` (threshold, cache: training/samplers.py) decodes in parallel on a KV cache."""
        options = {
            "method": self.cfg.sampler,
            "steps": self.cfg.steps,
            "new_cache": self.new_cache,
            **sampler,
        }
        masks = torch.full(
            (prompt.shape[0], max_new_tokens), self.mask_id, dtype=prompt.dtype, device=prompt.device
        )
        x = torch.cat([prompt, masks], dim=1)
        return samplers.sample(self.denoise_logits, x, self.mask_id, **options)


def build(cfg: Config, vocab_size: int, special: SpecialIds) -> MDLM:
    return MDLM(cfg, vocab_size, special)
