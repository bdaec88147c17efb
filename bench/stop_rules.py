"""semantic-insert's stopping rules compared on one trained checkpoint, on the fixed test split.

For each rule (the learned `nothing` class with a margin, `max-prob`, `semantic` change measured with the
significance encoder) and a creativeness bound, completes the same test prompts and prints the length
(median [IQR]) against the reference continuation, the steps taken, what stopped each run, the judged
perplexity (an `ar` run) and the time per completion.

    .venv/bin/python bench/stop_rules.py --ckpt runs/bench-cpu/si-semantic --judge runs/bench-cpu/ar \
        --data shared-docs --n 16
Last line: `semantic_vs_nothing_length=<median length under semantic / under nothing>`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from pipeline.encoder import Encoder, EncoderConfig  # noqa: E402
from training import metrics  # noqa: E402
from training.data import DataOptions, ShardData, parse_data_spec  # noqa: E402
from training.eval_task import TaskConfig, build_pairs  # noqa: E402
from training.judge import judge_pair_nll  # noqa: E402
from training.scoring import load_model  # noqa: E402
from wikimix.errors import run_or_exit  # noqa: E402

RULES = [
    ("nothing (margin 0)", dict(stop_rule="nothing", margin=0.0)),
    ("nothing (margin 0.3)", dict(stop_rule="nothing", margin=0.3)),
    ("max-prob (0.05)", dict(stop_rule="max-prob", min_prob=0.05)),
    ("semantic (min change 0.01)", dict(stop_rule="semantic", min_change=0.01)),
    ("nothing + creativeness 0.05", dict(stop_rule="nothing", creativeness=0.05)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True, help="a semantic-insert run directory")
    ap.add_argument("--judge", help="an ar run directory judging the completions")
    ap.add_argument("--data", required=True, help="DATASET[@VERSION] whose test split is completed")
    ap.add_argument("--n", type=int, default=16, help="test prompts")
    ap.add_argument("--cont-len", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names: set[str] = set()
    model = load_model(args.ckpt, "cpu", names)
    opts = DataOptions(val_frac=model.train.val_frac, test_frac=model.train.test_frac)
    source = ShardData(parse_data_spec(args.data), model.tok, opts)
    # the evaluator's task, in the model's own tokens (its tokenizer is the reference here)
    pairs = build_pairs(source, model.tok, TaskConfig(cont_len=args.cont_len, max_pairs=args.n))
    judge = load_model(args.judge, "cpu", names) if args.judge else None
    encoder = Encoder(EncoderConfig(threads=args.threads))
    prompts = [model.tok.encode(p.prompt) for p in pairs]
    ref_lengths = [len(model.tok.encode(p.continuation)) for p in pairs]
    print(f"{len(pairs)} test prompts; reference length {metrics.median_iqr(ref_lengths)}")
    medians = {}
    for label, options in RULES:
        t0 = time.perf_counter()
        result = model.variant.generate_sequences(
            prompts, args.cont_len, semantic_fn=encoder.encode, decode_fn=model.tok.decode, **options
        )
        seconds = (time.perf_counter() - t0) / len(prompts)
        lengths = [len(seq) - len(p) for seq, p in zip(result.sequences, prompts, strict=True)]
        texts = [model.tok.decode(seq[len(p) :]) for seq, p in zip(result.sequences, prompts, strict=True)]
        gen_ppl = "-"
        if judge is not None and any(lengths):
            judged = [judge_pair_nll(judge, p.prompt, t, "cpu") for p, t in zip(pairs, texts, strict=True)]
            nll, n = sum(j[0] for j in judged), sum(j[1] for j in judged)
            gen_ppl = f"{metrics.perplexity(nll, n):.1f}" if n else "-"
        medians[label] = statistics.median(lengths)
        print(
            f"{label:30s} length {metrics.median_iqr(lengths):16s} steps {statistics.median(result.steps):4.1f} "
            f"stopped {dict(Counter(result.stopped_by))} gen_ppl {gen_ppl} seconds {seconds:.3f}"
        )
    ratio = medians["semantic (min change 0.01)"] / max(medians["nothing (margin 0)"], 1e-9)
    print(f"semantic_vs_nothing_length={ratio:.3f}")


if __name__ == "__main__":
    run_or_exit(main)
