"""The controlled multilingual knowledge experiment (training/knowledge_experiment.py) as a benchmark:
train ar and mdlm on the mono / parallel / cs / cs-fixed arms at equal tokens, score the held-out-frame
cloze, print the table of accuracy by variant x arm x cell with 95% intervals and chance, and the paired
differences on held-out facts with their minimum detectable difference.

    .venv/bin/python bench/cs_knowledge.py --budget smoke --threads 2              # minutes
    .venv/bin/python bench/cs_knowledge.py --budget bench-cpu --seeds 0,1,2 --threads 1   # sized for 1 thread
Last line: `xling_cloze_gain=<cs minus mono accuracy on never-seen (held-out) facts>` (mdlm when it ran,
else ar).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.knowledge_experiment import PRESETS, KnowledgeConfig, run_knowledge  # noqa: E402
from wikimix.errors import ConfigError, run_or_exit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="smoke", choices=list(PRESETS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--variants", default="ar,mdlm")
    parser.add_argument("--out", default="")
    parser.add_argument("--latin-names", action="store_true", help="the shared-string control")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or f"runs/cs-knowledge-{args.budget}{'-latin' if args.latin_names else ''}"
    cfg = KnowledgeConfig(
        out=out,
        budget=args.budget,
        seeds=seeds,
        variants=tuple(v for v in args.variants.split(",") if v),
        latin_names=args.latin_names,
    )
    start = time.perf_counter()
    paths = run_knowledge(cfg)
    seconds = time.perf_counter() - start
    print(Path(paths["report"]).read_text())
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"wall {seconds:.0f} s")  # fmt: skip
    gain = json.loads(Path(paths["summary"]).read_text())["xling_cloze_gain"]
    value = gain["value"]
    print(f"xling_cloze_gain={'nan' if value is None else f'{value:.4f}'}")


if __name__ == "__main__":
    run_or_exit(main)
