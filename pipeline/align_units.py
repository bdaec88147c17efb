"""The units the aligner matches: one language's article as sections holding paragraphs holding sentences.

Each unit carries its anchors (pipeline.align_evidence), its relative position and length, and, when an
encoder runs, a sentence embedding (`embed_units`).

Key of a unit: 'wiki:page_id:rev_id:section[:paragraph[:sentence]]'.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from pipeline.align_evidence import LinkIndex, link_anchors, links_in_sentence, mostly_latin, text_anchors
from pipeline.sentences import split_sentences


@dataclass
class Unit:
    key: str
    lang: str
    text: str
    anchors: Counter[str]
    pos: float  # relative position of the unit's start in its parent, 0..1
    length: int  # characters
    section_idx: int = 0
    paragraph_idx: int = -1
    sentence_idx: int = -1
    children: list[Unit] = field(default_factory=list)
    apos: float = 0.0  # relative position of the unit's start in the whole article, 0..1
    emb: np.ndarray | None = None  # unit-norm sentence embedding (paragraphs, sections) when an encoder runs


@dataclass
class Article:
    """One language's page of a concept, as units: sections with paragraphs with sentences."""

    lang: str
    wiki: str
    page_id: int
    rev_id: int
    sections: list[Unit]
    empty: list[tuple[str, str]]  # (unit level, key) of sections / paragraphs that hold no text


def unit_key(wiki: str, page_id: int, rev_id: int, *idx: int) -> str:
    return ":".join([wiki, str(page_id), str(rev_id), *map(str, idx)])


def build_article(rows: list[dict], index: LinkIndex) -> Article:
    """Units of one page from its `sections` rows (any order)."""
    rows = sorted(rows, key=lambda r: (r["section_idx"], r["paragraph_idx"]))
    first = rows[0]
    wiki, page_id, rev_id, lang = first["wiki"], int(first["page_id"]), int(first["rev_id"]), first["lang"]
    latin = mostly_latin(" ".join((r.get("text") or "")[:200] for r in rows[:20]))
    by_section: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_section[int(r["section_idx"])].append(r)
    empty: list[tuple[str, str]] = []
    total = sum(len(r.get("text") or "") for r in rows) or 1
    done = 0
    sections: list[Unit] = []
    for s_idx in sorted(by_section):
        s_rows = by_section[s_idx]
        s_len = sum(len(r.get("text") or "") for r in s_rows)
        heading = s_rows[0].get("heading") or ""
        section = Unit(
            key=unit_key(wiki, page_id, rev_id, s_idx),
            lang=lang,
            text=heading,
            anchors=text_anchors(heading, latin),
            pos=done / total,
            length=s_len,
            section_idx=s_idx,
        )
        p_done = 0
        for r in s_rows:
            text = r.get("text") or ""
            p_idx = int(r["paragraph_idx"])
            p_key = unit_key(wiki, page_id, rev_id, s_idx, p_idx)
            if not text.strip():
                empty.append(("paragraph", p_key))
                continue
            links = list(r.get("links") or [])
            paragraph = Unit(
                key=p_key,
                lang=lang,
                text=text,
                anchors=link_anchors(links, lang, index),
                pos=p_done / (s_len or 1),
                length=len(text),
                section_idx=s_idx,
                paragraph_idx=p_idx,
                apos=(done + p_done) / total,
            )
            for k, (a, b) in enumerate(split_sentences(text, lang)):
                sent = text[a:b]
                found = text_anchors(sent, latin)
                paragraph.anchors.update(found)  # a paragraph's text anchors are its sentences'
                paragraph.children.append(
                    Unit(
                        key=unit_key(wiki, page_id, rev_id, s_idx, p_idx, k),
                        lang=lang,
                        text=sent,
                        anchors=found + link_anchors(links_in_sentence(sent, links), lang, index),
                        pos=a / len(text),
                        length=b - a,
                        section_idx=s_idx,
                        paragraph_idx=p_idx,
                        sentence_idx=k,
                    )
                )
            section.children.append(paragraph)
            section.anchors += paragraph.anchors
            p_done += len(text)
        done += s_len
        if section.children:
            sections.append(section)
        else:
            empty.append(("section", section.key))
    return Article(lang, wiki, page_id, rev_id, sections, empty)


def embed_units(articles: list[Article], encoder, n_sentences: int = 2) -> None:
    """Give every paragraph the embedding of its first `n_sentences` sentences (one encoder call
    for the concept) and every section the normalised mean of its paragraphs', in place."""
    paragraphs = [p for art in articles for s in art.sections for p in s.children]
    texts = [" ".join(t.text for t in p.children[:n_sentences]) or p.text for p in paragraphs]
    for p, emb in zip(paragraphs, encoder.encode(texts), strict=True):
        p.emb = emb
    for art in articles:
        for s in art.sections:
            if s.children:
                mean = np.mean([p.emb for p in s.children], axis=0)
                s.emb = mean / max(float(np.linalg.norm(mean)), 1e-9)
