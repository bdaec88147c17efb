"""The comparison in one command: train every entry on the same tokens, evaluate them all on the same text.

    .venv/bin/python bench/compare.py --data NAME-docs --significance NAME-sig --budget bench-cpu \
        --out runs/bench-cpu --jobs 2 --publish bench-cpu
    .venv/bin/python bench/compare.py --budget smoke --data sample-docs --significance sample-sig \
        --entries ar,mdlm,llada-byte,semantic-insert --out /tmp/cmp

Entries (training/config.py ENTRIES) are the variants, with `embed` once per denoiser head; each trains
into OUT/<entry> through the one trainer on the concept-disjoint train split (training/split.py) with the
same data, seed and number of training tokens (budgets are token budgets: max_steps x batch x seq_len;
wall time is recorded, never used to cut). BPE entries and the byte entry (llada-byte) use the budget's
tokenizers; the smoke budget is switched to BPE here (SMOKE_SETTINGS) so it exercises both kinds. An
independent AR judge is trained once on the train split at JUDGE_STEPS_FACTOR x the budget and cached under
the data root (training/judge.py). Then training/evaluate.py scores every entry and the baselines on the
same continuation bytes of the test split and writes OUT/report/; this script also writes
OUT/comparison.json (one object per row) and OUT/split.json (the concepts of each split), and prints, last,
`rows_beating_unigram=<n>/<m>` (rows whose 95% interval of bits/byte lies wholly below the unigram's).
`--publish NAME` publishes the table and figures as Prefect artifacts (keys `NAME-...`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.config import BUDGETS, ENTRIES, make_entry_config, parse_overrides  # noqa: E402
from training.data import parse_data_spec  # noqa: E402
from training.evaluate import EvalConfig, evaluate, rows_beating_unigram  # noqa: E402
from training.judge import judge_run  # noqa: E402
from training.models import load_variant  # noqa: E402
from training.split import concept_splits  # noqa: E402
from training.trainer import train_many  # noqa: E402
from wikimix.errors import ConfigError, WikimixError, run_or_exit  # noqa: E402

# Extra rows evaluated from an entry's checkpoint: generate() options (steps: the sampler steps to try).
# SDD's original sampler is kept beside the fixed one so the repetition it causes can be seen.
EXTRA_ROWS = {"sdd": ["sampler=original"]}
SEEDED = ("ar", "mdlm")  # entries trained once per --seeds value: mean and t-interval across seeds

# The smoke budget trains byte models for the unit tests; the comparison runs it with the bench's
# tokenizers (BPE rows beside the byte row) and splits large enough for the 8-concept sample corpus.
SMOKE_SETTINGS = {"tokenizer": "bpe", "vocab_size": "1024", "val_frac": "0.15", "test_frac": "0.1"}
# Evaluation sizes per budget: smoke is labelled as such (few t-samples, short pairs), never a result.
EVAL_SETTINGS = {
    "smoke": dict(prompt_min=32, prompt_max=64, cont_len=16, t_samples=8, t_chunk=4, n_boot=200,
                  reference_vocab=1024, temperatures=(0.7, 1.0), ngram_order=4),
    "bench-cpu": dict(t_samples=64, t_chunk=16),
    "bench-gpu": dict(t_samples=128, t_chunk=64),
}  # fmt: skip


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


def seed_summary(rows: list[dict], seeds: list[int]) -> dict[str, dict]:
    """Per seeded entry: bits per byte of each seed's run, their mean and 95% t-interval across seeds."""
    from training.intervals import interval

    out = {}
    for name in SEEDED:
        runs = [name] + [f"{name}-seed{s}" for s in seeds[1:]]
        values = [next((r["bits_per_byte"] for r in rows if r["model"] == run), None) for run in runs]
        if values[0] is not None:
            out[name] = {"seeds": seeds, "bits_per_byte": values, **interval(values)}
    return out


def main(argv: list[str] | None = None) -> tuple[int, int]:
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
    parser.add_argument("--n-generate", type=int, default=64, help="test pairs completed per decoding")
    parser.add_argument("--max-examples", type=int, default=256, help="test pairs scored for likelihood")
    parser.add_argument("--sdd-options", default="", help="generate() options for SDD's rows, e.g. 'steps=8'")
    parser.add_argument(
        "--seeds", default="0", help="training seeds of ar and mdlm, e.g. 0,1,2 (first: the row)"
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
    overrides = {**(SMOKE_SETTINGS if args.budget == "smoke" else {}), **parse_overrides(args.set)}
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise ConfigError("--seeds is empty")
    runs = [(name, name, seeds[0]) for name in names]
    runs += [(f"{name}-seed{seed}", name, seed) for seed in seeds[1:] for name in SEEDED if name in names]
    configs = {}
    for run, name, seed in runs:
        configs[run] = make_entry_config(
            name,
            budget=args.budget,
            overrides=overrides,
            data=args.data,
            out=str(args.out / run),
            significance=args.significance,
            device=args.device,
            threads=max(1, args.threads // args.jobs),
            progress=args.jobs == 1,
            seed=seed,
        )
    names = list(configs)
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
    ar_cfg = configs["ar"]
    judge = judge_run(parse_data_spec(args.data), ar_cfg)
    eval_cfg = EvalConfig(
        **EVAL_SETTINGS.get(args.budget, {}),
        n_generate=args.n_generate,
        max_examples=args.max_examples,
        val_frac=ar_cfg.val_frac,
        test_frac=ar_cfg.test_frac,
        device=args.device,
    )
    paths = evaluate(specs, args.data, args.out / "report", eval_cfg, lid=lid, judge=judge)
    print(Path(paths["comparison_md"]).read_text())
    rows = json.loads(Path(paths["comparison_json"]).read_text())
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    table = "sections" if ar_cfg.table == "sections" else "documents"
    splits = concept_splits(parse_data_spec(args.data), table, ar_cfg.val_frac, ar_cfg.test_frac)
    (args.out / "split.json").write_text(json.dumps(splits, indent=1, ensure_ascii=False))
    if args.publish:
        from flows.evaluate import publish_report

        print("published:", ", ".join(publish_report(args.publish, args.data, paths)))
    if len(seeds) > 1:
        (args.out / "seeds.json").write_text(json.dumps(seed_summary(rows, seeds), indent=1))
        print("seeds:", json.dumps(seed_summary(rows, seeds)))
    n, m = rows_beating_unigram(rows)
    print(f"rows_beating_unigram={n}/{m}")
    return n, m


if __name__ == "__main__":
    run_or_exit(main)
