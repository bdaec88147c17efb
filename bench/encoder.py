"""Cross-lingual retrieval on SIB-200: for 100 sentences of a variety, is the nearest pivot sentence its translation?

    .venv/bin/python bench/encoder.py --sib200 ../shared/corpus/sib200                 # every variety, e5
    .venv/bin/python bench/encoder.py --sib200 DIR --langs deu_Latn,jpn_Jpan --backend minilm

The sentences are the first `--n` of the test split (index_id order) that the variety and the pivot both
have. P@1 is the share whose nearest pivot sentence (cosine) is the translation. A variety counts as not
covered by the encoder's tokenizer when more than `--max-uncovered` of its characters have no piece of
their own (they become [UNK]). Prints one line per variety, the uncovered varieties, the mean over the
covered ones (`xling_p_at_1_covered=`), and last `xling_p_at_1=<mean over all>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pipeline.encoder import BACKENDS, DEFAULT_BACKEND, Encoder, EncoderConfig  # noqa: E402
from pipeline.sib200 import language_dirs, load_sib200  # noqa: E402
from wikimix.errors import WikimixError, run_or_exit  # noqa: E402


def retrieval_p_at_1(queries: np.ndarray, pivots: np.ndarray) -> float:
    """Share of rows i whose most similar pivot row is row i (unit-norm embeddings)."""
    nearest = np.argmax(queries @ pivots.T, axis=1)
    return float(np.mean(nearest == np.arange(len(queries))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sib200", required=True, help="SIB-200 directory (<lang_Script>/{train,dev,test}.tsv)")
    ap.add_argument("--langs", help="comma-separated varieties (default: every one but the pivot)")
    ap.add_argument("--pivot", default="eng_Latn")
    ap.add_argument("--n", type=int, default=100, help="sentences per variety")
    ap.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS)
    ap.add_argument("--encoder", help="model path for the backend (default: the packaged one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-uncovered", type=float, default=0.02, help="uncovered-character share limit")
    args = ap.parse_args()
    if args.n < 2:
        raise WikimixError(f"--n must be >= 2, got {args.n}")

    known = language_dirs(args.sib200)
    langs = args.langs.split(",") if args.langs else [v for v in known if v != args.pivot]
    missing = sorted(set(langs + [args.pivot]) - set(known))
    if missing:
        raise WikimixError(f"SIB-200 has no variety {', '.join(missing)} under {args.sib200}")
    sentences = load_sib200(args.sib200, sorted(set(langs + [args.pivot])))
    test_ids = sorted(i for i, e in sentences.items() if e["split"] == "test" and args.pivot in e["texts"])

    encoder = Encoder(EncoderConfig(backend=args.backend, path=args.encoder, threads=args.threads))
    print(f"encoder={encoder.name} hash={encoder.hash} pivot={args.pivot} n={args.n}")
    t0 = time.perf_counter()
    pivot_cache: dict[tuple[int, ...], np.ndarray] = {}  # most varieties share the same first n ids
    scores: dict[str, float] = {}
    uncovered: dict[str, float] = {}
    for lang in langs:
        ids = [i for i in test_ids if lang in sentences[i]["texts"]][: args.n]
        if len(ids) < args.n:
            raise WikimixError(f"{lang}: only {len(ids)} test sentences shared with {args.pivot}")
        texts = [sentences[i]["texts"][lang] for i in ids]
        key = tuple(ids)
        if key not in pivot_cache:
            pivot_cache[key] = encoder.encode([sentences[i]["texts"][args.pivot] for i in ids])
        pivot = pivot_cache[key]
        scores[lang] = retrieval_p_at_1(encoder.encode(texts), pivot)
        uncovered[lang] = encoder.uncovered_rate(texts)
        print(f"{lang}\tp_at_1={scores[lang]:.2f}\tuncovered_chars={uncovered[lang]:.3f}", flush=True)
    not_covered = sorted(v for v in langs if uncovered[v] > args.max_uncovered)
    covered = [v for v in langs if v not in not_covered]
    print(f"seconds={time.perf_counter() - t0:.0f} varieties={len(langs)}")
    print(
        f"not_covered ({len(not_covered)}, > {args.max_uncovered:g} uncovered chars): {' '.join(not_covered)}"
    )
    if covered:
        print(f"covered={len(covered)} xling_p_at_1_covered={np.mean([scores[v] for v in covered]):.3f}")
    print(f"xling_p_at_1={np.mean(list(scores.values())):.3f}")


if __name__ == "__main__":
    run_or_exit(main)
