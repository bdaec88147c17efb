"""What a crawl need not fetch again: content staged by an interrupted run of the same version
(resume), and pages and sections already stored in the previous committed version (reuse).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from wikimix.guards import check_wiki_id


class Staging:
    """Content batches of an uncommitted version, one Parquet file each, under <version>/.staging/."""

    def __init__(self, writer):
        self.fs = writer.fs
        self.dir = writer.ref.path + "/.staging"

    def write(self, rows: list[dict]) -> dict[tuple[str, int], dict]:
        import pyarrow.parquet as pq

        from storage.schemas import to_arrow

        if not rows:
            return {}
        key = hashlib.sha256(",".join(f"{r['wiki']}:{r['rev_id']}" for r in rows).encode()).hexdigest()[:16]
        self.fs.makedirs(self.dir, exist_ok=True)
        final = f"{self.dir}/{check_wiki_id(rows[0]['wiki'])}-{key}.parquet"
        tmp = f"{self.dir}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as fh:
            pq.write_table(to_arrow("pages", rows), fh)
        self.fs.mv(tmp, final)
        return {(r["wiki"], r["rev_id"]): r for r in rows}

    def load(self, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], dict]:
        import pyarrow.parquet as pq

        have: dict[tuple[str, int], dict] = {}
        if not self.fs.exists(self.dir):
            return have
        for path in sorted(self.fs.ls(self.dir, detail=False)):
            if not path.endswith(".parquet") or path.rsplit("/", 1)[-1].startswith("."):
                continue
            with self.fs.open(path, "rb") as fh:
                for row in pq.read_table(fh).to_pylist():
                    if (row["wiki"], row["rev_id"]) in wanted:
                        have[(row["wiki"], row["rev_id"])] = row
        return have

    def clear(self) -> None:
        if self.fs.exists(self.dir):
            self.fs.rm(self.dir, recursive=True)


def newest_uncommitted(root: str | None, dataset: str) -> str | None:
    import fsspec

    from storage.store import MANIFEST, data_root

    fs, base = fsspec.core.url_to_fs(data_root(root))
    ddir = f"{base.rstrip('/')}/{dataset}"
    if not fs.exists(ddir):
        return None
    open_versions = [
        p.rstrip("/").rsplit("/", 1)[-1]
        for p in fs.ls(ddir, detail=False)
        if fs.isdir(p) and not fs.exists(f"{p}/{MANIFEST}") and fs.exists(f"{p}/.staging")
    ]
    return max(open_versions) if open_versions else None


def previous_version(root: str | None, dataset: str, previous: Any):
    from storage.store import StorageError, VersionRef, open_version

    if previous is None or isinstance(previous, VersionRef):
        return previous
    try:
        return open_version(root, dataset, previous)
    except StorageError:
        if previous == "latest":
            return None
        raise


def stored_pages(ref, keys: set[tuple[str, int]]) -> dict[tuple[str, int], dict]:
    """Stored page contents of a previous version for the given (wiki, rev_id) keys."""
    import polars as pl

    if not keys:
        return {}
    rev_ids = sorted({rev for _, rev in keys})
    cols = ["wiki", "rev_id", "timestamp", "wikitext", "fetched_at"]
    frame = ref.scan("pages").select(cols).filter(pl.col("rev_id").is_in(rev_ids)).collect()
    return {(r["wiki"], r["rev_id"]): r for r in frame.to_dicts() if (r["wiki"], r["rev_id"]) in keys}


def stored_sections(ref, keys: set[tuple[str, int]]) -> dict[tuple[str, int], list[dict]]:
    """Stored sections rows of a previous version, grouped by (wiki, rev_id)."""
    import polars as pl

    if not keys:
        return {}
    frame = ref.scan("sections").filter(pl.col("rev_id").is_in(sorted({rev for _, rev in keys}))).collect()
    grouped: dict[tuple[str, int], list[dict]] = {}
    for row in frame.to_dicts():
        key = (row["wiki"], row["rev_id"])
        if key in keys:
            grouped.setdefault(key, []).append(row)
    return grouped
