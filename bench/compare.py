"""The comparison in one command: train every variant that exists at one budget, then evaluate them all.

    .venv/bin/python bench/compare.py --data NAME-docs --budget bench-cpu --out runs/bench-cpu
    .venv/bin/python bench/compare.py --data NAME-docs --budget bench-gpu --out runs/bench-gpu --device cuda
    .venv/bin/python bench/compare.py --data NAME-docs --budget smoke --out /tmp/cmp --variants ar,mdlm

Each variant trains into OUT/<variant> through the one trainer (same data, tokens, seed; the budget sets
the sizes so parameter counts agree within 10%), one after the other; rerunning resumes and skips finished
runs. Then training/evaluate.py scores all of them on the fixed test split and writes OUT/report/
(comparison.md / .parquet, frontier, plots). Prints the table and, last,
`mdlm_vs_ar_ppl=<mdlm perplexity bound / ar perplexity>` (the seed measured 2.92 at this budget).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.config import BUDGETS, make_config  # noqa: E402
from training.evaluate import EvalConfig, evaluate  # noqa: E402
from training.models import VARIANTS, load_variant  # noqa: E402
from training.trainer import train  # noqa: E402
from wikimix.errors import ConfigError, WikimixError, run_or_exit  # noqa: E402


def available(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            load_variant(name)
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
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: all)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the budget's steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-generate", type=int, default=32)
    parser.add_argument("--steps", default="8,16,32,64", help="diffusion sampler steps on the frontier")
    parser.add_argument("--no-lid", action="store_true", help="skip the language mix (fastText LID)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = available([v.strip() for v in args.variants.split(",") if v.strip()])
    if "ar" not in names:
        raise WikimixError("the comparison needs the ar baseline")
    dirs = []
    for name in names:
        cfg = make_config(
            name,
            budget=args.budget,
            data=args.data,
            out=str(args.out / name),
            max_steps=args.max_steps,
            significance=args.significance,
            device=args.device,
            threads=args.threads,
        )
        print(f"== train {name} ({args.budget}) -> {cfg.out}", flush=True)
        try:
            train(cfg)
        except WikimixError as exc:  # one variant that cannot train here must not sink the others
            if name == "ar":
                raise
            print(f"skip {name}: {exc}", flush=True)
            continue
        dirs.append(args.out / name)
    lid = None
    if not args.no_lid:
        from wikimix.commands.evaluate import fasttext_lid as lid
    steps = tuple(int(s) for s in args.steps.split(","))
    eval_cfg = EvalConfig(n_generate=args.n_generate, steps=steps, device=args.device)
    paths = evaluate(dirs, args.data, args.out / "report", eval_cfg, lid=lid, significance=args.significance)
    print(Path(paths["comparison_md"]).read_text())
    import pyarrow.parquet as pq

    rows = {r["model"]: r for r in pq.read_table(paths["comparison_parquet"]).to_pylist()}
    ratio = rows["mdlm"]["perplexity"] / rows["ar"]["perplexity"] if "mdlm" in rows else float("nan")
    print(f"mdlm_vs_ar_ppl={ratio:.3f}")
    return ratio


if __name__ == "__main__":
    run_or_exit(main)
