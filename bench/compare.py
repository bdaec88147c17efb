"""The comparison in one command: train every entry at one budget, evaluate them all, publish the table.

    .venv/bin/python bench/compare.py --data NAME-docs --significance NAME-sig --budget bench-cpu \
        --out runs/bench-cpu --jobs 2 --sdd-options 'steps=[8],max_examples=8,n_generate=8' --publish bench-cpu
    .venv/bin/python bench/compare.py --data NAME-docs --budget bench-gpu --out runs/bench-gpu --device cuda
    .venv/bin/python bench/compare.py --data NAME-docs --budget smoke --out /tmp/cmp --entries ar,mdlm

Entries (training/config.py ENTRIES) are the variants, with `embed` once per denoiser head; each trains
into OUT/<entry> through the one trainer (same data, tokenizer, seed; the budget sizes every entry to
within 10% of ar's parameters and caps each run's wall time: `bench-cpu` gives 15 minutes, so a slow
variant sees fewer tokens, and the table reports tokens and train time beside quality). `--jobs N` trains
N entries at once, each on threads // N threads. Rerunning resumes and skips finished runs. Then
training/evaluate.py scores all of them on the fixed test split, SDD once per sampler (the fixed one and
the author's original, side by side), and writes OUT/report/ (comparison.md / .parquet, frontier, plots).
`--publish NAME` also publishes the table, curves and frontier as Prefect artifacts (keys `NAME-...`) on
the configured Prefect server. Prints the table and, last, `mdlm_vs_ar_ppl=<mdlm bound / ar perplexity>`
(the seed measured 2.92 at 450 steps of this size).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.config import BUDGETS, ENTRIES, make_entry_config, parse_overrides  # noqa: E402
from training.evaluate import EvalConfig, evaluate  # noqa: E402
from training.models import load_variant  # noqa: E402
from training.trainer import train_many  # noqa: E402
from wikimix.errors import ConfigError, WikimixError, run_or_exit  # noqa: E402

# Extra rows evaluated from an entry's checkpoint: generate() options (steps: the sampler steps to try).
# SDD's original sampler is kept beside the fixed one so the repetition it causes can be seen.
EXTRA_ROWS = {"sdd": ["sampler=original"]}


def available(names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name not in ENTRIES:
            raise ConfigError(f"unknown entry {name!r} (known: {', '.join(ENTRIES)})")
        try:
            load_variant(ENTRIES[name][0])
            out.append(name)
        except ConfigError as exc:
            print(f"skip {name}: {exc}", flush=True)
    return out


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="DATASET[@VERSION] under the data root")
    parser.add_argument("--significance", default=None, help="DATASET[@VERSION] with a significance table")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--budget", default="bench-cpu", choices=sorted(BUDGETS))
    parser.add_argument("--entries", default=",".join(ENTRIES), help="comma-separated (default: all)")
    parser.add_argument("--set", action="append", default=[], help="training override key=value (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="entries trained at once")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-generate", type=int, default=32)
    parser.add_argument("--max-examples", type=int, default=256, help="test pairs scored for likelihood")
    parser.add_argument("--steps", default="8,16,32,64", help="diffusion sampler steps on the frontier")
    parser.add_argument(
        "--sdd-options",
        default="",
        help="options for SDD's rows, e.g. 'steps=[8],max_examples=8,n_generate=8' (k = 8 candidates make "
        "each SDD forward ~8x the tokens of the others)",
    )
    parser.add_argument("--no-lid", action="store_true", help="skip the language mix (fastText LID)")
    parser.add_argument("--publish", default="", help="publish the report as Prefect artifacts under NAME")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        raise ConfigError("--jobs and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    names = available([v.strip() for v in args.entries.split(",") if v.strip()])
    if "ar" not in names:
        raise WikimixError("the comparison needs the ar baseline")
    overrides = parse_overrides(args.set)
    configs = {}
    for name in names:
        configs[name] = make_entry_config(
            name,
            budget=args.budget,
            overrides=overrides,
            data=args.data,
            out=str(args.out / name),
            significance=args.significance,
            device=args.device,
            threads=max(1, args.threads // args.jobs),
            progress=args.jobs == 1,
        )
    failed = train_many(configs, args.jobs)
    if "ar" in failed:
        raise WikimixError(f"ar did not train: {failed['ar']}")
    for name, error in failed.items():
        print(f"skip {name}: {error}", flush=True)
    specs = []
    for name in (n for n in names if n not in failed):
        extra = [args.sdd_options] if name == "sdd" and args.sdd_options else []
        for options in [None, *EXTRA_ROWS.get(name, [])]:
            opts = ",".join(filter(None, [options, *extra]))
            specs.append(f"{args.out / name}::{opts}" if opts else str(args.out / name))
    lid = None
    if not args.no_lid:
        from wikimix.commands.evaluate import fasttext_lid as lid
    steps = tuple(int(s) for s in args.steps.split(","))
    eval_cfg = EvalConfig(
        n_generate=args.n_generate, max_examples=args.max_examples, steps=steps, device=args.device
    )
    paths = evaluate(specs, args.data, args.out / "report", eval_cfg, lid=lid, significance=args.significance)
    print(Path(paths["comparison_md"]).read_text())
    if args.publish:
        from flows.evaluate import publish_report

        print("published:", ", ".join(publish_report(args.publish, args.data, paths)))
    import pyarrow.parquet as pq

    rows = {r["model"]: r for r in pq.read_table(paths["comparison_parquet"]).to_pylist()}
    ratio = rows["mdlm"]["perplexity"] / rows["ar"]["perplexity"] if "mdlm" in rows else float("nan")
    print(f"mdlm_vs_ar_ppl={ratio:.3f}")
    return ratio


if __name__ == "__main__":
    run_or_exit(main)
