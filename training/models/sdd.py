"""Sparse Distribution Diffusion (SDD): every position holds k weighted candidates instead of one token.

A position is a sparse distribution `[(p_1, c_1), ..., (p_k, c_k)]`; its input embedding is
`sum_j p_j * E[c_j]` with the true softmax values (they sum to < 1: the rest of the mass sits on the
V - k tokens that are not candidates, so nothing is renormalised over k). Noise flattens the
distribution toward 1/V (temperature annealing of the clean logits: p_t ∝ q_0^(1-t)) and adds Gaussian
noise to the candidate embeddings; candidate indices are never swapped. The network is a transformer
over the present candidates of all positions at once (one SDPA call per sequence over up to L*k tokens,
keys biased by alpha_h * log p so probable candidates draw more attention; absent slots of clean
positions are not computed), and a learned readout (soft attention over the k candidates) gives one
distribution over the vocabulary per position. `Config.pooled` is the ablation `sdd-pooled`: one token
per position, sum_j p_j E[c_j], into an ordinary transformer. Cost and exactness: docs/sdd.md, "Cost".

Samplers (`generate(..., sampler=...)`):
- "original": the author's DDIM-like deterministic sampler; the model's top-k with its softmax values,
  flattened to the next noise level, becomes the next input; no re-noising; argmax at the end.
- "fixed" (default): progressive commitment. Each step samples a token per open position (Gumbel in
  float64), commits some of them as clean one-hot positions (`commit_order="random"`, the default: a
  random subset, the order the training opens positions in; "confidence": the most probable draws, as
  LLaDA), and re-enters the rest at the next noise level with the training-time embedding noise. Why it is needed and the evidence: docs/sdd.md.

Training (`self_cond_prob`, the fix; 0 gives the author's training): the author's forward process keeps
the true token among the candidates at every level and keeps their order, so its denoising loss can be
driven below the entropy of the data by picking the truth out of the candidates (`denoising_ce`). The
fixed training builds the states the sampler builds: a share 1 - t of positions committed, the others
first blank (random candidates at 1/V), then holding the model's own top-k flattened to level t.
`nll` is an estimate of a masked-diffusion ELBO with the blank state as the mask (an upper bound on the
NLL, `nll_is_bound = True`); see `SDD.nll`.

Launch: .venv/bin/wikimix train sdd --data <docs-dataset> --out runs/sdd --max-steps 450
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from training.blocks import BackboneConfig, RMSNorm, SwiGLU, Transformer, apply_rotary, rope_tables
from training.samplers import _num_to_unmask as num_to_unmask
from training.samplers import sample_tokens
from training.variant import Batch, SpecialIds, scored_mask
from wikimix.errors import ConfigError

SAMPLERS = ("fixed", "original")


@dataclass
class Config:
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    k: int = 8  # candidates per position
    max_len: int = 512
    dropout: float = 0.0
    rope_base: float = 10000.0
    tie_embeddings: bool = True
    clean_logit: float = 3.0  # clean true-token logit is log(V) + this: p_true ~ 0.95 at t = 0
    distractor_logit: float = 0.5  # clean distractor logits are uniform in [0, this * log V]
    embed_noise: float = 1.0  # Gaussian std at t = 1, in units of the embedding table's RMS
    # The fix for generation (docs/sdd.md): the fraction of training batches built as the fixed sampler
    # builds its states (blank, then the model's OWN top-k) instead of the author's truth + distractors.
    # 0 = the author's training.
    self_cond_prob: float = 1.0
    # The author's k-curriculum, e.g. (1, 2, 4, 8): k used in equal parts of `curriculum_steps` steps.
    k_curriculum: tuple[int, ...] = ()
    curriculum_steps: int = 0
    sampler: str = "fixed"  # generate()'s default: "fixed" | "original"
    steps: int = 64  # generate()'s default number of denoising steps
    time_eps: float = 1e-3
    nll_levels: int = 8  # levels of the fixed grid on which `nll` estimates its bound
    # The seed's pooled input, as an ablation (entry `sdd-pooled`): each position enters an ordinary
    # L-token transformer as sum_j p_j E[c_j] alone, instead of its k candidates attending separately.
    pooled: bool = False

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"sdd: k must be >= 1, got {self.k}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError(f"sdd: d_model {self.d_model} must split into {self.n_heads} even-sized heads")
        if not 0.0 <= self.self_cond_prob <= 1.0:
            raise ConfigError(f"sdd: self_cond_prob must be in [0, 1], got {self.self_cond_prob}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sdd: unknown sampler {self.sampler!r} ({' | '.join(SAMPLERS)})")
        self.k_curriculum = tuple(self.k_curriculum)  # JSON configs give a list
        if self.k_curriculum and (max(self.k_curriculum) > self.k or min(self.k_curriculum) < 1):
            raise ConfigError(f"sdd: k_curriculum {self.k_curriculum} must lie in [1, k={self.k}]")
        if self.k_curriculum and self.curriculum_steps < 1:
            raise ConfigError("sdd: k_curriculum needs curriculum_steps >= 1")


# ----------------------------------------------------------------------------------------------------
# The state and its noise process. A state is (cand, logp): candidate ids (B, L, k) and the log of their
# true probabilities (B, L, k); an absent slot has logp = -inf (clean positions use one slot).


def clean_logits(
    tokens: Tensor, k: int, vocab_size: int, cfg: Config, generator: torch.Generator | None = None
):
    """The clean sparse distribution of each position: the true token plus k-1 distinct distractors.

    Returns (cand, logit0): logits over the candidates; every other token has logit 0, so the clean
    distribution is q0 = softmax over V of that. Slot order is random (the network has no slot index).
    """
    B, L = tokens.shape
    V = vocab_size
    if k > V:
        raise ConfigError(f"sdd: k={k} exceeds the vocabulary ({V})")
    dev = tokens.device
    # k-1 distinct offsets in [1, V-1]: sorted draws from [0, V-k+1) plus their rank are strictly increasing.
    draws = torch.randint(0, V - k + 1, (B, L, k - 1), device=dev, generator=generator).sort(-1).values
    offsets = draws + torch.arange(k - 1, device=dev) + 1
    distractors = (tokens[..., None] + offsets) % V
    cand = torch.cat([tokens[..., None], distractors], -1)
    u = torch.rand(B, L, k, device=dev, generator=generator)
    logit0 = u * cfg.distractor_logit * math.log(V)
    logit0[..., 0] = math.log(V) + cfg.clean_logit
    perm = torch.rand(B, L, k, device=dev, generator=generator).argsort(-1)
    return cand.gather(-1, perm), logit0.gather(-1, perm)


def flatten(logit0: Tensor, t: Tensor, vocab_size: int) -> Tensor:
    """log p_t of the candidates, p_t ∝ q0^(1-t) over the whole vocabulary (non-candidates at logit 0).

    t = 0 gives q0, t = 1 gives 1/V everywhere; the candidates' mass is always < 1.
    """
    k = logit0.shape[-1]
    scaled = (1.0 - t).view(-1, *([1] * (logit0.dim() - 1))) * logit0
    log_z = torch.logaddexp(scaled.logsumexp(-1, keepdim=True), torch.tensor(math.log(vocab_size - k)))
    return scaled - log_z


def flatten_full(logp_full: Tensor, t: Tensor) -> Tensor:
    """The same flattening for a full predicted distribution (B, L, V): log of p^(1-t) / sum_V p^(1-t)."""
    scaled = (1.0 - t).view(-1, *([1] * (logp_full.dim() - 1))) * logp_full
    return scaled.log_softmax(-1)


def one_hot_state(tokens: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Clean positions: one slot holding the token with probability 1, the other slots absent."""
    cand = tokens[..., None].expand(*tokens.shape, k).clone()
    logp = torch.full(cand.shape, float("-inf"), device=tokens.device)
    logp[..., 0] = 0.0
    return cand, logp


def prediction_state(logp_full: Tensor, t: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The sampler's state from a prediction: its top-k, with probabilities flattened to level t."""
    flat = flatten_full(logp_full, t)
    logp, cand = flat.topk(k, -1)
    return cand, logp


# ----------------------------------------------------------------------------------------------------
# The network: a transformer over the present candidate tokens (at most L*k per sequence).


class CandidateAttention(nn.Module):
    """Attention over the present candidate tokens of each sequence, keys biased by alpha_h * log p.

    The bias rides in one extra query/key channel: query alpha_h * sqrt(d), key log p, and SDPA's
    explicit scale 1/sqrt(d), so q'.k' / sqrt(d) = q.k / sqrt(d) + alpha_h * log p exactly. No attention
    mask is passed, so SDPA may use its flash kernel (O(T) memory) while alpha_h still learns through the
    query; a learned additive mask sent it to the math kernel, which keeps B x H x T^2 scores for the
    backward. Absent candidates are not in the sequence at all (SDD.forward drops them). Channels are
    padded with zeros to a multiple of 8, the head sizes flash kernels take.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.head_dim = cfg.d_model // cfg.n_heads
        self.padded_dim = -(-(self.head_dim + 1) // 8) * 8
        cos, sin = rope_tables(self.head_dim, cfg.max_len, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.prob_scale = nn.Parameter(torch.ones(cfg.n_heads))  # alpha_h, learned per head

    def biased_qkv(self, x: Tensor, positions: Tensor, key_logp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Packed tokens (N, D) -> q, k, v (N, H, padded_dim) with the probability channel."""
        N, d = x.shape[0], self.head_dim
        q, k, v = self.qkv(x).view(N, 3, self.n_heads, d).unbind(1)
        # RoPE at the position's index: the k candidates of position i all sit at position i
        cos, sin = self.cos[positions][:, None].to(q.dtype), self.sin[positions][:, None].to(q.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q_bias = (self.prob_scale * math.sqrt(d)).to(q.dtype)[None, :, None].expand(N, -1, 1)
        k_bias = key_logp.to(k.dtype)[:, None, None].expand(N, self.n_heads, 1)
        zeros = q.new_zeros(N, self.n_heads, self.padded_dim - d - 1)
        q, k = torch.cat([q, q_bias, zeros], -1), torch.cat([k, k_bias, zeros], -1)
        v = torch.cat([v, v.new_zeros(N, self.n_heads, self.padded_dim - d)], -1)
        return q, k, v

    def forward(
        self, x: Tensor, positions: Tensor, key_logp: Tensor, lengths: list[int], return_weights: bool = False
    ):
        """x (N, D): the present tokens of the batch's sequences, packed row after row (`lengths` each);
        positions (N,) their sequence positions, key_logp (N,) their finite log-probabilities.
        return_weights: the explicit attention weights, one (H, T, T) per sequence (tests, diagnostics)."""
        q, k, v = self.biased_qkv(x, positions, key_logp)
        scale = 1.0 / math.sqrt(self.head_dim)
        drop = self.dropout if self.training else 0.0
        rows, weights = [], []
        for q_row, k_row, v_row in zip(q.split(lengths), k.split(lengths), v.split(lengths), strict=True):
            q_row, k_row, v_row = (t.transpose(0, 1)[None] for t in (q_row, k_row, v_row))  # (1, H, T, e)
            if return_weights:
                weights.append((q_row[0] @ k_row[0].transpose(-1, -2) * scale).softmax(-1))
                continue
            y = F.scaled_dot_product_attention(q_row, k_row, v_row, dropout_p=drop, scale=scale)
            rows.append(y[0, ..., : self.head_dim].transpose(0, 1))  # (T, H, d)
        if return_weights:
            return weights
        return self.out(torch.cat(rows).reshape(x.shape[0], -1))


class CandidateBlock(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(cfg.d_model), RMSNorm(cfg.d_model)
        self.attn = CandidateAttention(cfg)
        self.ffn = SwiGLU(cfg.d_model)

    def forward(self, x: Tensor, positions: Tensor, key_logp: Tensor, lengths: list[int]) -> Tensor:
        x = x + self.attn(self.norm1(x), positions, key_logp, lengths)
        return x + self.ffn(self.norm2(x))


@dataclass
class StepInfo:
    """What a sampler step saw and did; the diagnostics (training/sdd_diagnostics.py) consume these."""

    step: int
    t: float
    cand: Tensor  # (B, n, k) candidates of the generated positions fed to the model at this step
    logp: Tensor  # (B, n, k) their log-probabilities
    pred_logp: Tensor  # (B, n, V) the model's prediction
    committed: Tensor  # (B, n) bool: positions fixed so far (always False for the original sampler)


class SDD(nn.Module):
    name = "sdd"
    nll_is_bound = True  # a masked-diffusion ELBO estimate, see SDD.nll

    def __init__(self, cfg: Config, vocab_size: int, special: SpecialIds | None):
        super().__init__()
        self.cfg, self.vocab_size, self.special = cfg, vocab_size, special
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(cfg.d_model))
        if cfg.pooled:
            self.backbone = Transformer(
                BackboneConfig(
                    d_model=cfg.d_model,
                    n_layers=cfg.n_layers,
                    n_heads=cfg.n_heads,
                    max_len=cfg.max_len,
                    dropout=cfg.dropout,
                    rope_base=cfg.rope_base,
                )
            )
        else:
            self.prob_in = nn.Linear(1, cfg.d_model)  # tells each candidate token its own probability
            self.blocks = nn.ModuleList(CandidateBlock(cfg) for _ in range(cfg.n_layers))
            self.norm = RMSNorm(cfg.d_model)
            self.readout = nn.Linear(cfg.d_model, 1)  # soft attention over the k candidates of a position
            self.readout_prob_scale = nn.Parameter(torch.ones(()))
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))  # drives the k-curriculum

    # -- network ----------------------------------------------------------------------------------------
    def forward(
        self,
        cand: Tensor,
        logp: Tensor,
        noise_std: Tensor | None = None,
        generator: torch.Generator | None = None,
        at: Tensor | None = None,
    ) -> Tensor:
        """(cand, logp) of shape (B, L, k) -> logits (B, L, V); with `at` (B, L) bool, logits (N, V) of the
        N positions where it is True (row-major): the readout and the vocabulary head run only there.

        Absent slots (logp = -inf: the k - 1 spare slots of a clean position) are inert, so they are
        dropped before the transformer: a clean position costs one token, an open one k. The logits are
        those of the dense L*k computation with absent keys masked out (tests/test_sdd_speed.py).
        noise_std (B, L): Gaussian embedding noise, drawn for every slot so that the random stream does
        not depend on which slots are present.
        """
        B, L, k = cand.shape
        emb = self.embed(cand)  # (B, L, k, d)
        if noise_std is not None:
            rms = self.embed.weight.detach().pow(2).mean().sqrt()
            noise = torch.randn(emb.shape, device=emb.device, generator=generator, dtype=emb.dtype)
            emb = emb + (noise_std * rms)[..., None, None] * noise
        prob = logp.exp()  # true softmax values: absent slots give 0, nothing is renormalised over k
        position_in = (prob[..., None] * emb).sum(2)  # sum_j p_j E[c_j]
        if self.cfg.pooled:  # the ablation: one token per position, an ordinary transformer
            hidden = self.backbone(position_in)
            return self._vocab_logits(hidden if at is None else hidden[at])
        present = torch.isfinite(logp)
        logp0 = logp.masked_fill(~present, 0.0)
        logp_feature = (logp0 / math.log(self.vocab_size)).clamp(min=-2.0)
        x = emb + position_in[:, :, None] + self.prob_in(logp_feature[..., None])
        index = present.flatten().nonzero().squeeze(1)  # row-major: each sequence's tokens contiguous
        lengths = present.view(B, L * k).sum(1).tolist()
        positions = index % (L * k) // k
        h, key_logp = x.reshape(B * L * k, -1)[index], logp0.flatten()[index]
        for block in self.blocks:
            if torch.is_grad_enabled() and h.requires_grad:
                # a block keeps ~10 KB of activations per token for its backward, over up to L*k tokens and
                # two passes; recomputing it in the backward (exact: nothing random inside) keeps 1 KB
                h = checkpoint(block, h, positions, key_logp, lengths, use_reentrant=False)
            else:
                h = block(h, positions, key_logp, lengths)
        h = self.norm(h)
        dense = h.new_zeros(B * L * k, h.shape[-1]).index_copy(0, index, h).view(B, L, k, -1)
        if at is not None:
            dense, logp0, present = dense[at], logp0[at], present[at]
        score = self.readout(dense).squeeze(-1) + self.readout_prob_scale * logp0
        weights = score.masked_fill(~present, float("-inf")).softmax(-1)
        return self._vocab_logits((weights[..., None] * dense).sum(-2))

    def _vocab_logits(self, hidden: Tensor) -> Tensor:
        return hidden @ self.embed.weight.T if self.head is None else self.head(hidden)

    def suffix_logits(self, cand: Tensor, logp: Tensor, noise_std: Tensor | None, generator, start: int):
        """Logits (B, L - start, V) of the positions from `start` on (the generated ones)."""
        B, L, _ = cand.shape
        at = torch.zeros(B, L, dtype=torch.bool, device=cand.device)
        at[:, start:] = True
        return self(cand, logp, noise_std, generator, at).view(B, L - start, -1)

    # -- training ----------------------------------------------------------------------------------------
    def active_k(self) -> int:
        cur = self.cfg.k_curriculum
        if not cur:
            return self.cfg.k
        stage = min(len(cur) - 1, int(self.train_steps) * len(cur) // self.cfg.curriculum_steps)
        return cur[stage]

    def noised_state(self, tokens: Tensor, noised: Tensor, t: Tensor, k: int, generator=None):
        """The author's forward process at level t (B,) where `noised` (B, L); the rest stay one-hot."""
        cand, logit0 = clean_logits(tokens, k, self.vocab_size, self.cfg, generator)
        logp = flatten(logit0, t, self.vocab_size)
        clean_cand, clean_logp = one_hot_state(tokens, k)
        m = noised[..., None]
        return torch.where(m, cand, clean_cand), torch.where(m, logp, clean_logp)

    def blank_state(self, tokens: Tensor, open_: Tensor, k: int, generator=None):
        """The sampler's first state where `open_`: k random candidates at 1/V each (t = 1, no truth)."""
        rand = torch.randint(
            0, self.vocab_size, (*tokens.shape, k), device=tokens.device, generator=generator
        )
        cand, logp = one_hot_state(tokens, k)
        m = open_[..., None]
        return torch.where(m, rand, cand), torch.where(
            m, torch.full_like(logp, -math.log(self.vocab_size)), logp
        )

    def _noise_std(self, level: Tensor, open_: Tensor) -> Tensor:
        return self.cfg.embed_noise * level.view(-1, 1) * open_

    def author_logits(self, batch: Batch, t: Tensor, k: int, generator=None) -> tuple[Tensor, Tensor]:
        """The author's objective: every scored position noised to level t, the truth among its candidates.
        Returns the logits (N, V) of the N scored positions and the scored mask."""
        noised = scored_mask(batch)
        cand, logp = self.noised_state(batch.tokens, noised, t, k, generator)
        return self(cand, logp, self._noise_std(t, noised), generator, at=noised), noised

    def self_conditioned_logits(self, batch: Batch, t: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Logits (N, V) of the N open positions, twice. The states the fixed sampler produces: a share 1 - t of the scored positions is committed
        (clean), the rest are open. Pass 1 sees the open positions blank (random candidates, t = 1, as at
        the first sampler step); pass 2 sees its own top-k flattened to level t (as at every later step)."""
        scored = scored_mask(batch)
        open_ = scored & (torch.rand(scored.shape, device=scored.device) < t[:, None])
        cand, logp = self.blank_state(batch.tokens, open_, k)
        # only the open positions' logits are used (their loss, their top-k): the head runs only there
        first = self(cand, logp, self._noise_std(torch.ones_like(t), open_), at=open_)
        t_open = t[:, None].expand_as(open_)[open_]
        own_cand, own_logp = prediction_state(first.detach().float().log_softmax(-1), t_open, k)
        cand, logp = cand.clone(), logp.clone()
        cand[open_], logp[open_] = own_cand, own_logp
        return first, self(cand, logp, self._noise_std(t, open_), at=open_), open_

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        B = batch.tokens.shape[0]
        k = self.active_k()
        # low-discrepancy levels: one uniform offset, B evenly spaced points
        t = (torch.rand(()) + torch.arange(B) / B) % 1.0
        t = (self.cfg.time_eps + (1 - self.cfg.time_eps) * t).to(batch.tokens.device)
        self_cond = bool(torch.rand(()) < self.cfg.self_cond_prob)
        if self_cond:
            first, logits, scored = self.self_conditioned_logits(batch, t, k)
        else:
            logits, scored = self.author_logits(batch, t, k)
        if self.training:
            self.train_steps += 1
        if not scored.any():  # nothing open in this batch (tiny batches at small t)
            return logits.sum() * 0.0, {
                "ce": 0.0,
                "token_acc": 0.0,
                "k": float(k),
                "self_cond": float(self_cond),
            }
        target = batch.tokens[scored]
        ce = F.cross_entropy(logits.float(), target)
        loss = (ce + F.cross_entropy(first.float(), target)) / 2 if self_cond else ce
        with torch.no_grad():
            acc = (logits.argmax(-1) == target).float().mean().item()
        return loss, {"ce": ce.item(), "token_acc": acc, "k": float(k), "self_cond": float(self_cond)}

    @torch.no_grad()
    def nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """An estimate of a masked-diffusion ELBO (an upper bound on the NLL), summed over scored tokens.

        Read as a masked diffusion model whose mask is SDD's blank state (random candidates at 1/V, which
        carry nothing about the data): -log p(x) <= E_t[(1/t) sum_{open i} -log p(x_i | state)], each
        position open with probability t. Estimated on `nll_levels` midpoint levels with fixed noise. The
        author's metric, the denoising CE with the truth among the candidates, is `denoising_ce`.
        """
        gen = torch.Generator(device=batch.tokens.device).manual_seed(0)  # the same estimate on every call
        scored = scored_mask(batch)
        total = torch.zeros((), device=batch.tokens.device)
        for level in (torch.arange(self.cfg.nll_levels) + 0.5) / self.cfg.nll_levels:
            u = torch.rand(scored.shape, device=scored.device, generator=gen)
            open_ = scored & (u < level)
            cand, logp = self.blank_state(batch.tokens, open_, self.cfg.k, gen)
            t1 = torch.ones(scored.shape[0], device=scored.device)
            logits = self(cand, logp, self._noise_std(t1, open_), gen, at=open_).float()
            ce = F.cross_entropy(logits, batch.tokens[open_], reduction="sum")
            total = total + ce / level
        return (total / self.cfg.nll_levels).cpu(), scored.sum().cpu()

    @torch.no_grad()
    def denoising_ce(self, batch: Batch, level: float) -> float:
        """The author's training metric at one level: mean CE with the truth among the candidates (leaks)."""
        gen = torch.Generator(device=batch.tokens.device).manual_seed(0)
        t = torch.full((batch.tokens.shape[0],), level, device=batch.tokens.device)
        logits, scored = self.author_logits(batch, t, self.cfg.k, gen)
        return float(F.cross_entropy(logits.float(), batch.tokens[scored]))

    # -- generation --------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        sampler: str | None = None,
        steps: int | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        seed: int = 0,
        on_step: Callable[[StepInfo], None] | None = None,
        commit_order: str = "random",
        **_other_options,  # other variants' sampler options (method, block_len, ...) mean nothing here
    ) -> Tensor:
        """prompt (B, P) -> (B, P + max_new_tokens); the prompt is returned unchanged.

        sampler / steps default to the Config's; randomness comes from `generator` (else a fresh one seeded
        with `seed`), so a call is reproducible. `on_step` receives a StepInfo per step (diagnostics).
        """
        sampler = self.cfg.sampler if sampler is None else sampler
        steps = self.cfg.steps if steps is None else steps
        if sampler not in SAMPLERS:
            raise ConfigError(f"sdd: unknown sampler {sampler!r} ({' | '.join(SAMPLERS)})")
        if commit_order not in ("confidence", "random"):
            raise ConfigError(f"sdd: commit_order must be 'confidence' or 'random', got {commit_order!r}")
        if steps < 1 or temperature <= 0:
            raise ConfigError(f"sdd: steps must be >= 1 and temperature > 0 (got {steps}, {temperature})")
        if prompt.shape[1] + max_new_tokens > self.cfg.max_len:
            raise ConfigError(
                f"sdd: {prompt.shape[1]} + {max_new_tokens} tokens exceed max_len {self.cfg.max_len}"
            )
        was_training = self.training
        self.eval()
        try:
            gen = generator or torch.Generator(device=prompt.device).manual_seed(seed)
            if sampler == "original":
                return self._sample_original(prompt, max_new_tokens, steps, temperature, gen, on_step)
            return self._sample_fixed(
                prompt, max_new_tokens, steps, temperature, top_p, gen, on_step, commit_order
            )
        finally:
            self.train(was_training)

    def _initial_state(self, prompt: Tensor, n: int, gen: torch.Generator):
        """Prompt one-hot; each new position blank (the t = 1 state)."""
        tokens = torch.cat([prompt, prompt.new_zeros(prompt.shape[0], n)], 1)
        open_ = torch.arange(tokens.shape[1], device=prompt.device)[None].expand_as(tokens) >= prompt.shape[1]
        return self.blank_state(tokens, open_, self.cfg.k, gen)

    def _sample_original(self, prompt, n, steps, temperature, gen, on_step):
        B, P = prompt.shape
        cand, logp = self._initial_state(prompt, n, gen)
        levels = torch.linspace(1.0, 0.0, steps + 1)
        committed = torch.zeros(B, n, dtype=torch.bool, device=prompt.device)
        for i in range(steps):
            pred = (self.suffix_logits(cand, logp, None, None, P).float() / temperature).log_softmax(-1)
            if on_step is not None:
                on_step(StepInfo(i, float(levels[i]), cand[:, P:], logp[:, P:], pred, committed))
            t_next = levels[i + 1].expand(B).to(prompt.device)
            cand[:, P:], logp[:, P:] = prediction_state(pred, t_next, self.cfg.k)
        return torch.cat([prompt, pred.argmax(-1)], 1)

    def _sample_fixed(self, prompt, n, steps, temperature, top_p, gen, on_step, commit_order):
        B, P = prompt.shape
        dev = prompt.device
        cand, logp = self._initial_state(prompt, n, gen)
        levels = torch.linspace(1.0, 0.0, steps + 1)
        committed = torch.zeros(B, n, dtype=torch.bool, device=dev)
        schedule = num_to_unmask(~committed, steps)  # LLaDA's linear schedule: positions to commit per step
        out = torch.zeros(B, n, dtype=torch.long, device=dev)
        for i in range(steps):
            t = float(levels[i])
            # open positions get the training-time embedding noise of their level; prompt and committed none
            noise_std = torch.zeros(B, P + n, device=dev)
            noise_std[:, P:] = self.cfg.embed_noise * t * (~committed)
            pred = (self.suffix_logits(cand, logp, noise_std, gen, P).float() / temperature).log_softmax(-1)
            if on_step is not None:
                on_step(StepInfo(i, t, cand[:, P:], logp[:, P:], pred, committed.clone()))
            sample = sample_tokens(pred, 1.0, top_p, gen)  # pred already carries the temperature
            if commit_order == "confidence":  # LLaDA: the most probable draws first
                confidence = pred.gather(-1, sample[..., None]).squeeze(-1)
            else:  # MDLM's ancestral order: uniformly random, as the training opens positions
                confidence = torch.rand(pred.shape[:-1], generator=gen, device=dev)
            confidence = confidence.masked_fill(committed, float("-inf"))
            rank = confidence.argsort(-1, descending=True).argsort(-1)
            commit = (rank < schedule[:, i : i + 1]) & ~committed
            out = torch.where(commit, sample, out)
            committed |= commit
            t_next = levels[i + 1].expand(B).to(dev)
            open_cand, open_logp = prediction_state(pred, t_next, self.cfg.k)
            fixed_cand, fixed_logp = one_hot_state(out, self.cfg.k)
            m = committed[..., None]
            cand[:, P:], logp[:, P:] = (
                torch.where(m, fixed_cand, open_cand),
                torch.where(m, fixed_logp, open_logp),
            )
        return torch.cat([prompt, out], 1)


def build(cfg: Config, vocab_size: int, special: SpecialIds | None) -> SDD:
    return SDD(cfg, vocab_size, special)
