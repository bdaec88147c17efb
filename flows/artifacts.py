"""What a wikimix run shows in the Prefect UI: keyed artifacts, so each key keeps its history across runs.

Keys are `<corpus>-<what>` (lowercase letters, digits, dashes), e.g. `sample-dataset-card`:
  <corpus>-dataset-card            table: per language pages, sections, words
  <corpus>-codeswitch-metrics      table: code-switching metrics per mixing policy and overall
  <corpus>-example-documents       markdown: a few code-switched documents, segment by segment
  <corpus>-significance-examples   markdown: the noising order of a few documents
  <corpus>-<dataset>-location      link: where a dataset version's shards are
  <corpus>-training-curves         image: loss curves of every trained variant
  <corpus>-evaluation              table: the comparison of every variant
and a progress artifact during long tasks. Each helper returns the key it wrote.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from storage.store import VersionRef

# Words of space-delimited scripts, and each character of scripts written without spaces.
WORD_RE = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]|[^\s\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}]+"


def artifact_key(*parts: str) -> str:
    """A valid artifact key: lowercase letters, digits and single dashes."""
    key = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    return key or "wikimix"


def _round(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def dataset_card(corpus: str, wiki: VersionRef) -> str:
    """Table artifact: pages, sections (paragraphs) and words per language, with a total row."""
    page_counts = wiki.scan("pages").group_by("lang").agg(pl.len().alias("pages"))
    section_counts = (
        wiki.scan("sections")
        .group_by("lang")
        .agg(
            pl.struct("page_id", "section_idx").n_unique().alias("sections"),
            pl.len().alias("paragraphs"),
            pl.col("text").str.count_matches(WORD_RE).sum().alias("words"),
        )
    )
    table = (
        page_counts.join(section_counts, on="lang", how="full", coalesce=True)
        .fill_null(0)
        .sort("lang")
        .collect()
    )
    rows = table.to_dicts()
    rows.append({"lang": "all", **{c: int(table[c].sum()) for c in table.columns if c != "lang"}})
    key = artifact_key(corpus, "dataset-card")
    create_table_artifact(
        table=rows,
        key=key,
        description=f"Dataset card of {corpus}: {wiki}. Words: space-delimited words, "
        "and one per character in scripts written without spaces.",
    )
    return key


def codeswitch_metrics(corpus: str, documents: VersionRef) -> str:
    """Table artifact: mean code-switching metrics per mixing policy, and over all documents."""
    scan = documents.scan("documents").select("policy", "metrics").unnest("metrics")
    names = [c for c in scan.collect_schema().names() if c != "policy"]
    aggs = [pl.len().alias("documents"), *[pl.col(n).mean().alias(n) for n in names]]
    per_policy = scan.group_by("policy").agg(aggs).sort("policy").collect()
    overall = scan.select(aggs).collect().with_columns(pl.lit("all").alias("policy"))
    table = pl.concat([per_policy, overall.select(per_policy.columns)], how="vertical_relaxed")
    rows = [{k: _round(v) for k, v in row.items()} for row in table.to_dicts()]
    key = artifact_key(corpus, "codeswitch-metrics")
    create_table_artifact(
        table=rows,
        key=key,
        description=f"Code-switching metrics of {documents} (means): CMI (Das & Gambaeck 2014), "
        "M- and I-index (Guzman et al. 2017), burstiness, language entropy, LID agreement.",
    )
    return key


def sample_documents(corpus: str, documents: VersionRef, n: int = 3) -> str:
    """Markdown artifact: the first `n` documents, one line per segment with its language and LID."""
    rows = documents.scan("documents").select("doc_id", "concept", "policy", "text", "segments").head(n)
    parts = [f"# Sample code-switched documents of `{documents}`\n"]
    for doc in rows.collect().to_dicts():
        parts.append(f"## {doc['concept']} (`{doc['doc_id']}`, policy {doc['policy']})\n")
        parts.append("| # | lang | LID | text |\n|---|---|---|---|")
        for i, seg in enumerate(doc["segments"] or []):
            text = doc["text"][seg["start"] : seg["end"]].replace("|", "\\|").replace("\n", " ")
            lid = f"{seg['lid_lang']} {seg['lid_prob']:.2f}" if seg.get("lid_lang") else ""
            parts.append(f"| {i} | {seg['lang']} | {lid} | {text} |")
        parts.append("")
    key = artifact_key(corpus, "example-documents")
    create_markdown_artifact(markdown="\n".join(parts), key=key, description=f"Samples of {documents}")
    return key


def noising_steps(text: str, spans: list[dict], fractions=(0.25, 0.5, 0.75)) -> list[str]:
    """The text with the least significant tokens blanked out, at each fraction of tokens removed."""
    ordered = sorted(spans, key=lambda s: s["removal_rank"])
    steps = []
    for fraction in fractions:
        removed = ordered[: round(len(ordered) * fraction)]
        chars = list(text)
        for span in removed:
            for i in range(span["start"], span["end"]):
                if not chars[i].isspace():
                    chars[i] = "_"
        steps.append("".join(chars))
    return steps


def significance_examples(corpus: str, documents: VersionRef, significance: VersionRef, n: int = 2) -> str:
    """Markdown artifact: for a few documents, the text as the least significant 25/50/75% are noised."""
    sig = significance.scan("significance").select("doc_id", "ranker", "spans").head(n * 4).collect()
    texts = dict(
        documents.scan("documents")
        .filter(pl.col("doc_id").is_in(sig["doc_id"].to_list()))
        .select("doc_id", "text")
        .collect()
        .iter_rows()
    )
    parts = [f"# Semantic significance: noising order (`{significance}`)\n"]
    for row in sig.head(n).to_dicts():
        text = texts.get(row["doc_id"], "")[:600]
        spans = [s for s in row["spans"] if s["end"] <= len(text)]
        parts.append(f"## `{row['doc_id']}` (ranker {row['ranker']})\n\n    {text}\n")
        for fraction, step in zip((25, 50, 75), noising_steps(text, spans), strict=True):
            parts.append(f"{fraction}% removed:\n\n    {step}\n")
    key = artifact_key(corpus, "significance-examples")
    create_markdown_artifact(markdown="\n".join(parts), key=key, description=f"Examples of {significance}")
    return key


def location(corpus: str, ref: VersionRef) -> str:
    """Link artifact: where a dataset version's shards are (a file:// or fsspec URL)."""
    url = ref.path if "://" in ref.path else Path(ref.path).resolve().as_uri()
    tables = ", ".join(f"{t} ({len(ref.files(t))} shards)" for t in ref.tables())
    key = artifact_key(corpus, ref.dataset.removeprefix(corpus), "location")
    create_link_artifact(link=url, link_text=str(ref), key=key, description=f"{ref}: {tables}")
    return key


def report_link(corpus: str, directory: str | Path) -> str:
    """Link artifact: the evaluation report directory (tables, plots, completions)."""
    key = artifact_key(corpus, "evaluation-report")
    url = Path(directory).resolve().as_uri()
    create_link_artifact(link=url, link_text=str(directory), key=key, description="Evaluation report files")
    return key


class Progress:
    """A progress artifact for a long task: `progress.update(done, total)`."""

    def __init__(self, key: str, description: str):
        self.description = description
        self.id: UUID = create_progress_artifact(progress=0.0, key=artifact_key(key), description=description)

    def update(self, done: int, total: int) -> None:
        update_progress_artifact(self.id, progress=100.0 * done / max(total, 1))


def image(key: str, png: str | Path, description: str) -> str:
    """Image artifact of a PNG file, embedded as a data URL (the UI needs no file server to show it)."""
    url = "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode()
    create_image_artifact(image_url=url, key=artifact_key(key), description=f"{description} (file: {png})")
    return artifact_key(key)


def comparison_table(name: str, rows: list[dict[str, Any]], description: str) -> str:
    """Table artifact: one row per variant (the evaluation comparison)."""
    key = artifact_key(name, "evaluation")
    create_table_artifact(
        table=[{k: _round(v) for k, v in r.items()} for r in rows], key=key, description=description
    )
    return key
