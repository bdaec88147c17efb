"""Align one concept's articles across languages: sections, then paragraphs, then sentences.

    wikimix align demo-wiki                                   # CLI: writes demo-align
    from pipeline.align import align_concept, align_version
    rows = align_concept(section_rows, links)                 # rows of the `alignments` table

Articles in different languages are comparable, not translations, so units are matched on evidence that
does not depend on the language:
- anchors: wikilink targets mapped to concepts through langlinks (a link to "Фізика" in uk and to
  "Vật lý học" in vi both become concept "Physics"), numbers and years (digits of any script normalised),
  Latin-script words in non-Latin text and capitalised names in cased scripts, and the consonant
  skeleton of names transliterated to Latin ('Warsaw' = 'Варшава' = 'vrsv');
- position of the unit in its parent, and its length against the two sides' length ratio.
Anchors are weighted by inverse document frequency within the concept; a pair's anchor similarity is the
overlap per anchor kind (numbers, words, skeletons, links), averaged over the kinds both sides have.
Languages are aligned in pairs along a sparse graph: every language to each of the `pivots` languages
with the most text (so with up to pivots + 1 languages, every pair), never all L^2 pairs of a concept in
189 languages; the pairs a slot needs beyond that are joined downstream (pipeline.codeswitch unions them):
1. sections, then the paragraphs of each aligned section pair, one-to-one by the assignment that
   maximises the total score (position is optional: shuffled units carry none); leftover paragraphs get
   a second, global assignment;
2. with 3+ languages, a still-free pair that two third languages bridge (a~c, c~b, both aligned) is added;
3. when the matched paragraphs show one steady length ratio the articles are translations ("parallel"):
   paragraphs are then assigned again on anchors plus shape (length ratio and sentence boundaries), which
   also matches paragraphs that share no anchor;
4. sentences of each aligned paragraph pair by a monotone dynamic programme (order survives
   translation); in comparable articles a sentence pair needs shared anchors.
With an encoder, paragraphs and sections also carry embeddings: the ratio margin of a pair (bitext
mining) joins the anchors in every paragraph and section score, and a pair whose margin does not stand
out from its neighbours (< 1) is not matched on digits or shape alone; rows record margin and cosine.
Units with no counterpart in any language are kept as rows with an empty side b and score 0, with the
reason in the evidence. bench/align.py measures this on XQuAD (shuffled, 20% dropped; BENCHMARKS.md).
Evidence lives in pipeline.align_evidence, units in pipeline.align_units.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.align_evidence import (
    LinkIndex,
    anchor_overlap,
    idf_weights,
    kind_weights,
    length_score,
    margin_matrix,
)
from pipeline.align_units import Article, Unit, build_article, embed_units
from wikimix.errors import WikimixError


@dataclass
class AlignConfig:
    """Knobs of the aligner; defaults are the ones bench/align.py measures."""

    use_position: bool = True  # False when unit order carries no information (shuffled benchmarks)
    min_score: float = 0.06  # sections and paragraphs: a pair below this stays unaligned
    min_sentence_score: float = 0.45  # sentences: DP gain threshold
    position_weight: float = 0.5  # how much a full-length position mismatch costs (0..1)
    length_weight: float = 0.5  # how much a length ratio far from the expected one costs (0..1)
    max_anchors_in_evidence: int = 8
    parallel_spread: float = 0.25  # articles whose matched pairs' log length ratios spread less are parallel
    min_parallel_score: float = 0.26  # parallel articles: anchor + shape score a paragraph pair needs
    embedding_weight: float = 0.5  # share of a pair's evidence from the embedding margin (with an encoder)
    margin_span: float = 0.15  # margin 1 (no better than the neighbours) -> 0, margin 1 + span -> full
    embed_sentences: int = 2  # leading sentences of a paragraph the encoder reads (cost vs evidence)
    pivots: int = 8  # languages every other one is aligned to: linear in languages, all pairs up to 9


@dataclass
class Pair:
    a: Unit
    b: Unit
    score: float
    evidence: dict


def _score(
    a: Unit,
    b: Unit,
    idf: dict[str, float],
    ratio: float,
    cfg: AlignConfig,
    kinds_a=None,
    kinds_b=None,
    margin: tuple[float, float] | None = None,
) -> tuple[float, dict]:
    """A pair's score and evidence: anchor overlap, blended with the embedding margin when there is one
    ((margin, cosine) of the pair), scaled by the length fit and (optionally) the position gap."""
    dice, shared = anchor_overlap(a.anchors, b.anchors, idf, kinds_a, kinds_b)
    length = length_score(a.length, b.length, ratio)
    pos_gap = abs(a.pos - b.pos)
    similarity = dice
    evidence = {
        "anchors": shared[: cfg.max_anchors_in_evidence],
        "dice": round(dice, 4),
        "length": round(length, 4),
        "pos": [round(a.pos, 4), round(b.pos, 4)],
    }
    if margin is not None:
        embedded = min(1.0, max(0.0, (margin[0] - 1.0) / cfg.margin_span))
        similarity = (1 - cfg.embedding_weight) * dice + cfg.embedding_weight * embedded
        evidence.update(margin=round(margin[0], 4), cos=round(margin[1], 4))
    score = similarity * (1 - cfg.length_weight * (1 - length))
    if cfg.use_position:
        score *= 1 - cfg.position_weight * pos_gap
    return score, evidence


def _margins(units_a: list[Unit], units_b: list[Unit]) -> tuple[np.ndarray, np.ndarray] | None:
    """(ratio margins, cosines) between two unit lists when every unit has an embedding."""
    if not units_a or not units_b or any(u.emb is None for u in units_a + units_b):
        return None
    return margin_matrix(np.stack([u.emb for u in units_a]), np.stack([u.emb for u in units_b]))


def _assign(units_a: list[Unit], units_b: list[Unit], cfg: AlignConfig, method: str) -> list[Pair]:
    """One-to-one matching maximising the total score; pairs below cfg.min_score are dropped."""
    if not units_a or not units_b:
        return []
    idf = idf_weights([u.anchors for u in units_a + units_b])
    ratio = (sum(u.length for u in units_b) or 1) / (sum(u.length for u in units_a) or 1)
    scores = np.zeros((len(units_a), len(units_b)))
    evidence: dict[tuple[int, int], dict] = {}
    kinds_a = [kind_weights(u.anchors, idf) for u in units_a]
    kinds_b = [kind_weights(u.anchors, idf) for u in units_b]
    holders: dict[str, list[int]] = defaultdict(list)  # anchor -> units of side b that have it
    for j, b in enumerate(units_b):
        for x in b.anchors:
            holders[x].append(j)
    margins = _margins(units_a, units_b)
    for i, a in enumerate(units_a):
        # Without embeddings only pairs that share an anchor can score above 0: skip the rest.
        candidates = (
            range(len(units_b)) if margins else sorted({j for x in a.anchors for j in holders.get(x, ())})
        )
        for j in candidates:
            margin = (float(margins[0][i, j]), float(margins[1][i, j])) if margins else None
            scores[i, j], evidence[i, j] = _score(
                a, units_b[j], idf, ratio, cfg, kinds_a[i], kinds_b[j], margin
            )
            if margin is not None and margin[0] < 1.0:
                scores[i, j] = 0.0  # no better than its neighbours: shared digits alone must not pair it
    rows, cols = linear_sum_assignment(-scores)
    return [
        Pair(units_a[i], units_b[j], float(scores[i, j]), {**evidence[i, j], "method": method})
        for i, j in zip(rows, cols, strict=True)
        if scores[i, j] >= cfg.min_score
    ]


def _shape(a: Unit, b: Unit, ratio: float, tolerance: float = 0.05) -> float:
    """How well two paragraphs' sentence boundaries line up (translations keep most of them where they
    were, relative to the paragraph's length): F1 of the inner boundaries within `tolerance`, smoothed."""

    def ends(u: Unit) -> list[float]:
        return [(c.pos * u.length + c.length) / u.length for c in u.children[:-1]] if u.length else []

    fa, fb = ends(a), ends(b)
    matched, j = 0, 0
    for x in fa:  # both lists ascend: a merge-like one-to-one match
        while j < len(fb) and fb[j] < x - tolerance:
            j += 1
        if j < len(fb) and abs(fb[j] - x) <= tolerance:
            matched += 1
            j += 1
    return (2 * matched + 1) / (len(fa) + len(fb) + 2)  # one-sentence paragraphs: 0.5, no evidence


def _parallel(paragraphs: dict[tuple[str, str], list[Pair]], cfg: AlignConfig) -> bool:
    """Whether a concept's articles are translations of each other: every anchor-matched paragraph pair
    shows its language pair's steady length ratio (spread of log ratios below cfg.parallel_spread)."""
    centred = []
    for pairs in paragraphs.values():
        logs = [math.log(p.b.length / p.a.length) for p in pairs if p.a.length and p.b.length]
        if logs:
            mid = float(np.median(logs))
            centred += [x - mid for x in logs]
    return len(centred) >= 3 and float(np.sqrt(np.mean(np.square(centred)))) <= cfg.parallel_spread


def _reassign_parallel(art_a: Article, art_b: Article, matched: list[Pair], cfg: AlignConfig) -> list[Pair]:
    """Paragraphs of parallel articles, matched again with anchors and shape together.

    Only called for translations (see `_parallel`). Each pair scores its anchor overlap plus how well its
    length fits the pair's ratio and its sentences match one by one in length; one assignment over all
    paragraphs then fixes anchor matches that shape contradicts and matches paragraphs with no anchors.
    Comparable articles never get here, so their anchor-less paragraphs stay unaligned.
    """
    logs = [math.log(p.b.length / p.a.length) for p in matched if p.a.length and p.b.length]
    units_a = [p for s in art_a.sections for p in s.children]
    units_b = [p for s in art_b.sections for p in s.children]
    if not units_a or not units_b:
        return matched
    ratio = (
        math.exp(float(np.median(logs)))
        if logs
        else sum(u.length for u in units_b) / sum(u.length for u in units_a)
    )
    idf = idf_weights([u.anchors for u in units_a + units_b])
    scores = np.zeros((len(units_a), len(units_b)))
    evidence = {}
    margins = _margins(units_a, units_b)
    no_position = AlignConfig(**{**cfg.__dict__, "use_position": False})
    for i, a in enumerate(units_a):
        for j, b in enumerate(units_b):
            margin = (float(margins[0][i, j]), float(margins[1][i, j])) if margins else None
            anchor, ev = _score(a, b, idf, ratio, no_position, margin=margin)
            shape = length_score(a.length, b.length, ratio) * _shape(a, b, ratio)
            pos = 1 - cfg.position_weight * abs(a.apos - b.apos) if cfg.use_position else 1.0
            scores[i, j] = (min(1.0, anchor / 0.5) * 0.5 + 0.5 * shape) * pos
            if margin is not None and margin[0] < 1.0:
                scores[i, j] = 0.0  # the meanings disagree: shape alone must not pair them
            evidence[i, j] = {
                **ev,
                "shape": round(shape, 4),
                "method": "assign+shape" if anchor > 0 else "shape",
            }
    rows, cols = linear_sum_assignment(-scores)
    return [
        Pair(units_a[i], units_b[j], float(scores[i, j]), evidence[i, j])
        for i, j in zip(rows, cols, strict=True)
        if scores[i, j] >= cfg.min_parallel_score
    ]


def _align_sentences(pa: Unit, pb: Unit, cfg: AlignConfig, parallel: bool = True) -> list[Pair]:
    """Monotone alignment of the sentences of two aligned paragraphs (1-1 matches and skips).

    In parallel articles sentences with no anchors at all may match on length and position alone; in
    comparable ones a sentence pair needs shared anchors.
    """
    sa, sb = pa.children, pb.children
    if not sa or not sb:
        return []
    idf = idf_weights([u.anchors for u in sa + sb])
    ratio = (pb.length or 1) / (pa.length or 1)
    n, m = len(sa), len(sb)
    gain = np.zeros((n, m))
    evidence: dict[tuple[int, int], dict] = {}
    for i, a in enumerate(sa):
        for j, b in enumerate(sb):
            dice, shared = anchor_overlap(a.anchors, b.anchors, idf)
            length = length_score(a.length, b.length, ratio)
            pos = 1 - abs((a.pos + a.length / 2 / pa.length) - (b.pos + b.length / 2 / pb.length))
            if parallel:
                score = 0.4 * dice + 0.3 * length + 0.3 * pos
                if not a.anchors and not b.anchors:
                    score = 0.1 + 0.45 * length + 0.45 * pos  # nothing to compare: rely on shape alone
            else:
                score = (0.6 * dice + 0.2 * length + 0.2 * pos) if dice > 0 else 0.0
            gain[i, j] = score
            evidence[i, j] = {
                "anchors": shared[: cfg.max_anchors_in_evidence],
                "dice": round(dice, 4),
                "length": round(length, 4),
                "pos": [round(a.pos, 4), round(b.pos, 4)],
                "method": "dp",
            }
    best = np.zeros((n + 1, m + 1))
    move = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 match, 1 skip a, 2 skip b
    best[1:, 0] = 0
    move[1:, 0] = 1
    move[0, 1:] = 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = (
                best[i - 1, j - 1] + gain[i - 1, j - 1] - cfg.min_sentence_score,
                best[i - 1, j],
                best[i, j - 1],
            )
            k = int(np.argmax(options))
            best[i, j], move[i, j] = options[k], k
    pairs: list[Pair] = []
    i, j = n, m
    while i > 0 and j > 0:
        k = move[i, j]
        if k == 0:
            if gain[i - 1, j - 1] >= cfg.min_sentence_score:
                pairs.append(Pair(sa[i - 1], sb[j - 1], float(gain[i - 1, j - 1]), evidence[i - 1, j - 1]))
            i, j = i - 1, j - 1
        elif k == 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def align_pair(art_a: Article, art_b: Article, cfg: AlignConfig) -> tuple[list[Pair], list[Pair]]:
    """(section pairs, paragraph pairs) between two articles of a concept."""
    sections = _assign(art_a.sections, art_b.sections, cfg, "assign")
    lead_a = next((s for s in art_a.sections if s.section_idx == 0), None)
    lead_b = next((s for s in art_b.sections if s.section_idx == 0), None)
    if lead_a and lead_b and not any(p.a is lead_a or p.b is lead_b for p in sections):
        # Both leads summarise the topic: aligned by role even when they share no anchor.
        sections.append(Pair(lead_a, lead_b, cfg.min_score, {"method": "lead", "anchors": []}))
    paragraphs: list[Pair] = []
    for sp in sections:
        paragraphs += _assign(sp.a.children, sp.b.children, cfg, "assign")
    # Paragraphs left over (in unaligned sections, or moved to another section) get a second, global try.
    used_a = {id(p.a) for p in paragraphs}
    used_b = {id(p.b) for p in paragraphs}
    rest_a = [p for s in art_a.sections for p in s.children if id(p) not in used_a]
    rest_b = [p for s in art_b.sections for p in s.children if id(p) not in used_b]
    global_cfg = AlignConfig(**{**cfg.__dict__, "use_position": False, "min_score": 2 * cfg.min_score})
    paragraphs += _assign(rest_a, rest_b, global_cfg, "assign-global")
    return sections, paragraphs


def language_pairs(articles: list[Article], pivots: int) -> list[tuple[Article, Article]]:
    """The language pairs of a concept that are aligned: each pair with a side among the `pivots`
    articles with the most text (ties by language), in language order. P pivots give
    P(P-1)/2 + P(L-P) pairs: linear in the number of languages L, and every pair when L <= P + 1."""
    if pivots < 1:
        raise WikimixError(f"pivots must be >= 1, got {pivots}")
    size = {art.lang: sum(s.length for s in art.sections) for art in articles}
    hubs = set(sorted(size, key=lambda lang: (-size[lang], lang))[:pivots])
    return [(a, b) for a, b in itertools.combinations(articles, 2) if a.lang in hubs or b.lang in hubs]


def _transitive(articles: list[Article], found: dict[tuple[str, str], list[Pair]]) -> None:
    """Add pairs implied through a third language (a~c and c~b, a and b both still free), in place.

    With many languages, a pair whose scripts share few anchors (zh, ar) is often bridged by languages
    that share many with each side. A free unit takes the counterpart that two or more third languages
    agree on (one bridge when there is only one third language). Only aligned pairs bridge, so the work is
    the graph's: linear in languages along the pivot graph.
    """
    order = {a.lang: i for i, a in enumerate(articles)}
    link: dict[tuple[str, str], dict[int, Pair]] = {}
    neighbours: dict[str, set[str]] = defaultdict(set)
    for (la, lb), pairs in found.items():
        link[(la, lb)] = {id(p.a): p for p in pairs}
        link[(lb, la)] = {id(p.b): Pair(p.b, p.a, p.score, p.evidence) for p in pairs}
        neighbours[la].add(lb)
        neighbours[lb].add(la)
    for la, lb in list(found):
        pairs = found[(la, lb)]
        thirds = sorted(neighbours[la] & neighbours[lb], key=order.__getitem__)
        used_a = {id(p.a) for p in pairs}
        used_b = {id(p.b) for p in pairs}
        votes: dict[int, Counter] = defaultdict(Counter)
        via: dict[tuple[int, int], list] = defaultdict(list)
        units: dict[int, Unit] = {}
        for lc in thirds:
            for ida, pac in link[(la, lc)].items():
                pcb = link[(lc, lb)].get(id(pac.b))
                if ida in used_a or pcb is None or id(pcb.b) in used_b:
                    continue
                votes[ida][id(pcb.b)] += 1
                via[(ida, id(pcb.b))].append((lc, min(pac.score, pcb.score)))
                units[ida], units[id(pcb.b)] = pac.a, pcb.b
        taken: set[int] = set()
        for ida, counter in sorted(votes.items(), key=lambda kv: -max(kv[1].values())):
            (idb, n), *rest = counter.most_common()
            if n < min(2, len(thirds)) or (rest and rest[0][1] == n) or idb in taken:
                continue  # one bridge of several, or bridges that disagree: leave it free
            taken.add(idb)
            paths = via[(ida, idb)]
            evidence = {"method": "transitive", "via": sorted(lc for lc, _ in paths), "anchors": []}
            pairs.append(Pair(units[ida], units[idb], 0.9 * max(sc for _, sc in paths), evidence))


# ------------------------------------------------------------------------------------------ one concept


def _row(concept: str, unit: str, a: Unit, b: Unit | None, score: float, evidence: dict) -> dict:
    return {
        "concept": concept,
        "unit": unit,
        "lang_a": a.lang,
        "key_a": a.key,
        "lang_b": b.lang if b else None,
        "key_b": b.key if b else None,
        "score": round(float(score), 4),
        "evidence": json.dumps(evidence, ensure_ascii=False, sort_keys=True),
    }


def _unit_level(u: Unit) -> str:
    return "sentence" if u.sentence_idx >= 0 else "paragraph" if u.paragraph_idx >= 0 else "section"


def align_concept(
    rows: list[dict], index: LinkIndex | None = None, cfg: AlignConfig | None = None, encoder=None
) -> list[dict]:
    """`alignments` rows for one concept's `sections` rows (any languages, any order).

    With an `encoder` (pipeline.encoder.Encoder), paragraphs and sections also carry embeddings and the
    ratio margin joins the anchors as evidence; the evidence of each row records margin and cosine.

    Language pairs follow the pivot graph (`language_pairs`: every pair up to cfg.pivots + 1 languages,
    linear in languages beyond). Sections and paragraphs that match nothing in any language, and
    sentences of aligned paragraphs that match nothing, get a row with empty side b and a reason; so do
    empty units and every unit of a concept that exists in one language only.
    """
    cfg = cfg or AlignConfig()
    index = index or LinkIndex()
    if not rows:
        return []
    concept = rows[0].get("concept") or f"{rows[0]['lang']}:{rows[0].get('title')}"
    by_page: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_page[(r["lang"], r["wiki"], int(r["page_id"]), int(r["rev_id"]))].append(r)
    # One page per language: the newest revision of the longest page wins.
    chosen: dict[str, tuple] = {}
    for key, page_rows in by_page.items():
        best = chosen.get(key[0])
        size = (sum(len(r.get("text") or "") for r in page_rows), key[3])
        if best is None or size > best[0]:
            chosen[key[0]] = (size, key)
    articles = [build_article(by_page[key], index) for _, key in (chosen[lang] for lang in sorted(chosen))]
    if encoder is not None and len(articles) > 1:
        embed_units(articles, encoder, cfg.embed_sentences)
    out: list[dict] = []
    for art in articles:
        for level, key in art.empty:
            empty_unit = Unit(key, art.lang, "", Counter(), 0.0, 0)
            out.append(_row(concept, level, empty_unit, None, 0.0, {"reason": "empty"}))
    if len(articles) == 1:
        for s in articles[0].sections:
            out.append(_row(concept, "section", s, None, 0.0, {"reason": "only one language"}))
        return out
    sections: dict[tuple[str, str], list[Pair]] = {}
    paragraphs: dict[tuple[str, str], list[Pair]] = {}
    for art_a, art_b in language_pairs(articles, cfg.pivots):
        key = (art_a.lang, art_b.lang)
        sections[key], paragraphs[key] = align_pair(art_a, art_b, cfg)
    if len(articles) > 2:
        _transitive(articles, paragraphs)
    by_lang = {art.lang: art for art in articles}
    parallel = _parallel(paragraphs, cfg)
    if parallel:
        for key, pairs in paragraphs.items():
            paragraphs[key] = _reassign_parallel(by_lang[key[0]], by_lang[key[1]], pairs, cfg)
    matched: set[int] = set()
    for key in sections:
        pairs = sections[key] + paragraphs[key]
        for pp in paragraphs[key]:
            pairs += _align_sentences(pp.a, pp.b, cfg, parallel)
        for p in pairs:
            out.append(_row(concept, _unit_level(p.a), p.a, p.b, p.score, p.evidence))
            matched.update((id(p.a), id(p.b)))
    for art in articles:
        for s in art.sections:
            if id(s) not in matched:
                out.append(_row(concept, "section", s, None, 0.0, {"reason": "no counterpart"}))
            for p in s.children:
                if id(p) not in matched:
                    out.append(_row(concept, "paragraph", p, None, 0.0, {"reason": "no counterpart"}))
                    continue
                for t in p.children:
                    if id(t) not in matched:
                        out.append(_row(concept, "sentence", t, None, 0.0, {"reason": "no counterpart"}))
    return out


# --------------------------------------------------------------------------------------- whole versions


def shard_of(concept: str, world_size: int) -> int:
    """Which rank owns a concept: stable across runs and machines."""
    return zlib.crc32(concept.encode()) % world_size


def align_version(
    wiki_ref, writer, rank: int = 0, world_size: int = 1, cfg: AlignConfig | None = None, encoder=None
) -> dict:
    """Align every concept of a wiki version that this rank owns; write alignments shard `rank`.

    `wiki_ref` is a committed version holding `sections` (and `pages` for the langlinks); `writer` a
    VersionWriter of the alignment dataset. A shard already written is skipped (resume). Returns a small
    JSON-able report with the shard path. `encoder` adds the embedding margin as evidence (align_concept).
    """
    import tempfile

    from pipeline.concept_buckets import concept_groups, num_buckets, partition

    if not 0 <= rank < world_size:
        raise WikimixError(f"rank {rank} out of range for world size {world_size}")
    path = writer.shard_path("alignments", rank, world_size)
    if writer.has_shard("alignments", rank, world_size):
        return {"path": path, "skipped": True}
    index = LinkIndex()
    if "pages" in wiki_ref.tables():
        columns = ["lang", "title", "concept", "langlinks"]
        index = LinkIndex.from_pages(
            row for batch in wiki_ref.iter_batches("pages", columns=columns) for row in batch.to_pylist()
        )
    report = Counter()

    def aligned(buckets: dict) -> Iterator[list[dict]]:
        for bucket in buckets.values():
            for _, group in concept_groups(bucket):
                out = align_concept(group.to_dicts(), index, cfg, encoder)
                report["concepts"] += 1
                for r in out:
                    report[f"{r['unit']}_{'aligned' if r['key_b'] else 'unaligned'}"] += 1
                yield out

    # Concepts are grouped through bucket files, so memory holds one bucket, never the whole table.
    with tempfile.TemporaryDirectory(prefix="wikimix-align-") as tmp:
        buckets = partition(
            wiki_ref.iter_batches("sections"),
            tmp,
            "sections",
            num_buckets(wiki_ref.num_rows("sections")),
            keep=lambda concept: shard_of(concept, world_size) == rank,
        )
        writer.write_shard("alignments", rank, world_size, aligned(buckets))
    return {"path": path, "skipped": False, **report}


def dataset_name(source: str, kind: str) -> str:
    """`N-wiki` -> `N-align` / `N-docs` (the naming convention); other names get the kind appended."""
    base = source[: -len("-wiki")] if source.endswith("-wiki") else source
    base = base[: -len("-align")] if base.endswith("-align") else base
    return f"{base}-{kind}"


ALIGN_ENCODERS = ("none", "e5", "minilm")


def alignment_encoder(backend: str):
    """The encoder whose embedding margin joins the anchor evidence: None for 'none', else a packaged
    pipeline.encoder backend (e5: multilingual, the one to use across scripts)."""
    from pipeline.encoder import Encoder, EncoderConfig
    from wikimix.errors import ConfigError

    if backend not in ALIGN_ENCODERS:
        raise ConfigError(f"unknown alignment encoder {backend!r} (known: {', '.join(ALIGN_ENCODERS)})")
    return None if backend == "none" else Encoder(EncoderConfig(backend=backend))


def run_align(
    wiki_ref,
    root=None,
    dataset: str | None = None,
    num_shards: int = 1,
    cfg: AlignConfig | None = None,
    encoder=None,
):
    """Align a whole wiki version in `num_shards` shards (one after another) and commit. (ref, reports).

    With an `encoder` (pipeline.encoder.Encoder) the embedding margin joins the anchors; its name and
    weights hash go into the version's params."""
    from storage.store import VersionWriter
    from wikimix.guards import require_rows

    cfg = cfg or AlignConfig()
    writer = VersionWriter(
        root if root is not None else wiki_ref.root,
        dataset or dataset_name(wiki_ref.dataset, "align"),
        params={
            "step": "align",
            "wiki": str(wiki_ref),
            "num_shards": num_shards,
            **cfg.__dict__,
            "encoder": encoder.name if encoder else "",
            "encoder_hash": encoder.hash if encoder else "",
        },
        parents=[wiki_ref],
    )
    reports = [align_version(wiki_ref, writer, rank, num_shards, cfg, encoder) for rank in range(num_shards)]
    n = wiki_ref.num_rows("sections")
    why = f"{wiki_ref} has {n} section row(s)" + (", none with a concept" if n else "")
    require_rows(writer, "alignments", "align", why)
    return writer.commit(), reports
