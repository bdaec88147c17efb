"""`semantic-insert`: semantic-order diffusion by insertion, with variable length.

Noising removes tokens in the order of their stored significance removal rank (pipeline/significance.py:
rank 0 = least significant = removed first). The model reads the surviving tokens and, for every slot
between two consecutive tokens and at both ends (`_ a _ quick _ brown _ fox _`), predicts the token to insert
there next, or "nothing". Reversing the noising, the next token of a slot is the most significant of the
tokens removed from it (the one removed last), so generation puts meaning down first and fills in function
words and punctuation last (Insertion Transformer, Stern et al. 2019; FlexMDM-style variable length).

Generation starts from the prompt and inserts in parallel into every allowed slot until a stopping rule
fires. Completion mode (the common task): the prompt is fixed and slots after it are allowed, so the
completion grows behind the prompt up to `max_new_tokens`. Free mode: every slot is allowed and the text grows
both ways. Stopping rules, all bounded by `max_steps` and `max_new_tokens`:
  nothing   a slot inserts only when p(some token) = 1 - p(nothing) > p(nothing) + margin; stop when no
            slot inserts
  max-prob  a slot inserts only when p(token) >= min_prob; stop when none does
  semantic  as `nothing`, and stop once a step moves the sentence embedding by less than min_change
            (what is left to insert no longer changes the meaning)
`creativeness` bounds the semantic change one step may make (1 - cosine of the sentence embeddings before
and after): a step over the bound keeps only its more confident half of insertions until it fits.

The ablation `order='random'` removes tokens in a random order instead of the significance order, so the
value of the semantic order is measured, not assumed.

`nll` is not a likelihood bound: it is the insertion cross-entropy per inserted token at noise levels drawn
as in training (a proxy, comparable between semantic and random order only).

    wikimix train semantic-insert --data NAME-docs --significance NAME-sig --out runs/si --budget bench-cpu
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.blocks import BackboneConfig, Transformer, padding_bias
from training.samplers import sample_tokens
from training.tokenizers import SpecialIds
from training.variant import Batch
from wikimix.errors import ConfigError

ORDERS = ("semantic", "random")
STOP_RULES = ("nothing", "max-prob", "semantic")
IGNORE = -100


@dataclass
class Config:
    d_model: int = 256
    n_layers: int = 5
    n_heads: int = 4
    attn: str = "mha"  # 'mha' | 'mla'
    ffn: str = "swiglu"  # 'swiglu' | 'mish'
    max_len: int = 1024
    dropout: float = 0.0
    order: str = "semantic"  # 'semantic' (stored removal ranks) | 'random' (the ablation)
    nothing_weight: float = 1.0  # loss weight of slots whose target is "insert nothing"
    prompt_frac_max: float = 0.75  # plain windows get a random clean prompt of up to this share
    # generation defaults (each can be overridden per generate() call)
    stop_rule: str = "nothing"
    margin: float = 0.0
    min_prob: float = 0.3
    min_change: float = 0.002
    creativeness: float = 1.0
    max_steps: int = 64

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ConfigError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.stop_rule not in STOP_RULES:
            raise ConfigError(f"stop_rule must be one of {STOP_RULES}, got {self.stop_rule!r}")
        if not 0 <= self.prompt_frac_max < 1:
            raise ConfigError(f"prompt_frac_max must be in [0, 1), got {self.prompt_frac_max}")
        if self.nothing_weight < 0 or self.max_steps < 1:
            raise ConfigError("nothing_weight must be >= 0 and max_steps >= 1")


@dataclass
class InsertionPair:
    """One training example: the surviving tokens and, per slot, the token to insert next."""

    kept: Tensor  # (q,) token ids that survive, in text order
    kept_positions: Tensor  # (q,) their positions in the original sequence
    slot_targets: Tensor  # (q + 1,) token to insert in slot i (before kept[i]; slot q is the end), or NOTHING
    slot_scored: Tensor  # (q + 1,) bool: slots the loss sees (slots inside a clean prompt are not)


def removal_order(keys: Tensor, candidates: Tensor) -> Tensor:
    """Positions of the candidates sorted by removal order: smallest key first, ties by position."""
    positions = candidates.nonzero().squeeze(1)
    order = torch.sort(keys[positions], stable=True).indices
    return positions[order]


def make_pair(
    tokens: Tensor, keys: Tensor, prompt_len: int, num_removed: int, nothing_id: int
) -> InsertionPair:
    """Remove the `num_removed` first tokens of the removal order (never the prompt) and label every slot.

    tokens and keys are 1-D over the real (unpadded) tokens; keys give the removal order (the stored
    significance ranks, or a random permutation for the ablation).
    """
    n = tokens.shape[0]
    positions = torch.arange(n)
    order = removal_order(keys, positions >= prompt_len)
    removed = order[:num_removed]
    removed_mask = torch.zeros(n, dtype=torch.bool)
    removed_mask[removed] = True
    kept_positions = positions[~removed_mask]
    q = kept_positions.shape[0]
    slot_targets = torch.full((q + 1,), nothing_id, dtype=torch.long)
    if num_removed:
        slots = torch.searchsorted(kept_positions, removed)  # kept tokens before each removed one
        step = torch.arange(num_removed)  # 0 = removed first; the slot's next insertion is its max step
        last = torch.full((q + 1,), -1, dtype=torch.long).scatter_reduce(0, slots, step, "amax")
        filled = last >= 0
        slot_targets[filled] = tokens[removed[last[filled]]]
    slot_scored = torch.arange(q + 1) >= min(prompt_len, q)
    return InsertionPair(tokens[kept_positions], kept_positions, slot_targets, slot_scored)


def insert_tokens(seq: list[int], insertions: dict[int, int]) -> list[int]:
    """`seq` with insertions[slot] placed in slot `slot` (slot i is before seq[i]; slot len(seq) the end)."""
    out: list[int] = []
    for i in range(len(seq) + 1):
        if i in insertions:
            out.append(insertions[i])
        if i < len(seq):
            out.append(seq[i])
    return out


@dataclass
class StepTrace:
    inserted: int
    max_token_prob: float
    semantic_change: float | None = None


@dataclass
class GenerationResult:
    sequences: list[list[int]]  # prompt + completion (completion mode) or the grown text (free mode)
    steps: list[int]  # steps taken per sequence
    stopped_by: list[str]  # 'rule' | 'max_new_tokens' | 'max_steps' per sequence
    traces: list[list[StepTrace]] = field(default_factory=list)


class SemanticInsert(nn.Module):
    name = "semantic-insert"
    nll_is_bound = False  # insertion cross-entropy per inserted token: a proxy, see the module doc

    def __init__(self, cfg: Config, vocab_size: int, special: SpecialIds):
        super().__init__()
        self.cfg, self.vocab_size, self.special = cfg, vocab_size, special
        self.nothing_id = vocab_size  # the extra output class "insert nothing"
        self.backbone = Transformer(BackboneConfig.of(cfg, causal=False), vocab_size)
        # a slot is read from the two tokens around it
        self.slot_proj = nn.Sequential(
            nn.Linear(2 * cfg.d_model, cfg.d_model), nn.GELU(), nn.LayerNorm(cfg.d_model)
        )
        self.nothing_head = nn.Linear(cfg.d_model, 1)
        never = torch.zeros(vocab_size, dtype=torch.bool)
        # bos/eos stay insertable: packed training windows hold them as document separators
        never[[special.pad_id, special.mask_id]] = True
        self.register_buffer("never_insert", never, persistent=False)

    # ---- the network: surviving tokens in, per-slot logits over vocab + "nothing" out
    def slot_logits(self, seqs: Tensor, lengths: Tensor) -> Tensor:
        """seqs (B, Q) right-padded surviving tokens, lengths (B,) -> logits (B, Q + 1, V + 1) per slot."""
        b, q = seqs.shape
        bos = torch.full((b, 1), self.special.bos_id, dtype=seqs.dtype, device=seqs.device)
        pad = torch.full((b, 1), self.special.pad_id, dtype=seqs.dtype, device=seqs.device)
        framed = torch.cat([bos, seqs, pad], dim=1)
        framed[torch.arange(b, device=seqs.device), lengths + 1] = self.special.eos_id
        real = torch.arange(q + 2, device=seqs.device)[None, :] <= (lengths + 1)[:, None]
        hidden = self.backbone(framed, attn_bias=padding_bias(real))
        slots = self.slot_proj(torch.cat([hidden[:, :-1], hidden[:, 1:]], dim=-1))  # (B, Q + 1, d)
        token_logits = slots @ self.backbone.embed.weight.t()  # tied output embedding
        token_logits = token_logits.masked_fill(self.never_insert, float("-inf"))
        return torch.cat([token_logits, self.nothing_head(slots)], dim=-1)

    # ---- training
    def _keys(self, batch: Batch, b: int, n: int, generator: torch.Generator | None) -> Tensor:
        if self.cfg.order == "random":
            return torch.randperm(n, generator=generator).float()
        if batch.removal_rank is None:
            raise ConfigError(
                "order='semantic' needs significance ranks: train with --significance or order=random"
            )
        # tokens no significance span covers (-1: whitespace, markup) go first: they carry no meaning
        return batch.removal_rank[b, :n].cpu().float()

    def make_batch(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Noise every sequence to a uniformly drawn level; returns (kept, lengths, targets, weights)."""
        tokens = batch.tokens.cpu()
        n_real = batch.pad_mask.sum(1).cpu()
        plens = batch.prompt_len.cpu()
        bsz = tokens.shape[0]
        # low-discrepancy noise levels across the batch, as in MDLM's antithetic time sampling
        u = (torch.arange(bsz) + torch.rand(1, generator=generator)) / bsz
        u = u[torch.randperm(bsz, generator=generator)]
        pairs = []
        for b in range(bsz):
            n = int(n_real[b])
            plen = int(plens[b])
            if plen == 0 and self.cfg.prompt_frac_max > 0:
                plen = int(torch.randint(0, int(n * self.cfg.prompt_frac_max) + 1, (1,), generator=generator))
            num_removed = min(int(u[b] * (n - plen + 1)), n - plen)
            keys = self._keys(batch, b, n, generator)
            pairs.append(make_pair(tokens[b, :n], keys, plen, num_removed, self.nothing_id))
        q = max(p.kept.shape[0] for p in pairs)
        kept = torch.full((bsz, max(q, 1)), self.special.pad_id, dtype=torch.long)
        targets = torch.full((bsz, max(q, 1) + 1), IGNORE, dtype=torch.long)
        weights = torch.zeros(bsz, max(q, 1) + 1)
        for b, p in enumerate(pairs):
            k = p.kept.shape[0]
            kept[b, :k] = p.kept
            targets[b, : k + 1] = torch.where(
                p.slot_scored, p.slot_targets, torch.full_like(p.slot_targets, IGNORE)
            )
            w = torch.where(p.slot_targets == self.nothing_id, self.cfg.nothing_weight, 1.0)
            weights[b, : k + 1] = w * p.slot_scored
        lengths = torch.tensor([p.kept.shape[0] for p in pairs])
        device = batch.tokens.device
        return kept.to(device), lengths.to(device), targets.to(device), weights.to(device)

    def _slot_losses(self, batch: Batch, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        kept, lengths, targets, weights = self.make_batch(batch, generator)
        logits = self.slot_logits(kept, lengths)
        scored = targets != IGNORE
        ce = F.cross_entropy(logits[scored].float(), targets[scored], reduction="none")
        return ce, weights[scored], targets[scored]

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        ce, weights, targets = self._slot_losses(batch, None)
        loss = (ce * weights).sum() / weights.sum().clamp_min(1e-8)
        inserting = targets != self.nothing_id
        return loss, {
            "slot_ce": loss.item(),
            "insert_ce": ce[inserting].mean().item() if inserting.any() else 0.0,
            "nothing_share": 1.0 - inserting.float().mean().item(),
        }

    @torch.no_grad()
    def nll(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Insertion cross-entropy summed over inserted tokens (proxy; fixed noise draws for comparability)."""
        generator = torch.Generator().manual_seed(0)
        ce, _, targets = self._slot_losses(batch, generator)
        inserting = targets != self.nothing_id
        return ce[inserting].sum(), inserting.sum()

    # ---- generation
    @torch.no_grad()
    def generate_sequences(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        *,
        free: bool = False,
        stop_rule: str | None = None,
        margin: float | None = None,
        min_prob: float | None = None,
        min_change: float | None = None,
        creativeness: float | None = None,
        max_steps: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        semantic_fn: Callable[[list[str]], Tensor | np.ndarray] | None = None,
        decode_fn: Callable[[list[int]], str] | None = None,
        generator: torch.Generator | None = None,
    ) -> GenerationResult:
        """Grow each prompt by parallel insertion until its stopping rule fires (variable lengths)."""
        cfg = self.cfg
        rule = stop_rule or cfg.stop_rule
        margin = cfg.margin if margin is None else margin
        min_prob = cfg.min_prob if min_prob is None else min_prob
        min_change = cfg.min_change if min_change is None else min_change
        creativeness = cfg.creativeness if creativeness is None else creativeness
        max_steps = max_steps or cfg.max_steps
        if rule not in STOP_RULES:
            raise ConfigError(f"stop_rule must be one of {STOP_RULES}, got {rule!r}")
        uses_meaning = rule == "semantic" or creativeness < 1.0
        if uses_meaning and (semantic_fn is None or decode_fn is None):
            raise ConfigError("the semantic stop rule and creativeness < 1 need semantic_fn and decode_fn")

        device = next(self.parameters()).device
        seqs = [list(p) for p in prompts]
        plens = [len(p) for p in prompts]
        active = list(range(len(seqs)))
        steps = [0] * len(seqs)
        stopped_by = ["max_steps"] * len(seqs)
        traces: list[list[StepTrace]] = [[] for _ in seqs]
        for _ in range(max_steps):
            if not active:
                break
            lengths = torch.tensor([len(seqs[i]) for i in active], device=device)
            batch = torch.full(
                (len(active), int(lengths.max().clamp_min(1))), self.special.pad_id, device=device
            )
            for row, i in enumerate(active):
                batch[row, : len(seqs[i])] = torch.tensor(seqs[i], device=device)
            probs = self.slot_logits(batch, lengths).float().softmax(-1)
            still = []
            for row, i in enumerate(active):
                steps[i] += 1
                room = max_new_tokens - (len(seqs[i]) - plens[i])
                n_slots = len(seqs[i]) + 1
                first = 0 if free else plens[i]
                slot_probs = probs[row, first:n_slots]
                token_probs = slot_probs[:, : self.vocab_size]
                tokens = sample_tokens(token_probs.log(), temperature, top_p, generator)
                p_token = token_probs.gather(1, tokens[:, None]).squeeze(1)
                p_nothing = slot_probs[:, self.nothing_id]
                # insert-or-not is a binary decision: p(some token) = 1 - p(nothing) against p(nothing);
                # comparing only the best single token with "nothing" never fires once "nothing" is the
                # majority class, since the insert mass is spread over the whole vocabulary
                inserting = (
                    p_token >= min_prob if rule == "max-prob" else (1.0 - p_nothing) > p_nothing + margin
                )
                chosen = inserting.nonzero().squeeze(1)
                chosen = chosen[p_token[chosen].argsort(descending=True)][: max(room, 0)]
                trace = StepTrace(0, float(p_token.max()) if p_token.numel() else 0.0)
                proposal = {first + int(s): int(tokens[s]) for s in chosen}
                change = None
                if proposal and uses_meaning:
                    proposal, change = self._bound_change(
                        seqs[i], proposal, p_token, first, creativeness, semantic_fn, decode_fn
                    )
                    trace.semantic_change = change
                if not proposal:
                    stopped_by[i] = "rule"
                    traces[i].append(trace)
                    continue
                seqs[i] = insert_tokens(seqs[i], proposal)
                trace.inserted = len(proposal)
                traces[i].append(trace)
                if len(seqs[i]) - plens[i] >= max_new_tokens:
                    stopped_by[i] = "max_new_tokens"
                elif rule == "semantic" and change is not None and change < min_change:
                    stopped_by[i] = "rule"
                else:
                    still.append(i)
            active = still
        return GenerationResult(seqs, steps, stopped_by, traces)

    @staticmethod
    def _bound_change(
        seq: list[int],
        proposal: dict[int, int],
        p_token: Tensor,
        first: int,
        creativeness: float,
        semantic_fn: Callable[[list[str]], Tensor | np.ndarray],
        decode_fn: Callable[[list[int]], str],
    ) -> tuple[dict[int, int], float]:
        """Shrink a step's insertions (least confident first) until its semantic change fits the bound."""
        by_confidence = sorted(proposal, key=lambda s: -float(p_token[s - first]))
        before = decode_fn(seq)
        while True:
            after = decode_fn(insert_tokens(seq, proposal))
            emb = torch.as_tensor(semantic_fn([before, after])).float()
            change = float(1.0 - F.cosine_similarity(emb[0:1], emb[1:2]).item())
            if change <= creativeness:
                return proposal, change
            if len(proposal) == 1:
                return {}, change  # even the most confident insertion moves the meaning too far
            by_confidence = by_confidence[: len(by_confidence) // 2]
            proposal = {s: proposal[s] for s in by_confidence}

    @torch.no_grad()
    def generate(self, prompt: Tensor, max_new_tokens: int, **sampler) -> Tensor:
        """prompt (B, P) -> (B, P + max_new_tokens); completions that stop early are right-padded with pad_id."""
        # masked-diffusion options (steps, method, ...) mean nothing here: insertion steps are bounded by max_steps
        known = inspect.signature(self.generate_sequences).parameters
        options = {k: v for k, v in sampler.items() if k in known and k != "free"}
        result = self.generate_sequences(prompt.tolist(), max_new_tokens, free=False, **options)
        out = torch.full(
            (prompt.shape[0], prompt.shape[1] + max_new_tokens), self.special.pad_id, dtype=torch.long
        )
        for b, seq in enumerate(result.sequences):
            out[b, : len(seq)] = torch.tensor(seq)
        return out.to(prompt.device)


def build(cfg: Config, vocab_size: int, special: SpecialIds) -> SemanticInsert:
    return SemanticInsert(cfg, vocab_size, special)
