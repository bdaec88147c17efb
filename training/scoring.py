"""One checkpoint on the task's pairs (training/eval_task.py): loading, bits on the continuation bytes,
completions cut to the continuation's length.

- `pair_bits`: per pair, the model's bits on exactly the continuation's bytes. Exact for `ar`; for
  diffusion variants the ELBO bound averaged over `t_samples` noise draws per pair, taken in
  `t_samples / chunk` independent groups so the bound's Monte-Carlo standard error is measured, not
  assumed; a variant whose `nll` is a proxy is labelled so (its figure is not a likelihood).
- `complete`: per pair, generate until the completion has at least the continuation's bytes (a second
  call extends a short one), cut on a character boundary; returns the raw bytes (invalid UTF-8 kept).
"""

from __future__ import annotations

import inspect
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.checkpoint import load_checkpoint
from training.data import collate_pairs
from training.eval_task import Pair, cut_to_bytes, encode_pair, token_bytes
from training.intervals import mean_and_standard_error
from training.tokenizers import Tokenizer
from wikimix.errors import ConfigError, WikimixError

MAX_EXTENSIONS = 3  # generate() calls after the first when a completion is still short


@dataclass
class Model:
    """A loaded checkpoint and what we know about how it was trained."""

    name: str
    path: Path
    variant: nn.Module
    tok: Tokenizer
    train: Any  # TrainConfig
    likelihood: str  # 'exact' | 'bound' | 'proxy'
    params: int
    tokens_seen: int
    train_seconds: float | None
    options: dict[str, Any] = field(default_factory=dict)  # generate() options from the spec ('steps' aside)
    steps: tuple[int, ...] = ()  # the spec's sampler steps; () = the variant's default

    @property
    def max_len(self) -> int | None:
        return getattr(getattr(self.variant, "cfg", None), "max_len", None)


def likelihood_kind(variant: nn.Module) -> str:
    """'exact' for the autoregressive baseline, 'bound' for ELBOs and semantic-insert's insertion-order
    bound (training/insertion_bound.py), 'proxy' for anything else."""
    kind = getattr(variant, "nll_kind", None)
    if kind:
        return str(kind)
    if getattr(variant, "nll_is_bound", False) or is_insertion_model(variant):
        return "bound"
    return "exact" if getattr(variant, "name", "") == "ar" else "proxy"


def is_insertion_model(variant: nn.Module) -> bool:
    """semantic-insert and its kin: scored by the insertion-order bound, not by their `nll` proxy."""
    return hasattr(variant, "slot_logits") and hasattr(variant, "nothing_id")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl records (an absent file is no records)."""
    file = path / "metrics.jsonl"
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def train_seconds(records: list[dict[str, Any]]) -> float | None:
    """Wall time of training, from the last logged cumulative throughput (exact for an unresumed run)."""
    logged = [r for r in records if r.get("tok_per_s")]
    if not logged:
        return None
    return logged[-1]["tokens"] / logged[-1]["tok_per_s"]


def parse_spec(spec: str | Path) -> tuple[Path, dict[str, Any]]:
    """`DIR` or `DIR::key=value,key=value`: the run directory and generate() options, values parsed as
    JSON where they can (`steps`: the sampler steps; e.g. `runs/sdd::sampler=original,steps=16`)."""
    path, _, opts = str(spec).partition("::")
    options: dict[str, Any] = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", opts)):  # commas inside [..] stay
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad checkpoint option {item!r} in {spec!r}: expected key=value")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return Path(path), options


def load_model(spec: str | Path, device: str, names: set[str]) -> Model:
    path, options = parse_spec(spec)
    variant, tok, train = load_checkpoint(path, device=device)
    state = json.loads((path / "state.json").read_text())
    steps = options.pop("steps", ())
    name = (path.name or str(path)) + "".join(f"[{k}={v}]" for k, v in options.items())
    while name in names:  # two runs with the same directory name
        name = f"{name}'"
    names.add(name)
    return Model(
        name=name,
        path=path,
        variant=variant,
        tok=tok,
        train=train,
        likelihood=likelihood_kind(variant),
        params=sum(p.numel() for p in variant.parameters()),
        tokens_seen=int(state.get("tokens_seen", 0)),
        train_seconds=train_seconds(read_metrics(path)),
        options=options,
        steps=tuple(steps) if isinstance(steps, list | tuple) else (int(steps),),
    )


def default_steps(model: Model) -> int | None:
    """The sampler steps of the model's default decoding (None for `ar`: one step per token)."""
    if model.likelihood == "exact":
        return None
    if model.steps:
        return max(model.steps)
    mcfg = getattr(model.variant, "cfg", None)
    default = getattr(mcfg, "steps", None) or getattr(mcfg, "sample_steps", None)
    return int(default) if default else None


def default_temperature(variant: nn.Module) -> float:
    """The temperature generate() uses when given none (0 = argmax); the shared sampler's 1.0 otherwise."""
    for fn in (getattr(variant, "generate_sequences", None), variant.generate):
        if fn is not None:
            param = inspect.signature(fn).parameters.get("temperature")
            if param is not None and param.default is not inspect.Parameter.empty:
                return float(param.default)
    return 1.0


# ---- likelihood ------------------------------------------------------------------------------------------


@torch.no_grad()
def pair_bits(
    model: Model,
    pairs: list[Pair],
    t_samples: int,
    chunk: int,
    seed: int,
    device: str,
    spans: dict[str, list[tuple[int, int, int]]] | None = None,
) -> dict[str, Any]:
    """Bits on each pair's continuation bytes, and (bounds) the Monte-Carlo standard error of the total;
    `spans` (doc_id -> significance spans) for a variant trained on removal ranks."""
    torch.manual_seed(seed)  # diffusion bounds draw noise: the same draws on every run
    if is_insertion_model(model.variant):
        return insertion_bits(model, pairs, seed, spans)
    dev = torch.device(device)
    draws = t_samples if model.likelihood == "bound" else 1
    chunk = max(1, min(chunk, draws))
    groups = max(1, draws // chunk)
    bits, group_totals = [], [0.0] * groups
    for pair in pairs:
        doc_spans = None if spans is None else spans.get(pair.doc_id, [])
        ids, plen, ranks = encode_pair(model.tok, pair, model.max_len, doc_spans)
        row = (pair.doc_id, ids, ranks, plen)
        estimates = []
        for g in range(groups):
            batch = collate_pairs([row] * chunk, model.tok.special.pad_id)
            nll, n = model.variant.nll(batch.to(dev))
            # per scored token, times the continuation's tokens (a proxy may score a subset of them)
            estimates.append(float(nll) / max(float(n), 1.0) * (len(ids) - plen) / math.log(2))
            group_totals[g] += estimates[-1]
        bits.append(sum(estimates) / len(estimates))
    out: dict[str, Any] = {"bits": bits, "t_samples": draws if model.likelihood == "bound" else None}
    if model.likelihood == "bound":
        out["bound_se_bits"] = mean_and_standard_error(group_totals)[1] if groups > 1 else None
    return out


def insertion_bits(
    model: Model, pairs: list[Pair], seed: int, spans: dict[str, list[tuple[int, int, int]]] | None
) -> dict[str, Any]:
    """semantic-insert's exact bound along its own insertion order (deterministic: no t-samples)."""
    from training.insertion_bound import insertion_order_nll

    semantic = getattr(model.variant.cfg, "order", "semantic") == "semantic"
    if semantic and spans is None:
        raise ConfigError(f"{model.name}: order='semantic' needs its significance version to be scored")
    generator = torch.Generator().manual_seed(seed)
    bits = []
    for pair in pairs:
        ids, plen, ranks = encode_pair(
            model.tok, pair, model.max_len, spans.get(pair.doc_id, []) if spans else None
        )
        keys = torch.tensor(ranks) if semantic else torch.randperm(len(ids), generator=generator)
        bits.append(insertion_order_nll(model.variant, ids, plen, keys) / math.log(2))
    return {"bits": bits, "t_samples": None, "bound_se_bits": None}


# ---- generation ------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def complete(
    model: Model, pairs: list[Pair], decoding: dict[str, Any], seed: int, device: str
) -> tuple[list[bytes], list[float]]:
    """Each pair's completion: raw bytes, at least the continuation's length (when the model writes that
    much), cut there on a character boundary; and each one's latency in seconds (batch 1)."""
    dev = torch.device(device)
    generator = torch.Generator(dev).manual_seed(seed)
    options = {**model.options, **decoding, "generator": generator}
    steps = default_steps(model)
    if steps is not None and "steps" not in decoding:
        options["steps"] = steps
    outs, seconds = [], []
    for i, pair in enumerate(pairs):
        target = pair.scored_bytes
        new_tokens = len(model.tok.encode(pair.continuation)) + 2
        context = model.tok.encode(pair.prompt) or [model.tok.special.bos_id]
        written = b""
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(1 + MAX_EXTENSIONS):
            budget = new_tokens if model.max_len is None else min(new_tokens, model.max_len // 2)
            if model.max_len is not None:
                context = context[-(model.max_len - budget) :]
            prompt = torch.tensor([context], device=dev)
            if i == 0 and not outs and not written:
                model.variant.generate(prompt, budget, **options)  # warm-up: allocation, lazy init
                _sync(dev)
                t0 = time.perf_counter()
            out = model.variant.generate(prompt, budget, **options)
            if not torch.equal(out[0, : len(context)], prompt[0]):
                raise WikimixError(f"{model.name}: generate() changed the prompt")
            new = [t for t in out[0, len(context) :].tolist() if t != model.tok.special.pad_id]
            written += token_bytes(model.tok, new)
            if len(written) >= target or not new:
                break
            context = context + new
        _sync(dev)
        seconds.append(time.perf_counter() - t0)
        outs.append(cut_to_bytes(written, target))
    return outs, seconds
