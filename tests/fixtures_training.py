"""Fixtures for the training tests: small stored `documents` / `significance` versions built from the
shared XQuAD paragraphs (real Wikipedia text in several languages and scripts)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from storage.store import VersionRef, write_version

XQUAD_LANGS = ("en", "de", "ru")


def xquad_rows(shared: Path, langs: tuple[str, ...] = XQUAD_LANGS) -> list[dict]:
    rows = []
    for lang in langs:
        data = json.loads((shared / "corpus" / "xquad" / f"xquad.{lang}.json").read_text())["data"]
        for i, article in enumerate(data):
            for j, para in enumerate(article["paragraphs"]):
                rows.append(
                    {
                        "doc_id": f"xquad-{lang}-{i}-{j}",
                        "concept": article["title"],
                        "langs": [lang],
                        "granularity": "monolingual",
                        "text": para["context"],
                    }
                )
    return rows


def word_significance(rows: list[dict]) -> list[dict]:
    """One span per whitespace word; shorter words are removed first (a plain 'stat'-style ranking)."""
    out = []
    for row in rows:
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", row["text"])]
        order = sorted(range(len(words)), key=lambda k: (words[k][1] - words[k][0], k))
        rank = {k: r for r, k in enumerate(order)}
        spans = [
            {"start": s, "end": e, "score": float(e - s), "removal_rank": rank[k]}
            for k, (s, e) in enumerate(words)
        ]
        out.append(
            {
                "doc_id": row["doc_id"],
                "ranker": "stat",
                "ranker_version": "test",
                "encoder": "",
                "spans": spans,
            }
        )
    return out


@pytest.fixture
def xquad_docs(data_root: Path, shared_dir: Path) -> VersionRef:
    """`xq-docs`: 720 XQuAD paragraphs (en, de, ru) as documents in 3 shards."""
    return write_version(data_root, "xq-docs", {"documents": xquad_rows(shared_dir)}, num_shards=3)


@pytest.fixture
def xquad_sig(data_root: Path, shared_dir: Path, xquad_docs: VersionRef) -> VersionRef:
    """`xq-sig`: word-level significance spans for every xq-docs document."""
    rows = word_significance(xquad_rows(shared_dir))
    return write_version(data_root, "xq-sig", {"significance": rows}, parents=[xquad_docs], num_shards=2)
