"""Every table wikimix stores: one pyarrow schema each, with a doc string per field.

Keys (see ../shared/ARCHITECTURE.md):
  pages        (wiki, page_id, rev_id)
  sections     (wiki, page_id, rev_id, section_idx, paragraph_idx)
  fetch_log    (wiki, lang, requested_title)
  alignments   (concept, unit, lang_a, key_a, lang_b, key_b)
  documents    doc_id
  significance (doc_id, ranker)
  lid          (doc_id, segment_idx)
  tokens       doc_id; row for row with the text table it was tokenised from (training/token_table.py)

Derived signals (significance, lid) live in their own attribute tables keyed by doc_id, never written back into
`documents` (dolma's attributes). The schema fingerprint in a manifest covers names, types and nullability,
not the docs, so rewording a doc does not invalidate stored data.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from wikimix.errors import WikimixError


class SchemaError(WikimixError):
    """Rows that do not fit a table's schema, or a table name nobody defined."""


def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


UTC_TS = pa.timestamp("ms", tz="UTC")  # Parquet has no second resolution

LANGLINK = pa.struct(
    [
        _f("lang", pa.string(), "language code of the linked article as the wiki spells it (e.g. 'gsw')"),
        _f("title", pa.string(), "title of the linked article in that language"),
        _f("url", pa.string(), "full URL of the linked article; its host names the target wiki"),
    ]
)

PAGES = pa.schema(
    [
        _f("wiki", pa.string(), "wiki id, e.g. 'ukwiki' (dbname where known)", nullable=False),
        _f("lang", pa.string(), "content language code of the wiki, e.g. 'uk'", nullable=False),
        _f("page_id", pa.int64(), "page id on that wiki", nullable=False),
        _f(
            "rev_id", pa.int64(), "revision id the wikitext was taken from (pins the content)", nullable=False
        ),
        _f("title", pa.string(), "page title as the wiki displays it", nullable=False),
        _f(
            "concept",
            pa.string(),
            "cross-language concept this page belongs to (the seed title or table row)",
        ),
        _f("url", pa.string(), "canonical URL of the page"),
        _f("timestamp", UTC_TS, "revision timestamp"),
        _f("wikitext", pa.large_string(), "raw wikitext of the revision", nullable=False),
        _f("fetched_at", UTC_TS, "when wikimix read it"),
        _f("source", pa.string(), "'api' or 'dump'"),
        _f("redirected_from", pa.string(), "title that was requested when it redirected here, else null"),
        _f("langlinks", pa.list_(LANGLINK), "interlanguage links of this revision"),
    ]
)

SECTIONS = pa.schema(
    [
        _f("wiki", pa.string(), "wiki id of the page", nullable=False),
        _f("lang", pa.string(), "content language code", nullable=False),
        _f("page_id", pa.int64(), "page id", nullable=False),
        _f("rev_id", pa.int64(), "revision id", nullable=False),
        _f("concept", pa.string(), "concept of the page (copied from pages for grouping)"),
        _f("title", pa.string(), "page title"),
        _f("section_idx", pa.int32(), "order of the section in the page; 0 is the lead", nullable=False),
        _f("paragraph_idx", pa.int32(), "order of the paragraph within its section", nullable=False),
        _f("level", pa.int8(), "heading level: 1 for the lead, 2 for ==H==, 3 for ===H===, ..."),
        _f("heading", pa.string(), "plain-text heading; '' for the lead"),
        _f("parent", pa.int32(), "section_idx of the enclosing section; -1 for the lead and top sections"),
        _f(
            "text",
            pa.large_string(),
            "plain text of the paragraph: no templates, refs, tables, files, categories",
        ),
        _f("links", pa.list_(pa.string()), "targets of the wikilinks in the paragraph (normalised titles)"),
        _f("numbers", pa.list_(pa.string()), "numbers written in the paragraph, normalised to ASCII digits"),
        _f("years", pa.list_(pa.int32()), "four-digit years (1000-2100) mentioned in the paragraph"),
    ]
)

FETCH_LOG = pa.schema(
    [
        _f("wiki", pa.string(), "wiki id asked", nullable=False),
        _f("lang", pa.string(), "language code asked"),
        _f("concept", pa.string(), "concept the request was for"),
        _f("requested_title", pa.string(), "title as requested", nullable=False),
        _f(
            "status",
            pa.string(),
            "ok | redirect | missing | invalid | disambiguation | error",
            nullable=False,
        ),
        _f("detail", pa.string(), "one-line explanation (redirect target, API error code, ...)"),
        _f("page_id", pa.int64(), "page id when resolved"),
        _f("rev_id", pa.int64(), "revision id when resolved"),
        _f("logged_at", UTC_TS, "when the outcome was recorded"),
    ]
)

ALIGNMENTS = pa.schema(
    [
        _f("concept", pa.string(), "concept both units belong to", nullable=False),
        _f("unit", pa.string(), "'section' | 'paragraph' | 'sentence'", nullable=False),
        _f("lang_a", pa.string(), "language of side a", nullable=False),
        _f(
            "key_a",
            pa.string(),
            "unit key on side a: 'wiki:page_id:rev_id:section[:paragraph[:sentence]]'",
            nullable=False,
        ),
        _f("lang_b", pa.string(), "language of side b; null when side a is unaligned"),
        _f("key_b", pa.string(), "unit key on side b; null when side a is unaligned (kept and marked)"),
        _f("score", pa.float32(), "alignment confidence in [0, 1]; 0 for unaligned units"),
        _f("evidence", pa.string(), "JSON object: the anchors, position, length ratio and similarities used"),
    ]
)

SEGMENT = pa.struct(
    [
        _f("start", pa.int32(), "character offset of the segment in documents.text (inclusive)"),
        _f("end", pa.int32(), "character offset of the segment end (exclusive)"),
        _f("lang", pa.string(), "intended language of the segment"),
        _f("lid_lang", pa.string(), "language fastText LID detected (mapped to the same code system)"),
        _f("lid_prob", pa.float32(), "LID probability of lid_lang"),
        _f("wiki", pa.string(), "source wiki"),
        _f("page_id", pa.int64(), "source page"),
        _f("rev_id", pa.int64(), "source revision"),
        _f("section_idx", pa.int32(), "source section"),
        _f("paragraph_idx", pa.int32(), "source paragraph"),
        _f("sentence_idx", pa.int32(), "source sentence within the paragraph"),
    ]
)

CS_METRICS = pa.struct(
    [
        _f("cmi", pa.float32(), "Code-Mixing Index (Das & Gambaeck 2014), 0..100"),
        _f("m_index", pa.float32(), "Multilingual index (Guzman et al. 2017), 0..1"),
        _f("i_index", pa.float32(), "Integration index: switch points / (n - 1), 0..1"),
        _f("burstiness", pa.float32(), "burstiness of language spans (sigma - mu) / (sigma + mu), -1..1"),
        _f("lang_entropy", pa.float32(), "entropy (bits) of the token-level language distribution"),
        _f("mean_segment_len", pa.float32(), "mean monolingual span length in tokens"),
        _f("n_langs", pa.int32(), "distinct languages in the document"),
        _f("n_switches", pa.int32(), "language switch points"),
        _f("lid_agreement", pa.float32(), "share of segments whose LID language equals the intended one"),
    ]
)

DOCUMENTS = pa.schema(
    [
        _f("doc_id", pa.string(), "stable id: hash of concept, policy, seed and sources", nullable=False),
        _f("concept", pa.string(), "concept the document is about"),
        _f("policy", pa.string(), "mixing policy, e.g. 'uniform', 'weighted', 'curriculum:sentence'"),
        _f("granularity", pa.string(), "'sentence' | 'clause' | 'word' | 'monolingual'"),
        _f("seed", pa.int64(), "seed the document was drawn with (deterministic per seed)"),
        _f("langs", pa.list_(pa.string()), "languages used, in order of first appearance"),
        _f("text", pa.large_string(), "the code-switched text", nullable=False),
        _f("segments", pa.list_(SEGMENT), "per-segment language, span and provenance"),
        _f("metrics", CS_METRICS, "code-switching metrics of this document"),
    ]
)

SIG_SPAN = pa.struct(
    [
        _f("start", pa.int32(), "character offset of the token in documents.text"),
        _f("end", pa.int32(), "character end offset (exclusive)"),
        _f("score", pa.float32(), "significance: how much removing the token moves the embedding"),
        _f("removal_rank", pa.int32(), "0 = removed first (least significant)"),
    ]
)

SIGNIFICANCE = pa.schema(
    [
        _f("doc_id", pa.string(), "documents.doc_id this attribute row belongs to", nullable=False),
        _f("ranker", pa.string(), "'loo' | 'greedy' | 'stat'", nullable=False),
        _f("ranker_version", pa.string(), "version of the ranker's algorithm"),
        _f("encoder", pa.string(), "sentence encoder name or path ('' for stat)"),
        _f("encoder_hash", pa.string(), "sha256 prefix of the encoder's weights"),
        _f("spans", pa.list_(SIG_SPAN), "one entry per token, in text order"),
    ]
)

LID = pa.schema(
    [
        _f("doc_id", pa.string(), "documents.doc_id this attribute row belongs to", nullable=False),
        _f(
            "segment_idx",
            pa.int32(),
            "index into documents.segments (0 = whole text when none)",
            nullable=False,
        ),
        _f("start", pa.int32(), "character offset of the segment in documents.text"),
        _f("end", pa.int32(), "character end offset (exclusive)"),
        _f("intended", pa.string(), "ISO 639-3 of the segment's intended language (null if unknown)"),
        _f("lang", pa.string(), "decided language, ISO 639-3 ('und' when no identifier is sure)"),
        _f(
            "match",
            pa.string(),
            "'exact' | 'macro' (same macrolanguage only) | 'none'; null without intended",
        ),
        _f("heliport", pa.string(), "heliport's label (ISO 639-3, or 'und' below its confidence threshold)"),
        _f("heliport_score", pa.float32(), "heliport's confidence (higher is surer)"),
        _f("lid176", pa.string(), "lid.176's label mapped to ISO 639-3: the second opinion"),
        _f("lid176_prob", pa.float32(), "lid.176's probability of its label"),
        _f(
            "cld2", pa.string(), "CLD2's label mapped to ISO 639-3 ('und' unless reliable): the third opinion"
        ),
        _f("cld2_score", pa.float32(), "CLD2's normalized score of its label"),
        _f("identifier", pa.string(), "identifier versions and decision rule that produced the row"),
    ]
)

TOKENS = pa.schema(
    [
        _f(
            "doc_id",
            pa.string(),
            "id of the source row: documents.doc_id, or 'wiki:page_id' for a sections row",
            nullable=False,
        ),
        _f(
            "unit",
            pa.string(),
            "split unit of the row: its concept, else its id (training/split.py)",
            nullable=False,
        ),
        _f(
            "n_tokens",
            pa.int32(),
            "number of token ids (read alone to count windows without the ids)",
            nullable=False,
        ),
        _f(
            "ids",
            pa.list_(pa.int32()),
            "token ids of the row's text, no special tokens added",
            nullable=False,
        ),
        _f("starts", pa.list_(pa.int32()), "character offset in the text where each token starts"),
        _f("ends", pa.list_(pa.int32()), "character offset where each token ends (exclusive)"),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "pages": PAGES,
    "sections": SECTIONS,
    "fetch_log": FETCH_LOG,
    "alignments": ALIGNMENTS,
    "documents": DOCUMENTS,
    "significance": SIGNIFICANCE,
    "lid": LID,
    "tokens": TOKENS,
}


def schema_for(table: str) -> pa.Schema:
    """The schema of `table`; a one-line error naming the known tables otherwise."""
    try:
        return TABLES[table]
    except KeyError:
        raise SchemaError(f"unknown table {table!r} (known: {', '.join(sorted(TABLES))})") from None


def fingerprint(schema: pa.Schema) -> str:
    """sha256 prefix over field names, types and nullability (docs excluded)."""
    # Parquet names list items 'element' where Arrow says 'item': the same type either way.
    text = "|".join(f"{f.name}:{f.type}:{f.nullable}" for f in schema).replace("<element:", "<item:")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_arrow(table: str, rows: pa.Table | list[dict]) -> pa.Table:
    """Rows (an Arrow table or a list of dicts) as an Arrow table of exactly `table`'s schema."""
    schema = schema_for(table)
    try:
        if isinstance(rows, pa.Table):
            missing = [n for n in schema.names if n not in rows.column_names and not schema.field(n).nullable]
            if missing:
                raise SchemaError(f"table {table!r}: rows lack required field(s) {', '.join(missing)}")
            extra = [n for n in rows.column_names if n not in schema.names]
            if extra:
                raise SchemaError(f"table {table!r}: unknown field(s) {', '.join(extra)}")
            cols = [
                rows.column(n) if n in rows.column_names else pa.nulls(rows.num_rows, schema.field(n).type)
                for n in schema.names
            ]
            return pa.Table.from_arrays(cols, schema=schema)
        for i, row in enumerate(rows):
            extra = set(row) - set(schema.names)
            if extra:
                raise SchemaError(f"table {table!r}: row {i} has unknown field(s) {', '.join(sorted(extra))}")
            for name in schema.names:
                if row.get(name) is None and not schema.field(name).nullable:
                    raise SchemaError(f"table {table!r}: row {i} lacks required field {name!r}")
        return pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(f"table {table!r}: rows do not fit the schema: {exc}") from None
