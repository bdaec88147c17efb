"""Sentence splitting measured on SIB-200: consecutive sentences joined into paragraphs, boundaries scored.

    .venv/bin/python bench/sentences.py --sib200 ../shared/corpus/sib200              # every variety
    .venv/bin/python bench/sentences.py --sib200 DIR --langs tha_Thai,hye_Armn --per-paragraph 3

Consecutive SIB-200 index_ids come from the same source article: each run of `--per-paragraph`
consecutive segments (all splits; only segments that are one sentence in the pivot, see
`single_sentence_ids`) of a variety is joined into one paragraph, with a space, or with
nothing in scripts written without spaces between sentences (Jpan, Hans, Hant). The gold boundaries are the
sentence starts inside each paragraph; a splitter's boundaries are the starts of its spans after the first.
Per variety and splitter: precision, recall and F1 of boundaries (micro over the paragraphs). Splitters:
`project` (pipeline.sentences rules alone), `sentencex` (Wikimedia's segmenter) and `pipeline`
(pipeline.sentences.split_sentences as shipped: the better of the two per script). Last line
`split_f1=<macro F1 of the pipeline splitter over the varieties>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import regex  # noqa: E402

from pipeline.langcodes import script  # noqa: E402
from pipeline.sentences import NO_SPACE_SCRIPTS, rule_spans, sentencex_spans, split_sentences  # noqa: E402
from pipeline.sib200 import language_dirs, load_sib200  # noqa: E402
from wikimix.errors import WikimixError, run_or_exit  # noqa: E402

SPLITTERS = {"project": rule_spans, "sentencex": sentencex_spans, "pipeline": split_sentences}


def single_sentence_ids(sentences: dict[int, dict], pivot: str) -> set[int]:
    """index_ids whose pivot text both splitters read as one sentence.

    A FLORES "sentence" is a translation segment and is sometimes two sentences ("... today. He was ...");
    their inner boundary is not in the gold, so a right splitter would be charged for it. The selection is
    made on the pivot (English), not on the variety being scored, and by both splitters agreeing.
    """
    return {
        i
        for i, e in sentences.items()
        if pivot in e["texts"]
        and len(rule_spans(e["texts"][pivot], pivot)) == 1
        and len(sentencex_spans(e["texts"][pivot], pivot)) == 1
    }


def paragraphs(
    sentences: dict[int, dict], lang: str, per_paragraph: int, keep: set[int]
) -> list[tuple[str, set[int], set[int]]]:
    """(paragraph text, gold boundaries, unmarked boundaries) for runs of consecutive kept index_ids.

    In a variety that ends most segments with punctuation, a boundary after a segment without it (a
    translator's dropped full stop: "... ga cent ɖeka ene Nugɔmekula ...") is `unmarked`: no rule can see
    it, and it is scored neither as a miss nor, when a splitter finds it, as a false alarm. Varieties that
    mostly write none (Thai) keep every boundary.
    """
    joiner = "" if script(lang) in NO_SPACE_SCRIPTS else " "
    ids = sorted(i for i, e in sentences.items() if lang in e["texts"] and i in keep)
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][-1] + 1 and len(runs[-1]) < per_paragraph:
            runs[-1].append(i)
        else:
            runs.append([i])
    punctuates = sum(marked(sentences[i]["texts"][lang]) for i in ids) > len(ids) / 2
    out = []
    for run in runs:
        if len(run) < 2:
            continue
        text, gold, unmarked = "", set(), set()
        for k, i in enumerate(run):
            if k:
                text += joiner
                after_marked = marked(sentences[run[k - 1]]["texts"][lang]) or not punctuates
                (gold if after_marked else unmarked).add(len(text))
            text += sentences[i]["texts"][lang]
        out.append((text, gold, unmarked))
    return out


def score(spans: list[tuple[int, int]], gold: set[int], unmarked: set[int]) -> tuple[int, int, int]:
    """(true positives, predicted, gold) boundaries of one paragraph; unmarked boundaries count nowhere."""
    predicted = {a for a, _ in spans[1:]} - unmarked
    return len(predicted & gold), len(predicted), len(gold)


_TERMINATOR = regex.compile(r"[\p{Sentence_Terminal}\u0f0d-\u0f12][\p{Pf}\p{Pe}\p{Pi}\"'\u200b\s]*$")


def marked(sentence: str) -> bool:
    """Whether a segment ends in sentence-final punctuation (Unicode Sentence_Terminal, Tibetan shad)."""
    return bool(_TERMINATOR.search(sentence))


def f1(tp: int, pred: int, gold: int) -> tuple[float, float, float]:
    p = tp / pred if pred else 1.0
    r = tp / gold if gold else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sib200", required=True, help="SIB-200 directory (<lang_Script>/{train,dev,test}.tsv)")
    ap.add_argument("--langs", help="comma-separated varieties (default: every one)")
    ap.add_argument("--per-paragraph", type=int, default=5, help="sentences joined per paragraph")
    ap.add_argument("--pivot", default="eng_Latn", help="variety whose single sentences are kept")
    ap.add_argument("--min-f1", type=float, default=0.85, help="varieties below this are listed")
    args = ap.parse_args()
    if args.per_paragraph < 2:
        raise WikimixError(f"--per-paragraph must be >= 2, got {args.per_paragraph}")
    known = language_dirs(args.sib200)
    langs = args.langs.split(",") if args.langs else known
    missing = sorted(set(langs) - set(known))
    if missing:
        raise WikimixError(f"SIB-200 has no variety {', '.join(missing)} under {args.sib200}")
    if args.pivot not in known:
        raise WikimixError(f"SIB-200 has no pivot variety {args.pivot} under {args.sib200}")
    sentences = load_sib200(args.sib200, sorted(set(langs) | {args.pivot}))
    keep = single_sentence_ids(sentences, args.pivot)
    print(f"segments={len(sentences)} single_sentence_in_{args.pivot}={len(keep)}")

    t0 = time.perf_counter()
    macro: dict[str, list[float]] = defaultdict(list)
    by_script: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    low = []
    print("variety\tparagraphs\tunmarked\t" + "\t".join(f"{s}_p\t{s}_r\t{s}_f1" for s in SPLITTERS))
    for lang in langs:
        paras = paragraphs(sentences, lang, args.per_paragraph, keep)
        if not paras:
            raise WikimixError(f"{lang}: no run of {args.per_paragraph} consecutive sentences")
        cells = []
        for name, splitter in SPLITTERS.items():
            totals = [0, 0, 0]
            for text, gold, unmarked in paras:
                for k, v in enumerate(score(splitter(text, lang), gold, unmarked)):
                    totals[k] += v
            p, r, f = f1(*totals)
            macro[name].append(f)
            by_script[script(lang) or "?"][name].append(f)
            cells.append(f"{p:.3f}\t{r:.3f}\t{f:.3f}")
            if name == "pipeline" and f < args.min_f1:
                low.append(f"{lang}:{f:.2f}")
        n_unmarked = sum(len(u) for _, _, u in paras)
        print(f"{lang}\t{len(paras)}\t{n_unmarked}\t" + "\t".join(cells), flush=True)
    print(f"seconds={time.perf_counter() - t0:.1f} varieties={len(langs)}")
    for scr in sorted(by_script):
        means = "  ".join(f"{n}={sum(v) / len(v):.3f}" for n, v in by_script[scr].items())
        print(f"script {scr} ({len(by_script[scr]['pipeline'])}): {means}")
    for name in SPLITTERS:
        print(f"macro_f1 {name}={sum(macro[name]) / len(macro[name]):.4f}")
    print(f"below_{args.min_f1:g} ({len(low)}): {' '.join(low)}")
    print(f"split_f1={sum(macro['pipeline']) / len(macro['pipeline']):.4f}")


if __name__ == "__main__":
    run_or_exit(main)
