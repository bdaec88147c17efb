"""Diagnostics for SDD sampling: what the sampler feeds the model at each step, and what comes out.

    trace = SamplerTrace()
    out = model.generate(prompt, 48, sampler="original", on_step=trace)
    trace.rows            # one dict per step: candidate entropy, duplicate and collapse rates, ...
    repetition_stats(out[:, prompt.shape[1]:])

The investigation of docs/sdd.md runs from here: a tiny SDD trained on a sparse Markov chain with no
self-transitions (so any immediate repeat is an error and every transition can be checked), then the
denoising CE under three input states and a table of sampler ablations:

    .venv/bin/python -m training.sdd_diagnostics --self-cond 0     # the author's training
    .venv/bin/python -m training.sdd_diagnostics --self-cond 1     # the fixed training
    .venv/bin/python -m training.sdd_diagnostics --self-cond 1 --curriculum 1,2,4,8
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from training import metrics
from training.models.sdd import Config, StepInfo, build, one_hot_state, prediction_state
from training.samplers import _num_to_unmask as num_to_unmask
from training.samplers import sample_tokens
from training.variant import Batch, scored_mask


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


# ---- the investigation: a Markov source whose every transition can be checked ----------------------------


def markov_chain(vocab: int, successors: int = 4, seed: int = 0) -> Tensor:
    """A sparse transition matrix: `successors` random next states per state, never the state itself."""
    g = torch.Generator().manual_seed(seed)
    trans = torch.zeros(vocab, vocab)
    for s in range(vocab):
        nxt = (s + 1 + torch.randperm(vocab - 1, generator=g)[:successors]) % vocab
        w = -torch.rand(successors, generator=g).log()  # Dirichlet(1) weights
        trans[s, nxt] = w / w.sum()
    return trans


def chain_samples(trans: Tensor, batch: int, length: int, g: torch.Generator) -> Tensor:
    """Sequences started uniformly at random."""
    x = torch.randint(0, trans.shape[0], (batch,), generator=g)
    out = [x]
    for _ in range(length - 1):
        x = torch.multinomial(trans[x], 1, generator=g).squeeze(1)
        out.append(x)
    return torch.stack(out, 1)


def valid_transition_rate(trans: Tensor, seq: Tensor) -> float:
    """Fraction of consecutive pairs that the chain can produce."""
    return float((trans[seq[:, :-1], seq[:, 1:]] > 0).float().mean())


@torch.no_grad()
def ce_by_state(model, tokens: Tensor, prompt_len: int, level: float, seed: int = 3) -> dict[str, float]:
    """Denoising CE at one level for three inputs: the author's state (truth among the candidates), the
    same probabilities on random candidates (no truth), and the model's own top-k from the blank state
    (what the sampler feeds). `*_copy`: how often the argmax is one of the input candidates."""
    batch = Batch.from_tokens(tokens, prompt_len=prompt_len)
    scored = scored_mask(batch)
    B, k, V = tokens.shape[0], model.cfg.k, model.vocab_size
    gen = torch.Generator().manual_seed(seed)
    t = torch.full((B,), level)
    truth_cand, truth_logp = model.noised_state(tokens, scored, t, k, gen)
    shifted = (tokens[..., None] + 1 + torch.randint(0, V - 1, truth_cand.shape, generator=gen)) % V
    blank_cand, blank_logp = model.blank_state(tokens, scored, k, gen)
    first = model(blank_cand, blank_logp, model.cfg.embed_noise * scored.float(), gen).float().log_softmax(-1)
    own_cand, own_logp = prediction_state(first, t, k)
    m = scored[..., None]
    states = {
        "truth": (truth_cand, truth_logp),
        "no_truth": (torch.where(m, shifted, truth_cand), truth_logp),
        "own": (torch.where(m, own_cand, truth_cand), torch.where(m, own_logp, truth_logp)),
    }
    row: dict[str, float] = {}
    for name, (cand, logp) in states.items():
        logits = model(cand, logp, model.cfg.embed_noise * level * scored.float(), gen).float()
        row[f"{name}_ce"] = float(F.cross_entropy(logits[scored], tokens[scored]))
        row[f"{name}_copy"] = float((cand == logits.argmax(-1)[..., None]).any(-1)[scored].float().mean())
    row["own_truth_in_candidates"] = float((own_cand == tokens[..., None]).any(-1)[scored].float().mean())
    return row


@torch.no_grad()
def ablation_sample(
    model, prompt, n, steps, commit, sampled, renoise, temperature=1.0, seed=0, order="confidence"
):
    """One loop spanning the two samplers, to take the fix apart: commit (progressive commitment of the
    most confident positions), sampled (Gumbel draws instead of argmax), renoise (training-time embedding
    noise on open positions), order ("confidence" | "random", which committed first). (False, False, False)
    is the original sampler; (True, True, True) the fixed one with the given commit order."""
    gen = torch.Generator().manual_seed(seed)
    B, P = prompt.shape
    k = model.cfg.k
    cand, logp = model._initial_state(prompt, n, gen)
    levels = torch.linspace(1.0, 0.0, steps + 1)
    committed = torch.zeros(B, n, dtype=torch.bool)
    schedule = num_to_unmask(~committed, steps)
    out = torch.zeros(B, n, dtype=torch.long)
    trace = SamplerTrace()
    for i in range(steps):
        noise_std = torch.zeros(B, P + n)
        if renoise:
            noise_std[:, P:] = model.cfg.embed_noise * float(levels[i]) * (~committed)
        pred = (model.suffix_logits(cand, logp, noise_std, gen, P).float() / temperature).log_softmax(-1)
        trace(StepInfo(i, float(levels[i]), cand[:, P:], logp[:, P:], pred, committed.clone()))
        x = sample_tokens(pred, 1.0, 1.0, gen) if sampled else pred.argmax(-1)
        if commit:
            if order == "confidence":
                confidence = pred.gather(-1, x[..., None]).squeeze(-1)
            else:
                confidence = torch.rand(pred.shape[:-1], generator=gen)
            confidence = confidence.masked_fill(committed, -math.inf)
            rank = confidence.argsort(-1, descending=True).argsort(-1)
            new = (rank < schedule[:, i : i + 1]) & ~committed
        else:
            new = ~committed if i == steps - 1 else torch.zeros_like(committed)
        out = torch.where(new, x, out)
        committed |= new
        open_cand, open_logp = prediction_state(pred, levels[i + 1].expand(B), k)
        fixed_cand, fixed_logp = one_hot_state(out, k)
        m = committed[..., None]
        cand[:, P:], logp[:, P:] = (
            torch.where(m, fixed_cand, open_cand),
            torch.where(m, fixed_logp, open_logp),
        )
    return torch.cat([prompt, out], 1), trace


ABLATIONS = {  # name -> (commit, sampled, renoise, temperature, steps[, commit order])
    "original": (False, False, False, 1.0, 16),
    "original, temperature 0.5": (False, False, False, 0.5, 16),
    "original, temperature 2": (False, False, False, 2.0, 16),
    "original, 64 steps": (False, False, False, 1.0, 64),
    "original + re-noising": (False, False, True, 1.0, 16),
    "commit argmax": (True, False, False, 1.0, 16),
    "commit sampled": (True, True, False, 1.0, 16),
    "fixed, confidence order": (True, True, True, 1.0, 16, "confidence"),
    "fixed, random order (default)": (True, True, True, 1.0, 16, "random"),
}


def investigate(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description="SDD generation investigation on a Markov chain")
    ap.add_argument("--self-cond", type=float, default=1.0, help="Config.self_cond_prob (0 = author's)")
    ap.add_argument("--curriculum", default="", help="k-curriculum, e.g. 1,2,4,8")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--vocab", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=24)
    ap.add_argument("--prompt-len", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--eval-seqs", type=int, default=64)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    trans = markov_chain(a.vocab)
    stationary = torch.full((a.vocab,), 1.0 / a.vocab)
    for _ in range(200):
        stationary = stationary @ trans
    entropy_rate = float(-(stationary[:, None] * trans * trans.clamp_min(1e-30).log()).sum())
    curriculum = tuple(int(c) for c in a.curriculum.split(",")) if a.curriculum else ()
    cfg = Config(
        d_model=a.d_model, n_layers=a.layers, n_heads=4, k=a.k, max_len=a.seq_len, self_cond_prob=a.self_cond,
        k_curriculum=curriculum, curriculum_steps=a.train_steps,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build(cfg, a.vocab, None)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    warm = max(1, a.train_steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * s / a.train_steps))
    )
    data = torch.Generator().manual_seed(1)
    start = time.time()
    for step in range(a.train_steps):
        loss, m = model.loss(Batch.from_tokens(chain_samples(trans, a.batch, a.seq_len, data)))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == a.train_steps - 1:
            print(f"step {step} loss {loss.item():.3f} k {m['k']:.0f} {time.time() - start:.0f}s", flush=True)
    model.eval()
    test = chain_samples(trans, a.eval_seqs, a.seq_len, torch.Generator().manual_seed(7))
    batch = Batch.from_tokens(test, prompt_len=a.prompt_len)
    nll, count = model.nll(batch)
    report: dict = {"entropy_rate": entropy_rate, "elbo": float(nll / count), "levels": {}, "samplers": {}}
    print(f"entropy rate {entropy_rate:.3f} nats/token; ELBO estimate {report['elbo']:.3f}")
    print(
        "level | CE truth in candidates | CE no truth | CE own top-k | argmax in candidates: truth/no truth/own"
    )
    for level in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        r = ce_by_state(model, test, a.prompt_len, level)
        report["levels"][level] = r
        print(
            f"{level:.2f} | {r['truth_ce']:.3f} | {r['no_truth_ce']:.3f} | {r['own_ce']:.3f} | "
            f"{r['truth_copy']:.2f} / {r['no_truth_copy']:.2f} / {r['own_copy']:.2f}"
        )
    prompt, n = test[:, : a.prompt_len], a.seq_len - a.prompt_len
    real = repetition_stats(test[:, a.prompt_len :])
    print(f"real text: {real} valid=1.0")
    for name, (commit, sampled, renoise, temperature, steps, *order) in ABLATIONS.items():
        out, trace = ablation_sample(
            model, prompt, n, steps, commit, sampled, renoise, temperature, order=(order or ["confidence"])[0]
        )
        stats = repetition_stats(out[:, a.prompt_len :])
        stats["valid"] = valid_transition_rate(trans, out[:, a.prompt_len - 1 :])
        stats["top1_agreement_step1"] = trace.rows[1]["neighbour_top1_agreement"]
        stats["top1_agreement_last"] = trace.rows[-1]["neighbour_top1_agreement"]
        stats["distinct_top1_step0"] = trace.rows[0]["pred_distinct_top1"]
        stats["duplicate_rate_last"] = trace.rows[-1]["duplicate_rate"]
        report["samplers"][name] = stats
        print(f"{name:38s} " + " ".join(f"{key}={value:.3f}" for key, value in stats.items()))
    return report


if __name__ == "__main__":
    investigate()
