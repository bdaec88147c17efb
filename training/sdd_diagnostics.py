"""Diagnostics for SDD sampling: what the sampler feeds the model at each step, and what comes out.

    trace = SamplerTrace()
    out = model.generate(prompt, 48, sampler="original", on_step=trace)
    trace.rows            # one dict per step: candidate entropy, duplicate and collapse rates, ...
    repetition_stats(out[:, prompt.shape[1]:])

Used by tests/test_model_sdd.py and by the investigation in docs/sdd.md.
"""

from __future__ import annotations

import torch
from torch import Tensor

from training import metrics
from training.models.sdd import StepInfo


def candidate_entropy(logp: Tensor) -> Tensor:
    """Entropy (nats) of each position's candidates renormalised over its k slots; (B, n)."""
    p = logp.softmax(-1)  # renormalised view over k, absent slots (-inf) get 0
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


def duplicate_rate(cand: Tensor, logp: Tensor | None = None) -> float:
    """Fraction of present candidate slots whose token already appears in an earlier slot of the same position."""
    B, n, k = cand.shape
    same = cand[..., :, None] == cand[..., None, :]  # (B, n, k, k)
    earlier = torch.ones(k, k, dtype=torch.bool, device=cand.device).tril(-1)
    dup = (same & earlier).any(-1)
    present = torch.ones_like(dup) if logp is None else torch.isfinite(logp)
    return float((dup & present).sum() / present.sum().clamp_min(1))


def neighbour_top1_agreement(cand: Tensor, logp: Tensor) -> float:
    """Fraction of adjacent position pairs whose most probable candidate is the same token (collapse)."""
    if cand.shape[1] < 2:
        return 0.0
    top = cand.gather(-1, logp.argmax(-1, keepdim=True)).squeeze(-1)
    return float((top[:, 1:] == top[:, :-1]).float().mean())


def cross_position_overlap(cand: Tensor) -> float:
    """Mean fraction of a position's k candidates that also appear among the next position's candidates."""
    if cand.shape[1] < 2:
        return 0.0
    a, b = cand[:, :-1], cand[:, 1:]
    shared = (a[..., :, None] == b[..., None, :]).any(-1).float()
    return float(shared.mean())


def distinct_top1_fraction(pred_logp: Tensor) -> float:
    """Distinct argmax tokens of the prediction per sequence, divided by the number of positions."""
    top = pred_logp.argmax(-1)  # (B, n)
    return float(sum(len(set(row.tolist())) for row in top) / top.numel())


class SamplerTrace:
    """`on_step` callback for SDD.generate: records one row of diagnostics per sampler step."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def __call__(self, info: StepInfo) -> None:
        open_ = ~info.committed
        ent = candidate_entropy(info.logp)
        pred_p = info.pred_logp.exp()
        pred_ent = -(pred_p * info.pred_logp.clamp_min(-1e30)).nan_to_num().sum(-1)
        self.rows.append(
            {
                "step": info.step,
                "t": info.t,
                "cand_entropy": float(ent[open_].mean()) if open_.any() else float("nan"),
                "cand_mass": float(info.logp.exp().sum(-1)[open_].mean()) if open_.any() else float("nan"),
                "duplicate_rate": duplicate_rate(info.cand, info.logp),
                "neighbour_top1_agreement": neighbour_top1_agreement(info.cand, info.logp),
                "cross_position_overlap": cross_position_overlap(info.cand),
                "pred_entropy": float(pred_ent.mean()),
                "pred_max_prob": float(pred_p.amax(-1).mean()),
                "pred_distinct_top1": distinct_top1_fraction(info.pred_logp),
                "committed": float(info.committed.float().mean()),
            }
        )


def repetition_stats(tokens: Tensor, n: int = 2) -> dict[str, float]:
    """Repetition of generated tokens (B, n_new).

    repeat_rate: fraction of tokens equal to the previous token ("They They They"); the other three are
    training.metrics' definitions (repeated n-grams per sequence, distinct-n pooled, unigram entropy in bits).
    """
    rows = tokens.tolist()
    repeats = sum(a == b for row in rows for a, b in zip(row[1:], row[:-1], strict=True))
    pairs = sum(max(len(row) - 1, 0) for row in rows)
    return {
        "repeat_rate": repeats / max(pairs, 1),
        f"repeated_{n}gram_rate": metrics.repeated_ngram_rate(rows, n),
        f"distinct_{n}": metrics.distinct_n(rows, n),
        "unigram_entropy_bits": metrics.unigram_entropy(rows),
    }
