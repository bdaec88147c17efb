"""Score the aligner on XQuAD: the same 240 paragraphs of 48 articles in every language.

    .venv/bin/python bench/align.py --xquad ../shared/corpus/xquad --langs en,es,de,ru,zh,ar

Per article and language, the paragraphs are shuffled and a share of them dropped (independently per
language, seeded), then every language pair is aligned with pipeline.align. A predicted paragraph pair is
right when both sides are the same XQuAD paragraph; a paragraph dropped on one side must stay unaligned.
Shuffling destroys order, so the aligner runs without its position prior. `--pool` aligns all 240
paragraphs as one concept (no article boundaries: much harder). Prints precision / recall / F1 per pair
and, last, `align_f1=<macro F1 over pairs>`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.align import AlignConfig, align_concept  # noqa: E402
from pipeline.sections import numbers_in, years_in  # noqa: E402
from wikimix.errors import WikimixError, run_or_exit  # noqa: E402


def load_xquad(directory: Path, lang: str) -> list[tuple[str, list[str]]]:
    path = directory / f"xquad.{lang}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise WikimixError(f"cannot read XQuAD file {path}: {exc}") from None
    return [(a["title"], [p["context"] for p in a["paragraphs"]]) for a in data]


def section_rows(lang: str, concept: str, page_id: int, paragraphs: list[tuple[int, str]]) -> list[dict]:
    """`sections` rows of one article: one lead section whose paragraphs are in the given order."""
    rows = []
    for order, (_, text) in enumerate(paragraphs):
        numbers = numbers_in(text)
        rows.append(
            {
                "wiki": f"xquad-{lang}",
                "lang": lang,
                "page_id": page_id,
                "rev_id": 1,
                "concept": concept,
                "title": concept,
                "section_idx": 0,
                "paragraph_idx": order,
                "level": 1,
                "heading": "",
                "parent": -1,
                "text": text,
                "links": [],
                "numbers": numbers,
                "years": years_in(numbers),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, required=True, help="directory with xquad.<lang>.json")
    parser.add_argument("--langs", default="en,es,de,ru,zh,ar")
    parser.add_argument("--drop", type=float, default=0.2, help="share of paragraphs dropped per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", action="store_true", help="align all paragraphs as one concept")
    parser.add_argument("--articles", type=int, default=0, help="use only the first N articles (0: all)")
    parser.add_argument(
        "--encoder-backend",
        default="e5",
        choices=["e5", "minilm", "none"],
        help="embedding evidence (none: anchors only)",
    )
    parser.add_argument("--threads", type=int, default=2, help="encoder threads")
    args = parser.parse_args(argv)
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if len(langs) < 2:
        raise WikimixError("--langs needs at least two languages")
    data = {lang: load_xquad(args.xquad, lang) for lang in langs}
    n_articles = min(len(v) for v in data.values())
    if args.articles:
        n_articles = min(n_articles, args.articles)
    rng = random.Random(args.seed)
    cfg = AlignConfig(use_position=False)
    encoder = None
    if args.encoder_backend != "none":
        from pipeline.encoder import Encoder, EncoderConfig

        encoder = Encoder(EncoderConfig(backend=args.encoder_backend, threads=args.threads))

    # Shuffle and drop per (article, language); remember the true paragraph index of every kept unit.
    groups: dict[str, list[dict]] = {}
    truth: dict[str, tuple[int, int]] = {}  # unit key -> (article, paragraph)
    next_idx: dict[tuple[str, str], int] = {}  # (concept, lang) -> next paragraph_idx (pooled articles)
    for i in range(n_articles):
        concept = "pool" if args.pool else data[langs[0]][i][0]
        for lang in langs:
            paragraphs = list(enumerate(data[lang][i][1]))
            kept = [p for p in paragraphs if rng.random() >= args.drop]
            rng.shuffle(kept)
            page_id = 1 if args.pool else i + 1
            rows = section_rows(lang, concept, page_id, kept)
            for row, (j, _) in zip(rows, kept, strict=True):
                row["paragraph_idx"] = next_idx.get((concept, lang), 0)
                next_idx[(concept, lang)] = row["paragraph_idx"] + 1
                truth[f"{row['wiki']}:{page_id}:1:0:{row['paragraph_idx']}"] = (i, j)
            groups.setdefault(concept, []).extend(rows)

    t0 = time.perf_counter()
    predicted: dict[tuple[str, str], set[tuple[str, str]]] = {
        pair: set() for pair in itertools.combinations(langs, 2)
    }
    method_of: dict[tuple[str, str], str] = {}
    for rows in groups.values():
        for r in align_concept(rows, cfg=cfg, encoder=encoder):
            if r["unit"] == "paragraph" and r["key_b"]:
                method_of[(r["key_a"], r["key_b"])] = method_of[(r["key_b"], r["key_a"])] = json.loads(
                    r["evidence"]
                )["method"]
                if (r["lang_a"], r["lang_b"]) in predicted:
                    predicted[(r["lang_a"], r["lang_b"])].add((r["key_a"], r["key_b"]))
                else:  # the aligner orders a pair its own way
                    predicted[(r["lang_b"], r["lang_a"])].add((r["key_b"], r["key_a"]))
    seconds = time.perf_counter() - t0

    by_lang: dict[str, dict[tuple[int, int], str]] = {lang: {} for lang in langs}
    for key, ij in truth.items():
        by_lang[key.split(":", 1)[0].removeprefix("xquad-")][ij] = key
    f1s = []
    print(f"{'pair':8} {'gold':>5} {'pred':>5} {'P':>6} {'R':>6} {'F1':>6}")
    for a, b in itertools.combinations(langs, 2):
        gold = {(by_lang[a][ij], by_lang[b][ij]) for ij in by_lang[a].keys() & by_lang[b].keys()}
        pred = predicted[(a, b)]
        correct = len(gold & pred)
        p = correct / len(pred) if pred else 0.0
        r = correct / len(gold) if gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        print(f"{a}-{b:5} {len(gold):5d} {len(pred):5d} {p:6.3f} {r:6.3f} {f1:6.3f}")
    macro = sum(f1s) / len(f1s)
    by_method: dict[str, list[int]] = {}
    for pair in itertools.combinations(langs, 2):
        for ka, kb in predicted[pair]:
            ok = truth[ka] == truth[kb]
            by_method.setdefault(method_of[(ka, kb)], []).append(ok)
    print(
        "precision by method: "
        + ", ".join(f"{m}={sum(v) / len(v):.3f} (n={len(v)})" for m, v in sorted(by_method.items()))
    )
    print(
        f"articles={n_articles} drop={args.drop} pool={args.pool} seconds={seconds:.1f}"
        f" encoder={encoder.name if encoder else 'none'}"
    )
    print(f"align_f1={macro:.4f}")
    return macro


if __name__ == "__main__":
    run_or_exit(main)
