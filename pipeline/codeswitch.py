"""Extreme code-switched documents from aligned articles: switch language every sentence or clause.

    wikimix codeswitch demo-align --policy uniform --seed 0          # CLI: writes demo-docs
    from pipeline.codeswitch import BuildConfig, build_documents
    build_documents(wiki_ref, align_ref, writer, BuildConfig(policy="weighted", weights={"uk": 2}))

A concept's sentences, in every language, become a sequence of *slots* ordered by where they sit in the
article: sentences aligned across languages share one slot (any of their languages may render it), and
unaligned sentences are slots of their own, placed by their position in their (aligned) section, so the
languages interleave. Walking the slots, each one is rendered in a language chosen by the policy among
its candidates, never the language of the segment before: a slot whose only language would repeat is
skipped. Granularity:
- sentence: one segment per slot;
- clause: inside a slot with several languages, clauses chain across them (clause 1 in uk, the clause
  that continues it in vi, the next in ja ...), following relative character position;
- word: inside a slot with several languages, spans cut at the anchors the sentences share (numbers,
  names) chain across them: 'In 1905' (en) ', Albert Einstein' (vi) 'publicó ...' (es). Aligned spans,
  not a dictionary: a sentence without shared anchors stays whole.
Policies: `uniform` (every allowed language alike), `weighted` (`weights` per language), `curriculum`
(the staged code-switching curriculum of Yoo et al. 2024, token -> sentence -> monolingual: documents for
each stage word -> sentence -> monolingual, policy 'curriculum:<stage>'). Until `min_langs` languages are used, unused ones are preferred; a document
with fewer languages is dropped and counted. Same inputs + seed = same documents. Every segment keeps its
intended language, fastText LID language and probability, character span and provenance; every document
its code-switching metrics.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
import unicodedata
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pipeline import csmetrics
from pipeline.lid import agrees, default_identifier, lid_code
from pipeline.sentences import split_clauses, split_sentences
from wikimix.errors import ConfigError, WikimixError
from wikimix.guards import require_rows

POLICIES = ("uniform", "weighted", "curriculum")
GRANULARITIES = ("sentence", "clause", "word")
CURRICULUM_STAGES = ("word", "sentence", "monolingual")  # token -> sentence -> monolingual (Yoo et al. 2024)
# Aligned-span cut points: numbers (any script's digits) and capitalised Latin-script words (names).
SPAN_ANCHOR = re.compile(r"\d+(?:[.,\u00a0\u202f]\d+)*|[A-Z\u00c0-\u00de][A-Za-z\u00c0-\u024f'\-]+")
CLAUSE_DRIFT = 0.12  # how far (share of the sentence) a clause in another language may start from here


@dataclass
class BuildConfig:
    policy: str = "uniform"
    granularity: str = "sentence"  # for uniform / weighted; curriculum runs every stage
    seed: int = 0
    weights: dict[str, float] = field(default_factory=dict)  # weighted: language -> weight (default 1)
    min_langs: int = 3
    max_chars: int = 2000  # a document closes once its text reaches this length
    avoid_recent: int = 1  # a language may not reappear within this many segments (1: no adjacent repeat)
    lid: bool = True  # run fastText LID on every segment and store it
    lid_filter: bool = True  # drop candidate sentences whose LID disagrees with their language

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"unknown policy {self.policy!r} (known: {', '.join(POLICIES)})")
        if self.granularity not in GRANULARITIES:
            raise ConfigError(f"unknown granularity {self.granularity!r} (known: {', '.join(GRANULARITIES)})")
        if self.min_langs < 1 or self.max_chars < 1 or self.avoid_recent < 1:
            raise ConfigError("min_langs, max_chars and avoid_recent must be positive")
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError("language weights must be >= 0")


@dataclass
class Candidate:
    """One language's rendering of a slot, with where it came from."""

    lang: str
    text: str
    source: dict  # wiki, page_id, rev_id, section_idx, paragraph_idx, sentence_idx


@dataclass
class Slot:
    pos: float
    candidates: dict[str, Candidate]


# ------------------------------------------------------------------------------------------- composing


def _choose(allowed: list[str], used: set[str], cfg: BuildConfig, rng: random.Random) -> str:
    fresh = [lang for lang in allowed if lang not in used]
    if len(used) < cfg.min_langs and fresh:
        allowed = fresh
    if cfg.policy == "weighted":
        weights = [cfg.weights.get(lang, 1.0) for lang in allowed]
        if sum(weights) > 0:
            return rng.choices(allowed, weights=weights)[0]
    return rng.choice(allowed)


def _clause_chain(slot: Slot, first: str, recent: deque, used: set[str], cfg: BuildConfig, rng) -> list:
    """[candidate, start, end] pieces that walk one slot clause by clause, switching language each time.

    After a piece that ends at relative position f of its sentence, the next piece is a clause of another
    language that starts near f (within CLAUSE_DRIFT), so content is neither skipped nor said twice. When
    no other language has a clause there, the current piece grows by its own next clause.
    """
    clauses = {lang: split_clauses(c.text, lang) for lang, c in slot.candidates.items()}
    cand = slot.candidates[first]
    a, b = clauses[first][0]
    pieces = [[cand, a, b]]
    frac = b / (len(cand.text) or 1)
    while frac < 0.98:
        tail = (list(recent) + [p[0].lang for p in pieces])[-cfg.avoid_recent :]
        eligible = {}
        for lang in sorted(slot.candidates):
            if lang in tail:
                continue
            n = len(slot.candidates[lang].text) or 1
            for ca, cb in clauses[lang]:
                if abs(ca / n - frac) <= CLAUSE_DRIFT and cb / n > frac + 0.02:
                    eligible[lang] = (ca, cb)
                    break
        if eligible:
            lang = _choose(sorted(eligible), used | {p[0].lang for p in pieces}, cfg, rng)
            ca, cb = eligible[lang]
            pieces.append([slot.candidates[lang], ca, cb])
            frac = cb / (len(slot.candidates[lang].text) or 1)
            continue
        current = pieces[-1]
        nxt = next(((ca, cb) for ca, cb in clauses[current[0].lang] if ca >= current[2]), None)
        if nxt is None:
            break
        current[2] = nxt[1]
        frac = nxt[1] / (len(current[0].text) or 1)
    return pieces


def _span_anchors(text: str) -> dict[str, int]:
    """{anchor: end offset} of the anchors that occur exactly once in a sentence (numbers, names)."""
    seen: Counter = Counter()
    ends: dict[str, int] = {}
    for m in SPAN_ANCHOR.finditer(text):
        tok = m.group()
        if not tok[0].isdigit() and (len(tok) < 3 or not text[: m.start()].strip()):
            continue  # a capital that only starts the sentence ('In', 'The') is no name
            key = "n:" + "".join(str(unicodedata.digit(c)) for c in tok if c.isdigit())
        else:
            key = "w:" + tok.casefold()
        seen[key] += 1
        ends[key] = m.end()
    return {k: e for k, e in ends.items() if seen[k] == 1}


def _digit_follows(text: str, end: int) -> bool:
    """A cut after '817' in '817 000' would split one number in two."""
    rest = text[end:].lstrip()
    return bool(rest) and rest[0].isdigit()


def _word_chain(slot: Slot, first: str, recent: deque, cfg: BuildConfig, rng, used: set[str]) -> list:
    """[candidate, start, end] pieces cut at anchors the sentences share: word-level switching over
    aligned spans. 'In 1905 | , Albert Einstein | published ...' with each span from another language:
    after a span that ends at anchor k, the next language continues right after its own k."""
    anchors = {lang: _span_anchors(c.text) for lang, c in slot.candidates.items()}
    pieces: list[list] = []
    lang, start, here = first, 0, {x: 0 for x in slot.candidates}  # here: each language's current point
    while True:
        text = slot.candidates[lang].text
        tail = (list(recent) + [p[0].lang for p in pieces] + [lang])[-cfg.avoid_recent :]
        others = [x for x in sorted(slot.candidates) if x not in tail and x != lang]
        cut = None
        for key, end in sorted(anchors[lang].items(), key=lambda kv: kv[1]):
            if end <= start or not any(ch.isalpha() for ch in text[start:end]) or _digit_follows(text, end):
                continue
            nxt = [
                x
                for x in others
                if anchors[x].get(key, -1) > here[x]
                and any(ch.isalpha() for ch in slot.candidates[x].text[anchors[x][key] :])
                and not _digit_follows(slot.candidates[x].text, anchors[x][key])
            ]
            if nxt:
                cut = (key, end, nxt)
                break
        if cut is None:
            pieces.append([slot.candidates[lang], start, len(text)])
            return pieces
        key, end, nxt = cut
        pieces.append([slot.candidates[lang], start, end])
        for x in slot.candidates:
            if key in anchors[x]:
                here[x] = anchors[x][key]
        lang = _choose(nxt, used | {p[0].lang for p in pieces}, cfg, rng)
        start = here[lang]


def compose(
    slots: list[Slot], cfg: BuildConfig, granularity: str, rng: random.Random
) -> tuple[list[list[dict]], Counter]:
    """Documents as lists of segments (text + lang + source), from ordered slots. Also counts skips."""
    docs: list[list[dict]] = []
    stats: Counter = Counter()
    current: list[dict] = []
    length = 0
    recent: deque = deque(maxlen=cfg.avoid_recent)
    used: set[str] = set()

    def close() -> None:
        nonlocal current, length, used
        if current:
            if len({s["lang"] for s in current}) >= cfg.min_langs:
                docs.append(current)
            else:
                stats["docs_dropped_few_langs"] += 1
        current, length, used = [], 0, set()
        recent.clear()

    for slot in slots:
        allowed = sorted(lang for lang in slot.candidates if lang not in recent)
        if not allowed:
            stats["slots_skipped_repeat"] += 1
            continue
        lang = _choose(allowed, used, cfg, rng)
        if granularity == "clause" and len(slot.candidates) > 1:
            pieces = _clause_chain(slot, lang, recent, used, cfg, rng)
        elif granularity == "word" and len(slot.candidates) > 1:
            pieces = _word_chain(slot, lang, recent, cfg, rng, used)
        else:
            cand = slot.candidates[lang]
            pieces = [(cand, 0, len(cand.text))]
        for cand, a, b in pieces:
            text = cand.text[a:b].strip(" \t\n,;:、，")
            if not text:
                continue
            if current and current[-1]["lang"] == cand.lang:
                stats["pieces_dropped_repeat"] += 1  # an empty piece in between: never two alike in a row
                continue
            current.append({"text": text, "lang": cand.lang, "source": cand.source})
            recent.append(cand.lang)
            used.add(cand.lang)
            length += len(text) + 1
        stats["slots_used"] += 1
        if length >= cfg.max_chars:
            close()
    close()
    return docs, stats


def monolingual(slots: list[Slot], cfg: BuildConfig) -> list[list[dict]]:
    """The curriculum's last stage: each language's own sentences, in slot order, as plain documents."""
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for slot in slots:
        for lang, cand in sorted(slot.candidates.items()):
            by_lang[lang].append({"text": cand.text.strip(), "lang": lang, "source": cand.source})
    docs = []
    for lang in sorted(by_lang):
        current: list[dict] = []
        length = 0
        for seg in by_lang[lang]:
            current.append(seg)
            length += len(seg["text"]) + 1
            if length >= cfg.max_chars:
                docs.append(current)
                current, length = [], 0
        if current:
            docs.append(current)
    return docs


def render(concept: str, policy: str, granularity: str, seed: int, index: int, segments: list[dict]) -> dict:
    """A `documents` row (without LID and metrics) from segments: text joined by spaces, spans recorded."""
    parts, spans, pos = [], [], 0
    for seg in segments:
        parts.append(seg["text"])
        spans.append({"start": pos, "end": pos + len(seg["text"]), "lang": seg["lang"], **seg["source"]})
        pos += len(seg["text"]) + 1
    text = " ".join(parts)
    ident = json.dumps(
        [concept, policy, granularity, seed, index, [s["source"] for s in segments]], sort_keys=True
    )
    return {
        "doc_id": hashlib.sha256(ident.encode()).hexdigest()[:20],
        "concept": concept,
        "policy": policy,
        "granularity": granularity,
        "seed": seed,
        "langs": list(dict.fromkeys(s["lang"] for s in segments)),
        "text": text,
        "segments": spans,
    }


def segment_agrees(segment: dict) -> bool | None:
    """Whether a stored segment's LID language is its intended one; None when LID cannot judge it (no
    LID run, or a language the model does not know). `annotate` stores lid_lang = lang on agreement."""
    if segment.get("lid_lang") is None or lid_code(segment["lang"]) is None:
        return None
    return segment["lid_lang"] == segment["lang"]


def annotate(docs: list[dict], lid: bool = True) -> None:
    """Add LID language/probability to every segment and the metrics to every document (in place)."""
    segs = [(d, s) for d in docs for s in d["segments"]]
    if lid and segs:
        preds = default_identifier().predict([d["text"][s["start"] : s["end"]] for d, s in segs])
        for (_, s), (label, prob) in zip(segs, preds, strict=True):
            s["lid_lang"] = s["lang"] if agrees(s["lang"], label) else label
            s["lid_prob"] = prob
    for d in docs:
        tags = csmetrics.token_tags(d["text"], d["segments"])
        metrics = csmetrics.doc_metrics(tags)
        judged = [segment_agrees(s) for s in d["segments"]] if lid else []
        judged = [j for j in judged if j is not None]
        metrics["lid_agreement"] = sum(judged) / len(judged) if judged else None
        d["metrics"] = metrics


def documents_from_slots(concept: str, slots: list[Slot], cfg: BuildConfig) -> tuple[list[dict], Counter]:
    """Every document of one concept under cfg (all stages for the curriculum), annotated."""
    stages = (
        [(f"curriculum:{s}", s) for s in CURRICULUM_STAGES]
        if cfg.policy == "curriculum"
        else [(cfg.policy, cfg.granularity)]
    )
    seed_key = int(hashlib.sha256(f"{concept}\0{cfg.seed}".encode()).hexdigest()[:12], 16)
    rng = random.Random(seed_key)  # per concept: a shard's output does not depend on the others
    rows: list[dict] = []
    stats: Counter = Counter()
    for policy, stage in stages:
        if stage == "monolingual":
            docs = monolingual(slots, cfg)
        else:
            docs, st = compose(slots, cfg, stage, rng)
            stats.update(st)
        rows += [render(concept, policy, stage, cfg.seed, i, segs) for i, segs in enumerate(docs)]
    annotate(rows, cfg.lid)
    return rows, stats


# ---------------------------------------------------------------------------- slots from aligned pages


def is_prose(text: str) -> bool:
    """A sentence worth switching into: mostly letters, not table or template debris ('|-', '{| class=')."""
    chars = [ch for ch in text if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in chars)
    return letters >= 3 and letters >= 0.5 * len(chars) and not text.lstrip().startswith(("|", "{|", "!"))


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)


def _page_of(key: str) -> tuple[str, int, int]:
    wiki, page_id, rev_id = key.split(":")[:3]
    return wiki, int(page_id), int(rev_id)


def slots_for_concept(
    section_rows: list[dict], alignment_rows: list[dict], lid_filter: bool = True
) -> tuple[list[Slot], Counter]:
    """Ordered slots of one concept from its `sections` rows and `alignments` rows."""
    stats: Counter = Counter()
    pages = {_page_of(r["key_a"]) for r in alignment_rows} | {
        _page_of(r["key_b"]) for r in alignment_rows if r["key_b"]
    }
    rows = [r for r in section_rows if (r["wiki"], int(r["page_id"]), int(r["rev_id"])) in pages]
    # Sentences with article-relative positions, and sections' start/length fractions.
    sentences: dict[str, tuple[Candidate, float, str]] = {}  # key -> (candidate, pos in section, section key)
    sec_span: dict[str, tuple[float, float]] = {}
    by_page: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_page[(r["wiki"], int(r["page_id"]), int(r["rev_id"]))].append(r)
    for (wiki, page_id, rev_id), page_rows in by_page.items():
        page_rows.sort(key=lambda r: (r["section_idx"], r["paragraph_idx"]))
        total = sum(len(r["text"] or "") for r in page_rows) or 1
        sec_len: Counter = Counter()
        for r in page_rows:
            sec_len[r["section_idx"]] += len(r["text"] or "")
        done, sec_done, last_sec = 0, 0, None
        for r in page_rows:
            s_key = f"{wiki}:{page_id}:{rev_id}:{r['section_idx']}"
            if r["section_idx"] != last_sec:
                sec_span[s_key] = (done / total, sec_len[r["section_idx"]] / total)
                sec_done, last_sec = 0, r["section_idx"]
            text = r["text"] or ""
            for k, (a, b) in enumerate(split_sentences(text, r["lang"])):
                source = {
                    "wiki": wiki,
                    "page_id": page_id,
                    "rev_id": rev_id,
                    "section_idx": int(r["section_idx"]),
                    "paragraph_idx": int(r["paragraph_idx"]),
                    "sentence_idx": k,
                }
                key = f"{s_key}:{r['paragraph_idx']}:{k}"
                in_section = (sec_done + a) / (sec_len[r["section_idx"]] or 1)
                sentences[key] = (Candidate(r["lang"], text[a:b], source), in_section, s_key)
            sec_done += len(text)
            done += len(text)
    for key in [k for k, v in sentences.items() if not is_prose(v[0].text)]:
        stats["candidates_not_prose"] += 1
        del sentences[key]
    if lid_filter and sentences:
        keys = sorted(sentences)
        preds = default_identifier().predict([sentences[k][0].text for k in keys])
        for key, (label, _) in zip(keys, preds, strict=True):
            verdict = agrees(sentences[key][0].lang, label)
            stats["candidates_lid_judged"] += verdict is not None
            if verdict is False:
                stats["candidates_lid_rejected"] += 1
                del sentences[key]
        stats["candidates"] = len(keys)
    # Section groups: aligned sections share one place in the composite article.
    sections = _UnionFind()
    sentence_groups = _UnionFind()
    group_langs: dict = {}
    for r in sorted(alignment_rows, key=lambda r: -r["score"]):
        if not r["key_b"]:
            continue
        if r["unit"] == "section":
            sections.union(r["key_a"], r["key_b"])
        elif r["unit"] == "sentence" and r["key_a"] in sentences and r["key_b"] in sentences:
            ra, rb = sentence_groups.find(r["key_a"]), sentence_groups.find(r["key_b"])
            la = group_langs.get(ra, {sentences[r["key_a"]][0].lang})
            lb = group_langs.get(rb, {sentences[r["key_b"]][0].lang})
            if ra != rb and not (la & lb):  # one sentence per language in a slot
                sentence_groups.union(ra, rb)
                group_langs[sentence_groups.find(rb)] = la | lb
    sec_members: dict = defaultdict(list)
    for s_key in sec_span:
        sec_members[sections.find(s_key)].append(s_key)
    sec_place = {}
    for members in sec_members.values():
        start = statistics.fmean(sec_span[m][0] for m in members)
        width = statistics.fmean(sec_span[m][1] for m in members)
        for m in members:
            sec_place[m] = (start, width)
    groups: dict = defaultdict(list)
    for key, (cand, in_section, s_key) in sentences.items():
        start, width = sec_place[s_key]
        groups[sentence_groups.find(key)].append((start + in_section * width, key, cand))
    slots = []
    for members in groups.values():
        members.sort(key=lambda m: m[1])
        slots.append(Slot(statistics.fmean(m[0] for m in members), {m[2].lang: m[2] for m in members}))
        stats["slots_aligned" if len(members) > 1 else "slots_single"] += 1
    slots.sort(key=lambda s: (s.pos, sorted(s.candidates)))
    return slots, stats


# --------------------------------------------------------------------------------------- whole versions


def build_documents(
    wiki_ref, align_ref, writer, cfg: BuildConfig | None = None, rank: int = 0, world_size: int = 1
) -> dict:
    """Documents of every concept this rank owns; writes `documents` shard `rank` of `world_size`.

    Returns a JSON-able report: shard path, counts, LID agreement and dataset-level metrics.
    """
    import tempfile

    from pipeline.align import shard_of
    from pipeline.concept_buckets import concept_groups, num_buckets, partition

    cfg = cfg or BuildConfig()
    if not 0 <= rank < world_size:
        raise WikimixError(f"rank {rank} out of range for world size {world_size}")
    path = writer.shard_path("documents", rank, world_size)
    if writer.has_shard("documents", rank, world_size):
        return {"path": path, "skipped": True}
    stats: Counter = Counter()

    def documents(align_buckets: dict, section_buckets: dict) -> Iterator[list[dict]]:
        for bucket, align_path in align_buckets.items():
            sections = (
                {c: g.to_dicts() for c, g in concept_groups(section_buckets[bucket])}
                if bucket in section_buckets
                else {}
            )
            for concept, group in concept_groups(align_path):
                langs = set(group["lang_a"].to_list()) | {x for x in group["lang_b"].to_list() if x}
                if len(langs) < cfg.min_langs:
                    stats["concepts_too_few_langs"] += 1
                    continue
                slots, st = slots_for_concept(
                    sections.get(concept, []), group.to_dicts(), cfg.lid and cfg.lid_filter
                )
                stats.update(st)
                docs, st = documents_from_slots(concept, slots, cfg)
                stats.update(st)
                stats["concepts"] += 1
                yield docs

    # Both tables go through bucket files of one count: a bucket holds a concept's sections and its
    # alignments, and memory holds one bucket, never a whole table.
    mine = {"keep": lambda concept: shard_of(concept, world_size) == rank}
    columns = ["wiki", "lang", "page_id", "rev_id", "concept", "section_idx", "paragraph_idx", "text"]
    with tempfile.TemporaryDirectory(prefix="wikimix-codeswitch-") as tmp:
        n = num_buckets(max(align_ref.num_rows("alignments"), wiki_ref.num_rows("sections")))
        align_buckets = partition(align_ref.iter_batches("alignments"), tmp, "alignments", n, **mine)
        sections = partition(wiki_ref.iter_batches("sections", columns=columns), tmp, "sections", n, **mine)
        writer.write_shard("documents", rank, world_size, documents(align_buckets, sections))
    return {"path": path, "skipped": False, **dict(stats), **summarize(_read_documents(writer, path))}


def _read_documents(writer, path: str) -> Iterator[dict]:
    """The rows of a documents shard just written, a batch at a time (the report is computed from them)."""
    import pyarrow.parquet as pq

    columns = ["granularity", "langs", "text", "segments"]
    with writer.fs.open(writer.fs._strip_protocol(path), "rb") as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=256, columns=columns):
            yield from batch.to_pylist()


def summarize(rows: Iterable[dict]) -> dict:
    """Dataset-level view of documents: counts, LID agreement over segments, code-switching metrics.
    One pass over `rows` (a stream is fine)."""
    counts: Counter = Counter()

    def switched_tags() -> Iterator[list[str]]:
        for d in rows:
            counts["documents"] += 1
            counts["segments"] += len(d["segments"])
            for s in d["segments"]:
                verdict = segment_agrees(s)
                if verdict is not None:
                    counts["lid_judged"] += 1
                    counts["lid_agreed"] += verdict
            if d["granularity"] != "monolingual":
                counts["fewest_langs"] = min(counts["fewest_langs"] or len(d["langs"]), len(d["langs"]))
                yield csmetrics.token_tags(d["text"], d["segments"])

    metrics = csmetrics.dataset_metrics(switched_tags())
    judged = counts["lid_judged"]
    return {
        "documents": counts["documents"],
        "segments": counts["segments"],
        "lid_judged": judged,
        "lid_agreement": round(counts["lid_agreed"] / judged, 4) if judged else None,
        "min_langs_per_doc": counts["fewest_langs"],
        "metrics": {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()},
    }


def wiki_parent(align_ref):
    """The wiki version an alignment version was made from (its manifest's first parent)."""
    from storage.store import open_version

    parents = align_ref.manifest().get("parents") or []
    if not parents:
        raise WikimixError(f"{align_ref} names no parent wiki version; cannot find its sections")
    return open_version(align_ref.root, parents[0]["dataset"], parents[0]["version"])


def run_codeswitch(
    align_ref, root=None, dataset: str | None = None, num_shards: int = 1, cfg: BuildConfig | None = None
):
    """Build documents for a whole alignment version in `num_shards` shards and commit. (ref, reports)."""
    from pipeline.align import dataset_name
    from storage.store import VersionWriter

    cfg = cfg or BuildConfig()
    wiki_ref = wiki_parent(align_ref)
    writer = VersionWriter(
        root if root is not None else align_ref.root,
        dataset or dataset_name(align_ref.dataset, "docs"),
        params={"step": "codeswitch", "align": str(align_ref), "num_shards": num_shards, **cfg.__dict__},
        parents=[align_ref, wiki_ref],
    )
    reports = [
        build_documents(wiki_ref, align_ref, writer, cfg, rank, num_shards) for rank in range(num_shards)
    ]
    require_rows(writer, "documents", "codeswitch", _no_documents(align_ref, cfg, reports))
    return writer.commit(), reports


def _no_documents(align_ref, cfg: BuildConfig, reports: list[dict]) -> str:
    """Why no document came out: how many concepts the alignment holds and how many were too thin."""
    concepts = align_ref.scan("alignments").select("concept").unique().collect().height
    thin = sum(r.get("concepts_too_few_langs", 0) for r in reports)
    return (
        f"{align_ref} holds {align_ref.num_rows('alignments')} alignment row(s) of {concepts} concept(s), "
        f"{thin} with fewer than min_langs={cfg.min_langs} languages"
    )
