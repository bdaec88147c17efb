"""Language ID on SIB-200: per-variety accuracy of heliport, lid.176, CLD2 and the decision (pipeline.lid).

    .venv/bin/python bench/lid.py --sib200 ../shared/corpus/sib200                # test split, every variety
    .venv/bin/python bench/lid.py --sib200 DIR --split dev --langs hrv_Latn,yue_Hant

A sentence counts as correct when the label is its variety's language or only its macrolanguage
(pipeline.langcodes.match: `arb` vs `ara`, `hrv` vs `hbs`, `yue` vs `cmn`); the `macro` column says how
many were right only that way. Per variety: the decision's accuracy, its exact/macro shares, heliport's,
lid.176's and CLD2's own accuracies, and the most frequent wrong label. `--split dev` is the split the
decision's CLD2 score threshold was chosen on; the test split reports it. Last line
`lid_varieties_ge_095=<varieties whose decision accuracy is >= 0.95>/<varieties>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.langcodes import match  # noqa: E402
from pipeline.lid import IDENTIFIER_VERSION, identify  # noqa: E402
from pipeline.sib200 import SPLITS, language_dirs, load_sib200  # noqa: E402
from wikimix.errors import WikimixError, run_or_exit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sib200", required=True, help="SIB-200 directory (<lang_Script>/{train,dev,test}.tsv)")
    ap.add_argument("--langs", help="comma-separated varieties (default: every one)")
    ap.add_argument("--split", default="test", choices=SPLITS)
    ap.add_argument("--threshold", type=float, default=0.95, help="accuracy a variety must reach")
    args = ap.parse_args()

    known = language_dirs(args.sib200)
    langs = args.langs.split(",") if args.langs else known
    missing = sorted(set(langs) - set(known))
    if missing:
        raise WikimixError(f"SIB-200 has no variety {', '.join(missing)} under {args.sib200}")
    sentences = load_sib200(args.sib200, langs)
    print(f"identifier={IDENTIFIER_VERSION} split={args.split}")
    print("variety\tn\tacc\texact\tmacro\theliport\tlid176\tcld2\ttop_wrong")
    t0, n_total, passed = time.perf_counter(), 0, []
    for lang in langs:
        texts = [
            e["texts"][lang] for e in sentences.values() if e["split"] == args.split and lang in e["texts"]
        ]
        if not texts:
            raise WikimixError(f"{lang}: no sentences in the {args.split} split")
        n_total += len(texts)
        ids = identify(texts)
        kinds = Counter(match(lang, i.lang) for i in ids)
        acc = (kinds["exact"] + kinds["macro"]) / len(texts)
        heli = sum(match(lang, i.heliport) is not None for i in ids) / len(texts)
        lid176 = sum(match(lang, i.lid176) is not None for i in ids) / len(texts)
        cld2 = sum(match(lang, i.cld2) is not None for i in ids) / len(texts)
        wrong = Counter(i.lang for i in ids if match(lang, i.lang) is None).most_common(1)
        top_wrong = f"{wrong[0][0]}:{wrong[0][1]}" if wrong else "-"
        print(
            f"{lang}\t{len(texts)}\t{acc:.3f}\t{kinds['exact'] / len(texts):.3f}\t{kinds['macro'] / len(texts):.3f}"
            f"\t{heli:.3f}\t{lid176:.3f}\t{cld2:.3f}\t{top_wrong}",
            flush=True,
        )
        if acc >= args.threshold:
            passed.append(lang)
    failed = [v for v in langs if v not in passed]
    seconds = time.perf_counter() - t0
    print(f"sentences={n_total} seconds={seconds:.1f} sentences/s={n_total / seconds:.0f}")
    print(f"below_{args.threshold:g} ({len(failed)}): {' '.join(failed)}")
    print(f"lid_varieties_ge_{str(args.threshold).replace('0.', '0')}={len(passed)}/{len(langs)}")


if __name__ == "__main__":
    run_or_exit(main)
