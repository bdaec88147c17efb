"""Significance rankers vs the encoder bound, in one run on the same documents.

    .venv/bin/python bench/significance.py --threads 2                     # XQuAD paragraphs, en/de/ru/zh
    .venv/bin/python bench/significance.py --docs demo-docs --n-docs 16    # a stored documents version

The bound: the loo ranker plans its exact encoder inputs (per window: the window, then the window minus
each token); the bench encodes exactly those inputs with the same encoder and batch size, with nothing
else around it. Then loo runs end to end (tokenise, window, encode, score, rank). The timings run side
by side (bound, loo, greedy; then loo, greedy, bound; ...) and the best wall and CPU seconds of each are
kept, so contention from other work on a shared machine hits every side alike. Greedy and stat run on
the same documents. Prints tokens/s per ranker, greedy's cost relative to loo (wall and CPU), and last
`loo_vs_encoder_bound=<bound seconds / loo seconds>` (target >= 0.8; greedy target <= 3x loo).

    .venv/bin/python bench/significance.py --multilingual --sib200 ../shared/corpus/sib200

--multilingual: does the order mean something in every language? The same `--n-docs` SIB-200
passages (`--per-doc` consecutive sentences) in English and the five dump languages (hy, ja, mr, uk, vi)
are ranked by loo. Per language: the enrichment of its 30 most frequent word types (case-folded) among the
first quarter removed (share there / share overall of the ranker's tokens that lie in one of those words;
> 1 = frequent, function-like words go first); the 30 types are counted over all 1,004 SIB-200 sentences
of the language. Words are the ranker's tokens, except in Japanese, written without spaces, where the
ranker's tokens are single characters: there words come from TinySegmenter (`word_spans`), since the most
frequent characters include pieces of content words (the katakana ー ン ス ル ト イ ラ of loanwords). Across
translations: anchors are tokens written identically in the English passage and its translation (numbers,
Latin-script names); the Spearman correlation of their relative removal ranks (rank / tokens) in English
and in the other language, per language and pooled. Last line `min_enrichment=<lowest over languages>`.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.encoder import BACKENDS, DEFAULT_BACKEND, Encoder, EncoderConfig  # noqa: E402
from pipeline.significance import GreedyRanker, LooRanker, RankerConfig, StatRanker, tokenize  # noqa: E402
from wikimix.errors import WikimixError, run_or_exit  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("WIKIMIX_SHARED", REPO.parent / "shared"))


def xquad_paragraphs(langs: list[str], n_docs: int) -> list[str]:
    """n_docs XQuAD paragraphs, taking languages in turn (paragraph k in language k % len(langs))."""
    shared = SHARED
    per_lang = {}
    for lang in langs:
        path = shared / "corpus" / "xquad" / f"xquad.{lang}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))["data"]
        except (OSError, ValueError, KeyError) as exc:
            raise WikimixError(f"cannot read XQuAD file {path}: {exc}") from None
        per_lang[lang] = [p["context"] for a in data for p in a["paragraphs"]]
    return [per_lang[langs[k % len(langs)]][k * 7 % 240] for k in range(n_docs)]


def stored_documents(spec: str, root: str | None, n_docs: int) -> list[str]:
    from storage.store import open_version

    dataset, _, version = spec.partition("@")
    ref = open_version(root, dataset, version or "latest")
    texts = []
    for batch in ref.iter_batches("documents", batch_size=n_docs, columns=["text"]):
        texts.extend(batch.column("text").to_pylist())
        if len(texts) >= n_docs:
            break
    return texts[:n_docs]


MULTILINGUAL = ["eng_Latn", "hye_Armn", "jpn_Jpan", "mar_Deva", "ukr_Cyrl", "vie_Latn"]


def sib200_passages(
    directory: str, langs: list[str], n_docs: int, per_doc: int
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """n_docs passages of per_doc consecutive sentences (the same index_ids in every language), and
    every SIB-200 sentence of each language (to count its most frequent word types on)."""
    from pipeline.sib200 import load_sib200

    sentences = load_sib200(directory, langs)
    ids = sorted(i for i, e in sentences.items() if all(v in e["texts"] for v in langs))
    runs = [ids[k : k + per_doc] for k in range(0, len(ids) - per_doc + 1, per_doc)]
    runs = [r for r in runs if r[-1] - r[0] == per_doc - 1][:n_docs]  # consecutive: one source article
    if len(runs) < n_docs:
        raise WikimixError(f"SIB-200 has only {len(runs)} runs of {per_doc} consecutive sentences")
    joiner = {v: "" if v.endswith(("_Jpan", "_Hans", "_Hant")) else " " for v in langs}
    passages = {v: [joiner[v].join(sentences[i]["texts"][v] for i in run) for run in runs] for v in langs}
    return passages, {v: [e["texts"][v] for e in sentences.values() if v in e["texts"]] for v in langs}


def word_spans(text: str, lang: str) -> list[tuple[int, int]]:
    """Character spans of the words of `text`: the ranker's tokens, or TinySegmenter's words for Japanese
    (a compact segmenter trained on newspaper text; pure Python, its model inside the package)."""
    if not lang.startswith("jpn"):
        return tokenize(text)
    try:
        from tinysegmenter import TinySegmenter
    except ImportError:
        raise WikimixError(
            "package tinysegmenter is not installed (pip install tinysegmenter==0.4)"
        ) from None
    spans, pos = [], 0
    for word in TinySegmenter().tokenize(text):
        start = text.find(word, pos)
        if start < 0:  # it returned text that is not in the input: the rest stays one word
            break
        pos = start + len(word)
        if not word.isspace():
            spans.append((start, pos))
    if pos < len(text) and text[pos:].strip():
        spans.append((pos, len(text)))
    return spans


def frequent_word_share(
    texts: list[str], ranked: list[list[dict]], lang: str, frequent: set[str]
) -> tuple[float, float]:
    """(share of all ranked tokens, share of the first quarter removed) that lie in a `frequent` word."""
    hits, early = [], []
    for text, spans in zip(texts, ranked, strict=True):
        words = word_spans(text, lang)
        starts = [a for a, _ in words]
        quarter = max(1, len(spans) // 4)
        for s in spans:
            k = bisect.bisect_right(starts, s["start"]) - 1
            hit = (
                k >= 0 and s["start"] < words[k][1] and text[words[k][0] : words[k][1]].casefold() in frequent
            )
            hits.append(hit)
            if s["removal_rank"] < quarter:
                early.append(hit)
    return sum(hits) / len(hits), sum(early) / len(early)


def multilingual(args) -> None:
    from scipy.stats import spearmanr

    encoder = Encoder(EncoderConfig(backend=args.backend, path=args.encoder, threads=args.threads))
    passages, corpus = sib200_passages(args.sib200, MULTILINGUAL, args.n_docs, args.per_doc)
    loo = LooRanker(encoder, RankerConfig(window_wordpieces=args.window))
    print(f"encoder={encoder.name} hash={encoder.hash} passages={args.n_docs}x{args.per_doc} sentences")
    t0 = time.perf_counter()
    ranked = {v: loo.rank(texts) for v, texts in passages.items()}
    print(f"loo seconds={time.perf_counter() - t0:.0f}")
    relative: dict[str, list[dict[str, list[float]]]] = {}  # per language, per passage: token -> rel ranks
    enrichments = {}
    for v, texts in passages.items():
        tokens, per_doc = [], []
        for text, spans in zip(texts, ranked[v], strict=True):
            words = [text[s["start"] : s["end"]].casefold() for s in spans]
            tokens += words
            rel: dict[str, list[float]] = {}
            for w, s in zip(words, spans, strict=True):
                rel.setdefault(w, []).append(s["removal_rank"] / max(1, len(spans) - 1))
            per_doc.append(rel)
        relative[v] = per_doc
        counts = Counter(t[a:b].casefold() for t in corpus[v] for a, b in word_spans(t, v))
        # Words, not punctuation: any letter or digit (str.isalnum is False for "आहे": vowel signs are marks).
        words = Counter({w: c for w, c in counts.items() if any(ch.isalnum() for ch in w)})
        frequent = {w for w, _ in words.most_common(30)}
        overall, early = frequent_word_share(texts, ranked[v], v, frequent)
        enrichments[v] = early / overall if overall else 0.0
        print(
            f"{v}\ttokens={len(tokens)}\tfrequent30_share={overall:.3f}\tfirst_quarter_share={early:.3f}"
            f"\tenrichment={enrichments[v]:.2f}"
        )
    pooled_en, pooled_xx = [], []
    for v in MULTILINGUAL[1:]:
        en_ranks, xx_ranks = [], []
        for en_doc, xx_doc in zip(relative[MULTILINGUAL[0]], relative[v], strict=True):
            for w in en_doc.keys() & xx_doc.keys():
                if len(en_doc[w]) == 1 and len(xx_doc[w]) == 1 and any(c.isalnum() for c in w):
                    en_ranks.append(en_doc[w][0])
                    xx_ranks.append(xx_doc[w][0])
        pooled_en += en_ranks
        pooled_xx += xx_ranks
        rho = spearmanr(en_ranks, xx_ranks).statistic if len(en_ranks) > 2 else float("nan")
        print(f"anchors eng_Latn~{v}: n={len(en_ranks)} spearman={rho:.3f}")
    rho = spearmanr(pooled_en, pooled_xx).statistic
    print(f"anchor_rank_spearman={rho:.3f} (pooled, n={len(pooled_en)})")
    print(f"min_enrichment={min(enrichments.values()):.2f}")


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", help="documents dataset[@version] (default: XQuAD paragraphs)")
    ap.add_argument("--root", help="data root for --docs (default $WIKIMIX_DATA or ./data)")
    ap.add_argument("--langs", default="en,de,ru,zh", help="XQuAD languages, taken in turn")
    ap.add_argument("--n-docs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--window", type=int, default=RankerConfig.window_wordpieces, help="window wordpieces")
    ap.add_argument("--greedy-fraction", type=float, default=RankerConfig.greedy_fraction)
    ap.add_argument("--repeats", type=int, default=3, help="alternating bound/loo timings; best of each")
    ap.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS, help="encoder backend")
    ap.add_argument("--encoder", help="model for the backend (default: the packaged one)")
    ap.add_argument("--multilingual", action="store_true", help="per-language checks on SIB-200 (see above)")
    ap.add_argument(
        "--sib200", default=str(SHARED / "corpus" / "sib200"), help="SIB-200 dir (--multilingual)"
    )
    ap.add_argument("--per-doc", type=int, default=3, help="sentences per SIB-200 passage (--multilingual)")
    args = ap.parse_args()
    if args.n_docs < 1:
        raise WikimixError(f"--n-docs must be >= 1, got {args.n_docs}")
    if args.multilingual:
        multilingual(args)
        return

    if args.docs:
        texts = stored_documents(args.docs, args.root, args.n_docs)
    else:
        texts = xquad_paragraphs(args.langs.split(","), args.n_docs)
    encoder = Encoder(
        EncoderConfig(
            backend=args.backend, path=args.encoder, batch_size=args.batch_size, threads=args.threads
        )
    )
    config = RankerConfig(window_wordpieces=args.window, greedy_fraction=args.greedy_fraction)
    loo, greedy = LooRanker(encoder, config), GreedyRanker(encoder, config)
    n_tokens = sum(len(tokenize(t)) for t in texts)

    plan = loo.plan(texts)
    wordpieces = encoder.count_wordpieces(plan.inputs)
    print(f"encoder={encoder.name} hash={encoder.hash} threads={args.threads} batch={args.batch_size}")
    print(
        f"docs={len(texts)} tokens={n_tokens} windows={len(plan.windows)} loo_inputs={len(plan.inputs)}"
        f" mean_wordpieces={sum(wordpieces) / max(1, len(wordpieces)):.1f}"
    )
    encoder.encode(plan.inputs[: args.batch_size])  # warm-up: first call pays one-off allocation

    best = {k: [float("inf"), float("inf")] for k in ("bound", "loo", "greedy")}  # wall, cpu
    calls = {
        "bound": lambda: encoder.encode(plan.inputs),
        "loo": lambda: loo.rank(texts),
        "greedy": lambda: greedy.rank(texts),
    }
    names = list(calls)
    for r in range(args.repeats):
        greedy.inputs_encoded = 0
        for name in names[r % 3 :] + names[: r % 3]:  # side by side; who goes first rotates
            wall, cpu = timed(calls[name])
            best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
    (bound_s, bound_cpu), (loo_s, loo_cpu), (greedy_s, greedy_cpu) = (
        best["bound"],
        best["loo"],
        best["greedy"],
    )
    print(
        f"encoder_bound: inputs={len(plan.inputs)} seconds={bound_s:.2f} cpu_s={bound_cpu:.2f}"
        f" sentences/s={len(plan.inputs) / bound_s:.1f} tokens/s={n_tokens / bound_s:.1f}"
    )
    plan_s = min(timed(lambda: loo.plan(texts))[0] for _ in range(args.repeats))
    print(
        f"loo: seconds={loo_s:.2f} cpu_s={loo_cpu:.2f} tokens/s={n_tokens / loo_s:.1f}"
        f" (of which plan: tokenise + window + build inputs {plan_s:.3f}s)"
    )
    print(
        f"greedy: seconds={greedy_s:.2f} cpu_s={greedy_cpu:.2f} tokens/s={n_tokens / greedy_s:.1f}"
        f" inputs={greedy.inputs_encoded} (re-score after removing {config.greedy_fraction:g} of the"
        " remaining tokens per round)"
    )
    stat_s, _ = timed(lambda: StatRanker.fit(texts).rank(texts))
    print(f"stat: seconds={stat_s:.4f} tokens/s={n_tokens / stat_s:.0f} (fit + rank)")
    # CPU seconds: less sensitive than wall time to other processes sharing the cores.
    print(f"greedy_vs_loo_cost={greedy_s / loo_s:.2f} (cpu {greedy_cpu / loo_cpu:.2f})")
    print(f"loo_vs_encoder_bound_cpu={bound_cpu / loo_cpu:.3f}")
    print(f"loo_vs_encoder_bound={bound_s / loo_s:.3f}")


if __name__ == "__main__":
    run_or_exit(main)
