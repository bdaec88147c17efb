"""Training throughput: tokens/s of each variant vs `ar` at the budget's size, and the trainer's overhead
vs a bare loop on the same model and the same batches. Last line: `trainer_vs_bare=<x>` (target >= 0.95).

    .venv/bin/python bench/train_throughput.py --budget bench-cpu --steps 8 --threads 2
    .venv/bin/python bench/train_throughput.py --budget bench-cpu --variants "" --threads 1 --repeats 3
    .venv/bin/python bench/train_throughput.py --budget bench-cpu --variants ar,sdd --steps 2 --warmup 1

--compile also times each listed entry with its backbone torch.compiled (same weights, same batches) and
reports the wall time of the untimed first steps, where compiling happens (training.trainer.compiles).

--variants takes variants or comparison entries (training.config.ENTRIES, e.g. embed-hyper, sdd-pooled).
With `ar` and an SDD entry listed, it also prints, before the last line, `sdd_vs_ar_step=<seconds per
optimizer step, sdd / ar>` (goal <= 10) and `sdd_peak_rss_gb=<peak resident GB>` (goal <= 4): each SDD
entry is measured in a fresh subprocess (the same batches, the same bare loop) so that its peak RSS is its
own. semantic-insert gets SYNTHETIC significance ranks (a random permutation per sequence; the bench data
has no significance table): its step time does not depend on the order, its losses mean nothing.

Data: the shared XQuAD paragraphs (6 languages) written as a `documents` version in a temp data root,
BPE 8192 trained on them (bytes for llada-byte). The bare loop is the minimal step any training needs:
zero_grad, autocast forward, backward, clip, AdamW step; the trainer adds the data stream, LR schedule,
logging and metrics. Both are timed over the same steps after `--warmup` untimed steps, interleaved
`--repeats` times (best of each) because the machine is shared; rates use the process CPU clock by
default (with one thread it does not count time spent waiting for a busy machine), the wall clock too.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from storage.store import write_version  # noqa: E402
from training.blocks import count_parameters  # noqa: E402
from training.config import ENTRIES, make_config, make_entry_config  # noqa: E402
from training.data import DataOptions, ShardData  # noqa: E402
from training.models import load_variant  # noqa: E402
from training.models import make_config as model_config  # noqa: E402
from training.tokenizers import BPETokenizer, ByteTokenizer, load_tokenizer  # noqa: E402
from training.trainer import LossModule, autocast, compile_backbone, make_optimizer, train  # noqa: E402
from training.variant import Batch  # noqa: E402


def xquad_documents(shared: Path) -> list[dict]:
    rows = []
    for path in sorted((shared / "corpus" / "xquad").glob("xquad.*.json")):
        lang = path.name.split(".")[1]
        for i, article in enumerate(json.loads(path.read_text())["data"]):
            for j, para in enumerate(article["paragraphs"]):
                rows.append({"doc_id": f"xquad-{lang}-{i}-{j}", "text": para["context"], "langs": [lang]})
    return rows


def synthetic_ranks(batches: list[Batch], seed: int = 0) -> list[Batch]:
    """The batches with random removal ranks (a permutation of each sequence's real tokens; -1 at pads):
    SYNTHETIC significance, so that semantic-insert runs on data without a significance table."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for batch in batches:
        ranks = torch.full_like(batch.tokens, -1)
        for row, n in enumerate(batch.pad_mask.sum(1).tolist()):
            ranks[row, :n] = torch.randperm(n, generator=g)
        out.append(dataclasses.replace(batch, removal_rank=ranks))
    return out


def peak_rss_gb() -> float:
    """Peak resident set size of this process in GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def bare_tok_per_s(variant, batches, cfg, warmup: int) -> dict[str, float]:
    """The minimal loop: no data stream, schedule, logging or metrics. Tokens/s by wall and CPU clock,
    and seconds per optimizer step by both (`wall_step_s`, `cpu_step_s`)."""
    optimizer = make_optimizer(variant, cfg)
    step_fn = LossModule(variant)
    variant.train()
    wall, cpu, tokens = 0.0, 0.0, 0
    started = time.perf_counter()
    warmup_wall = 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            wall, cpu, tokens = time.perf_counter(), time.process_time(), 0
            warmup_wall = wall - started
        optimizer.zero_grad(set_to_none=True)
        with autocast(cfg, torch.device("cpu")):
            loss, _ = step_fn(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(variant.parameters(), cfg.grad_clip)
        optimizer.step()
        tokens += batch.num_tokens
    wall, cpu, steps = time.perf_counter() - wall, time.process_time() - cpu, len(batches) - warmup
    return {
        "wall": tokens / wall,
        "cpu": tokens / cpu,
        "wall_step_s": wall / steps,
        "cpu_step_s": cpu / steps,
        "warmup_wall_s": warmup_wall,
    }


def measure_entry(name: str, args, ref, bpe, options, total: int) -> tuple[dict[str, float], int, str]:
    """Bare-loop rates of one entry (variant or ENTRIES name) on the first `total` training batches; with
    --compile, also the same loop on the same weights with the backbone compiled (`compiled_*` rates and
    `compile_s`, the wall time of the untimed first steps, where compiling happens)."""
    variant_name = ENTRIES.get(name, (name, {}))[0]
    module = load_variant(variant_name)
    tok = ByteTokenizer() if getattr(module, "TOKENIZER", None) == "byte" else bpe
    overrides = {"precision": args.precision, "batch_size": args.batch_size, "seq_len": args.seq_len}
    cfg = make_entry_config(name, budget=args.budget, data="x", out="y", overrides=overrides)
    batches = list(itertools.islice(ShardData(ref, tok, options).train_batches(), total))
    if variant_name == "semantic-insert":
        batches = synthetic_ranks(batches)
    torch.manual_seed(0)
    variant = module.build(model_config(variant_name, cfg.model), tok.vocab_size, tok.special)
    measured = bare_tok_per_s(variant, batches, cfg, args.warmup)
    if args.compile:
        torch.manual_seed(0)
        variant = module.build(model_config(variant_name, cfg.model), tok.vocab_size, tok.special)
        compile_backbone(variant, dataclasses.replace(cfg, compile="on"), torch.device("cpu"))
        compiled = bare_tok_per_s(variant, batches, cfg, args.warmup)
        measured |= {f"compiled_{k}": v for k, v in compiled.items() if k != "warmup_wall_s"}
        measured["compile_s"] = compiled["warmup_wall_s"]
    return measured, count_parameters(variant), tok.name


def measure_in_subprocess(name: str, args, root: Path, ref, tokenizer_path: Path) -> dict:
    """measure_entry in a fresh interpreter: returns its rates, parameters and peak RSS."""
    command = [sys.executable, __file__, "--child", name, "--child-data", f"{root}:{ref}"]
    command += ["--child-tokenizer", str(tokenizer_path)]
    for flag in ("budget", "steps", "warmup", "threads", "precision"):
        command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.compile:
        command.append("--compile")
    for flag in ("batch_size", "seq_len"):
        if getattr(args, flag) is not None:
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_main(args) -> None:
    """The subprocess side of measure_in_subprocess: one entry, one JSON line."""
    from training.data import parse_data_spec

    torch.set_num_threads(args.threads)
    root, spec = args.child_data.split(":", 1)
    ref = parse_data_spec(spec, root)
    bpe = load_tokenizer(args.child_tokenizer)
    base = make_config("ar", budget=args.budget, data=spec, out="-", overrides=size_overrides(args))
    options = DataOptions(
        seq_len=base.seq_len, batch_size=base.batch_size, val_frac=base.val_frac, test_frac=base.test_frac
    )
    measured, params, tok_name = measure_entry(args.child, args, ref, bpe, options, args.warmup + args.steps)
    print(json.dumps({**measured, "params": params, "tokens": tok_name, "peak_rss_gb": peak_rss_gb()}))


def size_overrides(args) -> dict:
    return {
        "precision": args.precision,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "threads": args.threads,
    }


def trainer_tok_per_s(cfg, warmup: int) -> dict[str, float]:
    """Tokens/s of the trainer from the end of step `warmup` to the last step (from metrics.jsonl)."""
    train(cfg)
    rows = [json.loads(line) for line in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    first, last = next(r for r in rows if r["step"] == warmup), rows[-1]
    tokens = last["tokens"] - first["tokens"]
    return {
        "wall": tokens / (last["elapsed_s"] - first["elapsed_s"]),
        "cpu": tokens / (last["cpu_s"] - first["cpu_s"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", default="bench-cpu")
    parser.add_argument("--variants", default="ar,mdlm,llada-byte")
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--repeats", type=int, default=2, help="bare/trainer measurements, best of each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=None)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument(
        "--clock",
        default="cpu",
        choices=["cpu", "wall"],
        help="clock of the reported rates: process CPU time (robust on a shared machine with --threads 1) or wall",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time each entry with its backbone torch.compiled (same weights, same batches)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: measure one entry, print JSON
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    parser.add_argument("--child-tokenizer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    torch.set_num_threads(args.threads)
    shared = Path(os.environ.get("WIKIMIX_SHARED", REPO.parent / "shared"))
    total = args.warmup + args.steps

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        ref = write_version(root, "xq-docs", {"documents": xquad_documents(shared)}, num_shards=4)
        base = make_config(
            "ar",
            budget=args.budget,
            data=f"xq-docs@{ref.version}",
            out=f"{tmp}/run",
            overrides={
                "precision": args.precision,
                "batch_size": args.batch_size,
                "seq_len": args.seq_len,
                "threads": args.threads,
            },
        )
        options = DataOptions(
            seq_len=base.seq_len, batch_size=base.batch_size, val_frac=base.val_frac, test_frac=base.test_frac
        )
        t0 = time.perf_counter()
        bpe = BPETokenizer.train(ShardData(ref, ByteTokenizer(), options).texts(), base.vocab_size)
        bpe.save(Path(tmp) / "tokenizer.json")
        print(
            f"data: {ref.num_rows('documents')} XQuAD paragraphs; BPE {bpe.vocab_size} in {time.perf_counter() - t0:.1f}s"
        )
        print(
            f"budget {args.budget}: batch {base.batch_size} x {base.seq_len}, {args.precision}, "
            f"{args.threads} threads, {args.steps} timed steps after {args.warmup}"
        )

        rates: dict[str, float] = {}
        step_s: dict[str, float] = {}
        peak_rss: dict[str, float] = {}
        for name in filter(None, args.variants.split(",")):
            if ENTRIES.get(name, (name, {}))[0] == "sdd":  # its own process, for its own peak RSS
                measured = measure_in_subprocess(name, args, root, ref, Path(tmp) / "tokenizer.json")
                params, tok_name = measured["params"], measured["tokens"]
                peak_rss[name] = measured["peak_rss_gb"]
            else:
                measured, params, tok_name = measure_entry(name, args, ref, bpe, options, total)
            rates[name], step_s[name] = measured[args.clock], measured[f"{args.clock}_step_s"]
            synthetic = " (SYNTHETIC significance ranks)" if name == "semantic-insert" else ""
            rss = f"  peak RSS {peak_rss[name]:.2f} GB" if name in peak_rss else ""
            if "compile_s" in measured:
                compiled = measured[f"compiled_{args.clock}"]
                print(
                    f"{name:>16}: compiled {compiled:8.0f} tok/s ({args.clock} clock; wall "
                    f"{measured['compiled_wall']:.0f}), x{compiled / rates[name]:.3f} of eager; the "
                    f"{args.warmup} untimed first steps (compiling) took {measured['compile_s']:.1f} s wall"
                )
            print(
                f"{name:>16}: {params / 1e6:6.2f}M params  {rates[name]:8.0f} tok/s "
                f"({args.clock} clock; wall {measured['wall']:.0f})  {step_s[name]:7.2f} s/step  "
                f"x{rates[name] / rates.get('ar', rates[name]):.2f} of ar  ({tok_name} tokens){synthetic}{rss}",
                flush=True,
            )

        # the trainer vs the bare loop: same model (ar), same batches, interleaved, best of each
        batches = list(itertools.islice(ShardData(ref, bpe, options).train_batches(), total))
        bare, trainer = [], []
        for r in range(args.repeats):
            torch.manual_seed(0)
            variant = load_variant("ar").build(model_config("ar", base.model), bpe.vocab_size, bpe.special)
            bare.append(bare_tok_per_s(variant, batches, base, args.warmup))
            cfg = make_config(
                "ar",
                budget=args.budget,
                data=f"xq-docs@{ref.version}",
                out=f"{tmp}/run{r}",
                tokenizer=str(Path(tmp) / "tokenizer.json"),
                max_steps=total,
                overrides={
                    "precision": args.precision,
                    "batch_size": args.batch_size,
                    "seq_len": args.seq_len,
                    "threads": args.threads,
                    "log_every": 1,
                    "eval_every": 0,
                    "save_every": 0,
                    "eval_examples": 1,
                    "progress": False,
                    "warmup_steps": 1,
                },
            )
            os.environ["WIKIMIX_DATA"] = str(root)
            trainer.append(trainer_tok_per_s(cfg, args.warmup))
            print(
                f"repeat {r}: bare {bare[-1]['cpu']:.0f} cpu / {bare[-1]['wall']:.0f} wall tok/s, "
                f"trainer {trainer[-1]['cpu']:.0f} cpu / {trainer[-1]['wall']:.0f} wall tok/s"
            )
        wall = max(t["wall"] for t in trainer) / max(b["wall"] for b in bare)
        print(f"trainer_vs_bare (wall clock, best of {args.repeats}) = {wall:.3f}")
        best = max(t[args.clock] for t in trainer) / max(b[args.clock] for b in bare)
        if "ar" in step_s and "sdd" in step_s:
            print(f"sdd_vs_ar_step={step_s['sdd'] / step_s['ar']:.3f}")
            print(f"sdd_peak_rss_gb={peak_rss['sdd']:.3f}")
        print(f"trainer_vs_bare={best:.3f}")


if __name__ == "__main__":
    main()
