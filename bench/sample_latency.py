"""Sampling latency: one 50-token completion of a 150-token prompt (batch 1) by every entry, vs `ar`
on its KV cache, in one run.

    .venv/bin/python bench/sample_latency.py                          # fresh bench-cpu-sized models
    .venv/bin/python bench/sample_latency.py --ckpt runs/ar --ckpt runs/mdlm --steps 16,32,64
    .venv/bin/python bench/sample_latency.py --budget bench-gpu --device cuda

Without --ckpt every entry (training.config.ENTRIES: each variant, embed once per head) is built at the
budget's size (weights at init:
latency does not depend on them, except that a sampler may skip steps that reveal nothing). With --ckpt
the trained checkpoints are timed instead; their quality at each step count is in the evaluator's
frontier (training/evaluate.py), so latencies can be compared at matched quality. Each point is the
best of --repeats timed calls (rounds alternate over all points) after one warm-up call. Prints one line per
(variant, sampler, steps): each diffusion entry with its default sampler, and mdlm / llada-byte also with
the fast sampler (training/samplers.py "fast": commits every draw above --threshold, in blocks of
--block-len on Fast-dLLM's --cache (dual: keys outside the block, refreshed per block), steps as the cap). Then the batch-16 throughput (--throughput-batch; tokens/s of ar and of mdlm with both
samplers at --headline-steps), `mdlm_vs_ar_latency_default=<mdlm's default sampler at --headline-steps /
ar>` and, last, `mdlm_vs_ar_latency=<mdlm's fast sampler at --headline-steps / ar>`.

With fresh weights no draw is confident (probabilities ~1/V), so the fast sampler takes all its steps
and only the cache speeds it up; a trained checkpoint (--ckpt) commits several tokens per step.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.config import (  # noqa: E402
    BUDGETS,
    ENTRIES,
    make_entry_config,  # noqa: E402
)
from training.models import load_variant, make_config  # noqa: E402
from training.tokenizers import SPECIAL_TOKENS, ByteTokenizer, SpecialIds  # noqa: E402
from wikimix.errors import (  # noqa: E402
    ConfigError,
    WikimixError,
    run_or_exit,  # noqa: E402
)

BPE_SPECIAL = SpecialIds(*range(len(SPECIAL_TOKENS)))  # BPETokenizer puts the specials at 0..3


def fresh_models(budget: str, device: str, names: list[str]) -> dict[str, torch.nn.Module]:
    """The named entries (training.config.ENTRIES) whose variant exists, built at the budget's size
    (vocab: the budget's BPE, or bytes)."""
    models = {}
    for name in names:
        if name not in ENTRIES:
            raise ConfigError(f"unknown entry {name!r} (known: {', '.join(ENTRIES)})")
        variant = ENTRIES[name][0]
        try:
            module = load_variant(variant)
        except ConfigError as exc:
            print(f"skip {name}: {exc}")
            continue
        cfg = make_entry_config(name, budget=budget, data="-", out="-")
        byte = getattr(module, "TOKENIZER", None) == "byte"
        vocab = ByteTokenizer.vocab_size if byte else cfg.vocab_size
        special = ByteTokenizer.special if byte else BPE_SPECIAL
        torch.manual_seed(0)
        models[name] = module.build(make_config(variant, cfg.model), vocab, special).to(device).eval()
    return models


def checkpoint_models(paths: list[str], device: str) -> dict[str, torch.nn.Module]:
    from training.checkpoint import load_checkpoint

    models = {}
    for path in paths:
        variant, _, _ = load_checkpoint(path, device=device)
        models[getattr(variant, "name", Path(path).name)] = variant
    return models


def completion_call(model, prompt_len: int, new: int, steps: int, device: str, batch: int = 1, **sampler):
    """A function running one completion of random (non-special) prompt tokens, `batch` rows."""
    special = model.special
    low = max(special.pad_id, special.mask_id, special.bos_id, special.eos_id) + 1
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(
        low if low < model.vocab_size else 0, model.vocab_size, (batch, prompt_len), generator=g
    )
    prompt = prompt.to(device)
    options = {"steps": steps, "generator": torch.Generator(device).manual_seed(0), **sampler}

    @torch.no_grad()
    def call() -> None:
        out = model.generate(prompt, new, **options)
        assert out.shape == (batch, prompt_len + new)

    return call


def timed(call, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    call()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", action="append", default=[], help="trained run directory (repeatable)")
    parser.add_argument("--budget", default="bench-cpu", choices=sorted(BUDGETS))
    parser.add_argument("--entries", default=",".join(ENTRIES), help="comma-separated (default: all)")
    parser.add_argument("--steps", default="16,32,64", help="diffusion sampler steps, comma-separated")
    parser.add_argument("--headline-steps", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=150)
    parser.add_argument("--new-tokens", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threshold", type=float, default=0.9, help="the fast sampler's confidence threshold"
    )
    parser.add_argument(
        "--block-len", type=int, default=10, help="the fast sampler's block length (0: one block)"
    )
    parser.add_argument("--cache", default="dual", help="the fast sampler's cache: none | prefix | dual")
    parser.add_argument(
        "--throughput-batch", type=int, default=16, help="batch of the throughput rows (0: none)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = sorted({int(s) for s in args.steps.split(",")} | {args.headline_steps})
    models = (
        checkpoint_models(args.ckpt, args.device)
        if args.ckpt
        else fresh_models(args.budget, args.device, [v.strip() for v in args.entries.split(",") if v.strip()])
    )
    if "ar" not in models or "mdlm" not in models:
        raise WikimixError("the headline needs both an ar and an mdlm model")
    fast = {
        "method": "fast",
        "threshold": args.threshold,
        "cache": args.cache,
        "block_len": args.block_len or None,
    }
    calls = {}  # (entry, sampler, steps) -> call
    for name, model in models.items():
        samplers = {"default": {}, "fast": fast} if hasattr(model, "new_cache") else {"default": {}}
        for label, options in samplers.items():
            for s in [args.new_tokens] if name == "ar" else steps:
                key = (name, label, s)
                calls[key] = completion_call(
                    model, args.prompt_len, args.new_tokens, s, args.device, **options
                )
                print(f"warm-up {name} {label} steps={s}: {timed(calls[key], args.device):.3f} s", flush=True)
    # rounds alternate over every point and the best of each is kept, so CPU contention from other work
    # hits all points alike instead of whichever happened to run during it
    best = {key: math.inf for key in calls}
    for _ in range(args.repeats):
        for key, call in calls.items():
            best[key] = min(best[key], timed(call, args.device))
    print(f"{'variant':16} {'sampler':8} {'params':>10} {'steps':>5} {'seconds':>8} {'tok/s':>8}")
    for (name, label, s), sec in best.items():
        params = sum(p.numel() for p in models[name].parameters())
        shown = f"{name} (kv)" if name == "ar" else name
        print(f"{shown:16} {label:8} {params:10,d} {s:5d} {sec:8.3f} {args.new_tokens / sec:8.1f}")
    ar_key = ("ar", "default", args.new_tokens)
    heads = [ar_key, ("mdlm", "default", args.headline_steps), ("mdlm", "fast", args.headline_steps)]
    if args.throughput_batch:
        batch = args.throughput_batch
        for name, label, s in heads:  # one timed call each: long on a CPU, and warm by now
            options = fast if label == "fast" else {}
            model = models[name]
            call = completion_call(model, args.prompt_len, args.new_tokens, s, args.device, batch, **options)
            sec = timed(call, args.device)
            print(
                f"batch {batch} {name} {label} steps={s}: {batch * args.new_tokens / sec:.1f} tok/s ({sec:.2f} s)"
            )
    print(
        f"device={args.device} threads={args.threads} prompt={args.prompt_len} new={args.new_tokens} "
        f"budget={'checkpoints' if args.ckpt else args.budget} threshold={args.threshold} "
        f"block_len={args.block_len} cache={args.cache}"
    )
    print(f"mdlm_vs_ar_latency_default={best[heads[1]] / best[ar_key]:.3f}")
    ratio = best[heads[2]] / best[ar_key]
    print(f"mdlm_vs_ar_latency={ratio:.3f}")
    return ratio


if __name__ == "__main__":
    run_or_exit(main)
