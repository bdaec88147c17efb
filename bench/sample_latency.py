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
best of --repeats timed calls (rounds alternate over all points) after one warm-up call. Prints one line per (variant, steps) and, last,
`mdlm_vs_ar_latency=<mdlm seconds at --headline-steps / ar seconds>`.
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


def completion_call(model, prompt_len: int, new: int, steps: int, device: str):
    """A function running one batch-1 completion of random (non-special) prompt tokens."""
    special = model.special
    low = max(special.pad_id, special.mask_id, special.bos_id, special.eos_id) + 1
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(
        low if low < model.vocab_size else 0, model.vocab_size, (1, prompt_len), generator=g
    )
    prompt = prompt.to(device)
    options = {"steps": steps, "generator": torch.Generator(device).manual_seed(0)}

    @torch.no_grad()
    def call() -> None:
        out = model.generate(prompt, new, **options)
        assert out.shape == (1, prompt_len + new)

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
    calls = {}
    for name, model in models.items():
        for s in [args.new_tokens] if name == "ar" else steps:
            calls[(name, s)] = completion_call(model, args.prompt_len, args.new_tokens, s, args.device)
            print(f"warm-up {name} steps={s}: {timed(calls[(name, s)], args.device):.3f} s", flush=True)
    # rounds alternate over every point and the best of each is kept, so CPU contention from other work
    # hits all points alike instead of whichever happened to run during it
    best = {key: math.inf for key in calls}
    for _ in range(args.repeats):
        for key, call in calls.items():
            best[key] = min(best[key], timed(call, args.device))
    print(f"{'variant':16} {'params':>10} {'steps':>5} {'seconds':>8} {'tok/s':>8}")
    for (name, s), sec in best.items():
        params = sum(p.numel() for p in models[name].parameters())
        label = f"{name} (kv)" if name == "ar" else name
        print(f"{label:16} {params:10,d} {s:5d} {sec:8.3f} {args.new_tokens / sec:8.1f}")
    latency = best
    ratio = latency[("mdlm", args.headline_steps)] / latency[("ar", args.new_tokens)]
    print(
        f"device={args.device} threads={args.threads} prompt={args.prompt_len} new={args.new_tokens} "
        f"budget={'checkpoints' if args.ckpt else args.budget}"
    )
    print(f"mdlm_vs_ar_latency={ratio:.3f}")
    return ratio


if __name__ == "__main__":
    run_or_exit(main)
