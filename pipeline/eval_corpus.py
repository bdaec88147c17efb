"""One evaluation corpus from every source the pipeline reads: wiki documents, XQuAD, SIB-200.

Each source is a `documents` version built by its own step (pipeline/codeswitch.py from the dumps or a
wiki, pipeline/xquad.py, pipeline/sib200.py); `merge_documents` writes them as one version, one shard per
source with its rows unchanged, its parents the sources. Concepts keep their source's naming (wiki
concepts; `Amazon rainforest` for an XQuAD article, the way wiki concepts are named; `sib200:<index_id>`),
so the concept split (training/split.py) keeps every translation of a text in one split across sources, and
the test split holds the concepts of all three.

    ref = merge_documents([wiki_docs, xquad_docs, sib200_docs], VersionWriter(root, "eval-docs"))
"""

from __future__ import annotations

from storage.store import VersionRef, VersionWriter
from wikimix.errors import WikimixError


def merge_documents(sources: list[VersionRef], writer: VersionWriter) -> dict[str, int]:
    """Write every source's documents as shard i of len(sources), after checking no doc_id repeats;
    returns {source: rows}. Resumable: a shard already written is kept."""
    if not sources:
        raise WikimixError("no source version to merge")
    seen: dict[str, str] = {}
    for ref in sources:
        for doc_id in ref.read("documents", ["doc_id"]).column("doc_id").to_pylist():
            if doc_id in seen:
                raise WikimixError(f"doc_id {doc_id} is in both {seen[doc_id]} and {ref}")
            seen[doc_id] = str(ref)
    report = {}
    for i, ref in enumerate(sources):
        table = ref.read("documents")
        if not writer.has_shard("documents", i, len(sources)):
            writer.write_shard("documents", i, len(sources), table)
        report[str(ref)] = table.num_rows
    return report
