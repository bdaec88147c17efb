"""The knowledge experiment's cloze: rank the true value of a fact among its attribute's value set by the
model's likelihood of the value span, and the statistics of the answers.

    nlls = value_span_nll(variant, tok, prefix, candidates, suffix)      # one number per candidate (nats)
    result = score_items(variant, tok, items)                            # per-item choice + hit
    cell = bootstrap_accuracy(hits_by_entity, seed=0)                    # mean, 95% interval, SE

Scores are the negative log-likelihood of the value's tokens, summed, never normalised by length (candidates
differ in token count; a per-token mean would favour long names):
- `ar`: exactly -log p(value | prefix) from the causal model (the suffix cannot inform a causal score);
- `mdlm`: the model's ELBO bound on -log p(value | prefix, suffix): only the value's positions are ever
  masked. For a span of m tokens the bound is a finite sum over the 2^m - 1 non-empty masked subsets M
  (integrating the log-linear schedule, t ~ U(0, 1), masked with probability t, weight 1/t):
        sum_M  (|M| - 1)! (m - |M|)! / m!  *  sum_{i in M} -log p(x_i | x with M masked)
  computed exactly when m <= EXACT_SPAN_MAX, else estimated with `mc_samples` stratified t draws shared by
  every candidate of the item (common random numbers).
Accuracy cells are bootstrapped over entities (the unit that was sampled); chance is 1 / |value set| per
attribute, and a cell's chance is the mean over its items.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from training.blocks import padding_bias
from training.intervals import ratio_interval
from training.tokenizers import Tokenizer
from wikimix.errors import ConfigError

EXACT_SPAN_MAX = 4  # spans up to this many tokens get the exact bound (15 masked subsets per candidate)
Z95 = 1.96
MDD_FACTOR = 2.80  # z_{0.975} + z_{0.80}: the difference a two-sided 5% test detects with 80% power


def encode_span(tok: Tokenizer, prefix: str, value: str, suffix: str) -> tuple[list[int], int, int]:
    """(token ids of prefix + value + suffix, value start, value end). Whitespace before the value travels
    with the value (a BPE word token carries its leading space); when the joint encoding does not split at
    the value's edges, the three parts are encoded apart and joined."""
    head = prefix.rstrip()
    value = prefix[len(head) :] + value
    p_ids = tok.encode(head)
    pv_ids = tok.encode(head + value)
    full = tok.encode(head + value + suffix)
    if pv_ids[: len(p_ids)] == p_ids and full[: len(pv_ids)] == pv_ids and len(pv_ids) > len(p_ids):
        return full, len(p_ids), len(pv_ids)
    v_ids = tok.encode(value)
    return p_ids + v_ids + tok.encode(suffix), len(p_ids), len(p_ids) + len(v_ids)


def _pad(rows: list[list[int]], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    tokens = tokens.to(device)
    return tokens, tokens != pad_id


@torch.no_grad()
def ar_span_nll(variant, rows: list[tuple[list[int], int, int]], device: str = "cpu") -> list[float]:
    """-log p(ids[a:b] | ids[:a]) per row under a causal model (`ar`); right padding cannot reach back."""
    if any(a < 1 for _, a, _ in rows):
        raise ConfigError("a causal score needs at least one prefix token before the value")
    tokens, _ = _pad([ids[:b] for ids, _, b in rows], variant.special.pad_id, device)
    logp = F.log_softmax(variant.head(variant.backbone(tokens[:, :-1])).float(), dim=-1)
    out = []
    for i, (ids, a, b) in enumerate(rows):
        targets = torch.tensor(ids[a:b], device=device)
        out.append(-float(logp[i, a - 1 : b - 1].gather(1, targets[:, None]).sum()))
    return out


def subset_weight(k: int, m: int) -> float:
    """Integral over t in (0, 1) of (1/t) t^k (1 - t)^(m - k): the weight of one masked subset of size k."""
    return math.factorial(k - 1) * math.factorial(m - k) / math.factorial(m)


@torch.no_grad()
def _masked_ce(variant, tokens: torch.Tensor, pad: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """(R,) sum over masked positions of -log p(x_i | x with those positions masked); the output layer
    runs only where a position is masked (as in mdlm's own loss), with the mask token excluded (SUBS)."""
    x_t = tokens.masked_fill(masked, variant.mask_id)
    hidden = variant.backbone(x_t, attn_bias=padding_bias(pad))
    logits = variant.head(hidden[masked]).float()
    logits[:, variant.mask_id] = float("-inf")
    ce = F.cross_entropy(logits, tokens[masked], reduction="none")
    rows = torch.nonzero(masked)[:, 0]
    return torch.zeros(tokens.shape[0], device=tokens.device).index_add_(0, rows, ce)


def _span_masks(a: int, b: int, mc_samples: int, seed: int, exact_max: int) -> list[tuple[list[int], float]]:
    """(masked positions, weight) whose weighted losses sum to the bound of the span [a, b): every subset
    with its exact weight when the span is short, else stratified t draws (seeded by the item)."""
    m = b - a
    if m < 1:
        raise ConfigError("a value span needs at least one token")
    if m <= exact_max:
        return [
            (list(subset), subset_weight(k, m))
            for k in range(1, m + 1)
            for subset in itertools.combinations(range(a, b), k)
        ]
    gen = random.Random(seed)
    offset = gen.random()
    out = []
    for j in range(mc_samples):
        t = 1e-3 + (1 - 1e-3) * ((offset + j / mc_samples) % 1)
        chosen = [a + i for i in range(m) if gen.random() < t]
        if chosen:
            out.append((chosen, 1 / (t * mc_samples)))
    return out


@torch.no_grad()
def mdlm_span_nll(
    variant,
    rows: list[tuple[list[int], int, int]],
    mc_samples: int = 8,
    seed: int = 0,
    device: str = "cpu",
    chunk: int = 512,
    exact_max: int = EXACT_SPAN_MAX,
) -> list[float]:
    """The ELBO bound on -log p(ids[a:b] | the rest of ids) per row (see the module docstring); every
    row's masked copies go through the model together, `chunk` at a time."""
    jobs = [(r, positions, w) for r, (ids, a, b) in enumerate(rows)
            for positions, w in _span_masks(a, b, mc_samples, seed, exact_max)]  # fmt: skip
    totals = [0.0] * len(rows)
    for start in range(0, len(jobs), chunk):
        part = jobs[start : start + chunk]
        tokens, pad = _pad([rows[r][0] for r, _, _ in part], variant.special.pad_id, device)
        masked = torch.zeros_like(pad)
        for i, (_, positions, _) in enumerate(part):
            masked[i, positions] = True
        ce = _masked_ce(variant, tokens, pad, masked)
        for (r, _, w), value in zip(part, ce.tolist(), strict=True):
            totals[r] += w * value
    return totals


def value_span_nll(
    variant,
    tok: Tokenizer,
    prefix: str,
    candidates: list[str],
    suffix: str,
    seed: int = 0,
    device: str = "cpu",
    mc_samples: int = 8,
) -> list[float]:
    """The score of every candidate value in the sentence prefix + value + suffix (lower = more likely)."""
    rows = [encode_span(tok, prefix, c, suffix) for c in candidates]
    max_len = getattr(getattr(variant, "cfg", None), "max_len", None)
    if max_len and max(len(ids) for ids, _, _ in rows) > max_len:
        raise ConfigError(f"a cloze sentence is longer than the model's max_len {max_len}")
    if variant.name == "ar":
        return ar_span_nll(variant, rows, device)
    if variant.name == "mdlm":
        return mdlm_span_nll(variant, rows, mc_samples=mc_samples, seed=seed, device=device)
    raise ConfigError(f"the knowledge cloze scores ar and mdlm, not {variant.name!r}")


def score_items(
    variant, tok: Tokenizer, items: list[dict], device: str = "cpu", mc_samples: int = 8
) -> list[dict[str, Any]]:
    """Per item: the chosen candidate, whether it is the true value, and each candidate's score (mdlm spans
    longer than EXACT_SPAN_MAX tokens: `mc_samples` t draws)."""
    out = []
    for k, it in enumerate(items):
        nlls = value_span_nll(
            variant,
            tok,
            it["prefix"],
            it["candidates"],
            it["suffix"],
            seed=k,
            device=device,
            mc_samples=mc_samples,
        )
        best = min(range(len(nlls)), key=nlls.__getitem__)
        out.append({"choice": best, "hit": best == it["answer"], "nll": nlls})
    return out


# ---- statistics ------------------------------------------------------------------------------------------


def by_entity(items: Iterable[dict], hits: Iterable[float]) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = {}
    for it, h in zip(items, hits, strict=True):
        grouped.setdefault(it["entity"], []).append(float(h))
    return grouped


def bootstrap_accuracy(
    grouped: dict[str, list[float]], n_boot: int = 1000, seed: int = 0
) -> dict[str, float | int | None]:
    """Mean over items with the project's 95% cluster-bootstrap interval (training/intervals.py), entities
    as clusters, and the SE that interval implies ((high - low) / (2 x 1.96)); no interval from one entity."""
    entities = sorted(grouped)
    hits = [h for e in entities for h in grouped[e]]
    clusters = [e for e in entities for _ in grouped[e]]
    if not hits:
        return {"mean": None, "low": None, "high": None, "se": None, "n_items": 0, "n_entities": 0}
    found = ratio_interval(hits, [1.0] * len(hits), clusters, n_boot=n_boot, seed=seed)
    low, high = found if found else (None, None)
    return {
        "mean": sum(hits) / len(hits),
        "low": low,
        "high": high,
        "se": None if found is None else (high - low) / (2 * Z95),
        "n_items": len(hits),
        "n_entities": len(entities),
    }


def paired_difference(
    a: dict[str, list[float]], b: dict[str, list[float]], n_boot: int = 1000, seed: int = 0
) -> dict[str, float | int | None]:
    """Accuracy a - b on the same items (per entity, item order aligned), bootstrapped over entities; with
    the minimum detectable difference (MDD_FACTOR x SE: 5% two-sided, 80% power)."""
    if sorted(a) != sorted(b) or any(len(a[e]) != len(b[e]) for e in a):
        raise ConfigError("a paired difference needs the same items on both sides")
    diff = {e: [x - y for x, y in zip(a[e], b[e], strict=True)] for e in a}
    out = bootstrap_accuracy(diff, n_boot, seed)
    out["mdd"] = None if out["se"] is None else MDD_FACTOR * out["se"]
    return out


def chance(items: list[dict]) -> float | None:
    """Expected accuracy of a uniform guess over each item's candidates."""
    return statistics.fmean(1 / len(it["candidates"]) for it in items) if items else None
