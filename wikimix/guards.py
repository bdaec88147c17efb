"""Guards against losing data or silently producing nothing: safe names, owned directories, empty steps.

Language codes and wiki ids arrive from outside (a dump's `xml:lang` and `<dbname>`, a server's siteinfo
`lang` and `wikiid`, `--langs`) and end up as directory and file names (the local family's wiki
directories and SQLite files, the fetcher's staging files). Each must match a strict pattern before it
touches the file system. Dataset and version names are storage's to check (`storage.store`).

wikimix deletes a directory only when it created it: the directory lies directly inside wikimix's own
directory and carries the marker file written when it was made.

A step whose result is empty (or whose every input failed) raises EmptyResultError before its commit, so
the dataset's `latest` stays where it was. Every failure is a one-line WikimixError (exit 2).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from wikimix.errors import WikimixError

# MediaWiki language codes as wikis use them: en, als, simple, zh-classical, be-tarask, zh-min-nan, be-x-old
LANG_RE = re.compile(r"^[a-z]{2,8}(?:-[a-z0-9]{1,12}){0,3}$")
# $wgDBname, or `dbname-prefix` when a table prefix is set: enwiki, be_x_oldwiki, my_wiki, wikidb-mw_
WIKI_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,63}(?:-[A-Za-z0-9_]{1,63})?$")
CREATED_MARKER = ".wikimix-created"


class UnsafePathError(WikimixError):
    """A name that cannot safely become a path, or a directory wikimix did not create and will not delete."""


class EmptyResultError(WikimixError):
    """A step produced nothing (or every input failed); nothing was committed."""


def check_lang(lang: str, source: str = "") -> str:
    """A language code that is safe as a directory name, or UnsafePathError naming where it came from."""
    if not isinstance(lang, str) or not LANG_RE.fullmatch(lang):
        origin = f" from {source}" if source else ""
        raise UnsafePathError(
            f"bad language code {lang!r}{origin}: expected a lowercase MediaWiki code such as en, als, "
            "zh-classical or be-tarask"
        )
    return lang


def check_wiki_id(wiki_id: str, source: str = "") -> str:
    """A wiki id (dbname) that is safe as a file name, or UnsafePathError naming where it came from."""
    if not isinstance(wiki_id, str) or not WIKI_ID_RE.fullmatch(wiki_id):
        origin = f" from {source}" if source else ""
        raise UnsafePathError(
            f"bad wiki id {wiki_id!r}{origin}: expected letters, digits and _ (one - before a table "
            "prefix), such as enwiki or be_x_oldwiki"
        )
    return wiki_id


def mark_created(directory: Path, **facts: str) -> None:
    """Record that wikimix made this directory (the only kind it will ever delete)."""
    facts = {"created_by": "wikimix", "created_at": datetime.now(UTC).isoformat(), **facts}
    (directory / CREATED_MARKER).write_text(json.dumps(facts) + "\n")


def remove_created_dir(path: Path, parent: Path, listed: Iterable[Path] = ()) -> None:
    """Delete `path` only if it is a real directory directly inside `parent` that wikimix created.

    Created means: it carries the marker, or `listed` (wikimix's own state, e.g. a family.json written
    before the marker existed) names it. Anything else (a symlink, a file, a user's directory, a path
    that resolves elsewhere) is refused with UnsafePathError and left untouched.
    """
    parent = parent.resolve()
    if path.is_symlink() or not path.is_dir():
        raise UnsafePathError(f"refusing to replace {path}: not a directory wikimix created; move it away")
    resolved = path.resolve()
    if resolved.parent != parent:
        raise UnsafePathError(f"refusing to delete {resolved}: it is not directly inside {parent}")
    owned = (resolved / CREATED_MARKER).is_file() or resolved in {Path(p).resolve() for p in listed}
    if not owned:
        raise UnsafePathError(
            f"refusing to delete {resolved}: wikimix did not create it (no {CREATED_MARKER}); "
            "move it away or choose another directory"
        )
    shutil.rmtree(resolved)


def written_rows(writer, table: str) -> int:
    """Rows in the shards of `table` that a VersionWriter has written so far (read from Parquet footers)."""
    import pyarrow.parquet as pq

    from storage.store import PART_RE

    directory = f"{writer.ref.path}/{table}"
    if not writer.fs.exists(directory):
        return 0
    total = 0
    for path in writer.fs.ls(directory, detail=False):
        if PART_RE.match(path.rstrip("/").rsplit("/", 1)[-1]):
            with writer.fs.open(path, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
    return total


def require_rows(writer, table: str, step: str, detail: str = "", keep_uncommitted: bool = False) -> int:
    """The rows written to `table`; EmptyResultError (nothing committed) when there are none.

    Called by every step right before `writer.commit()`, so an empty result never becomes `latest`.
    The uncommitted version this writer created is removed, unless `keep_uncommitted` (a failed fetch
    leaves its log there for the user to read; the error names it).
    """
    rows = written_rows(writer, table)
    if rows == 0:
        if not keep_uncommitted:
            writer.discard()
        why = f": {detail}" if detail else ""
        raise EmptyResultError(
            f"{step} produced no {table} rows{why}; nothing committed ({writer.dataset} latest unchanged)"
        )
    return rows
