"""Versioned Parquet shards with a manifest: the one place that knows how data lands on disk.

Layout under a data root (a local path or an fsspec URL; default $WIKIMIX_DATA or ./data):

    <root>/<dataset>/<version>/<table>/part-00000-of-00004.parquet
    <root>/<dataset>/<version>/manifest.json        <- written last: the commit point

A shard is written to a hidden temp file and renamed into place, so a shard file that exists is complete
(its existence is the datatrove-style completion marker a resumed run skips on). A version is readable
only once its manifest exists; a crash at any moment leaves the previous state or the new complete one.
Committed versions are immutable.

    writer = VersionWriter(root, "wiki", params={...}, parents=[ref])
    writer.write_shard("pages", rank, world_size, rows)   # any number of ranks, any order
    ref = writer.commit()                                   # hashes every file, writes manifest.json
    ref.scan("pages")  /  ref.to_hf("pages")  /  ref.iter_batches("pages", rank=r, world_size=w)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

import wikimix
from storage.schemas import SchemaError, fingerprint, schema_for, to_arrow
from wikimix.errors import WikimixError

MANIFEST = "manifest.json"
PART_RE = re.compile(r"^part-(\d{5})-of-(\d{5})\.parquet$")
ROW_GROUP_ROWS = 8192  # ~ a few MB of wikitext per group: good scan granularity, bounded memory
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,127}$")


class StorageError(WikimixError):
    """A data root, dataset, version or shard that cannot be read or written as asked."""


def data_root(root: str | os.PathLike | None = None) -> str:
    """The data root: the argument, else $WIKIMIX_DATA, else ./data."""
    return str(root) if root is not None else os.environ.get("WIKIMIX_DATA", "./data")


def _fs(root: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        return fsspec.core.url_to_fs(root)
    except (ValueError, ImportError) as exc:
        raise StorageError(f"cannot open data root {root!r}: {exc}") from None


def _check_name(kind: str, name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise StorageError(f"bad {kind} name {name!r}: use letters, digits and . _ = + - (max 128)")
    return name


def part_name(index: int, num_shards: int) -> str:
    return f"part-{index:05d}-of-{num_shards:05d}.parquet"


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{wikimix.__version__}+{sha}" if sha else wikimix.__version__


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]


def new_version_id(params: dict[str, Any] | None = None) -> str:
    """Time-ordered, unique id: 20261122T133512Z-<params hash>-<random>.

    The random part keeps two writers started in the same second (same parameters) apart; a run that
    must resume passes its version explicitly.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{stamp}-{params_hash(params or {})}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class VersionRef:
    """A committed dataset version: `root/dataset/version` with a manifest."""

    root: str
    dataset: str
    version: str

    def __str__(self) -> str:
        return f"{self.dataset}@{self.version}"

    @property
    def path(self) -> str:
        return _join(self.root, self.dataset, self.version)

    def manifest(self) -> dict[str, Any]:
        """The committed manifest, checked for the shape `commit` writes (one-line StorageError if not)."""
        fs, base = _fs(self.path)
        try:
            with fs.open(_join(base, MANIFEST), "r") as fh:
                manifest = json.load(fh)
        except FileNotFoundError:
            raise StorageError(f"{self}: no manifest at {self.path} (not committed)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StorageError(f"{self}: corrupt manifest ({exc})") from None
        problem = manifest_problem(manifest)
        if problem:
            raise StorageError(f"{self}: malformed manifest at {_join(self.path, MANIFEST)}: {problem}")
        return manifest

    def tables(self) -> list[str]:
        return sorted(self.manifest()["tables"])

    def files(self, table: str) -> list[str]:
        """Paths (or URLs) of the table's shards, in shard order."""
        return [path for path, _ in self._shards(table)]

    def _shards(self, table: str) -> list[tuple[str, dict[str, Any]]]:
        """(path, manifest facts: rows, bytes, sha256) of the table's shards, in shard order."""
        tables = self.manifest()["tables"]
        if table not in tables:
            raise StorageError(f"{self} has no table {table!r} (has: {', '.join(sorted(tables)) or 'none'})")
        return [(_join(self.path, table, f["name"]), f) for f in tables[table]["files"]]

    def check_shards(self, table: str) -> None:
        """Check every shard of the table against the manifest's sha256 (see check_shard), e.g. the source
        of a derived table read in its place."""
        fs, _ = _fs(self.root)
        for path, facts in self._shards(table):
            check_shard(fs, path, facts, self)

    def num_rows(self, table: str) -> int:
        return int(self.manifest()["tables"][table]["rows"])

    def scan(self, table: str):
        """A lazy polars scan over every shard of the table."""
        import polars as pl

        files = self.files(table)
        if not files:
            return pl.LazyFrame(schema=pl.from_arrow(schema_for(table).empty_table()).schema)
        return pl.scan_parquet(files)

    def to_hf(self, table: str):
        """The table as a Hugging Face `datasets.Dataset` (Arrow-backed, memory-mapped)."""
        import datasets

        files = self.files(table)
        if not files:
            return datasets.Dataset(schema_for(table).empty_table())
        return datasets.load_dataset("parquet", data_files=files, split="train")

    def read(self, table: str, columns: list[str] | None = None, verify: bool = False) -> pa.Table:
        """The whole table in memory (small tables and tests; stream big ones with iter_batches).
        With `verify`, each shard is first checked against the manifest's sha256 (see check_shard)."""
        fs, _ = _fs(self.root)
        parts = []
        for path, facts in self._shards(table):
            if verify:
                check_shard(fs, path, facts, self)
            parts.append(self._read_file(path, columns))
        if not parts:
            return schema_for(table).empty_table()
        return pa.concat_tables(parts)

    def iter_batches(
        self,
        table: str,
        batch_size: int = 1024,
        columns: list[str] | None = None,
        rank: int = 0,
        world_size: int = 1,
        verify: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        """Stream record batches of the shards this rank owns (shard i goes to rank i % world_size).
        With `verify`, each shard is checked against the manifest's sha256 before it is read (training
        and evaluation do: a file swapped after commit must not be trained or scored on)."""
        fs, _ = _fs(self.root)
        for i, (path, facts) in enumerate(self._shards(table)):
            if i % world_size != rank:
                continue
            if verify:
                check_shard(fs, path, facts, self)
            try:
                with fs.open(_strip(fs, path), "rb") as fh:
                    yield from pq.ParquetFile(fh).iter_batches(batch_size=batch_size, columns=columns)
            except (pa.ArrowInvalid, OSError) as exc:
                raise StorageError(f"corrupt or unreadable shard {path}: {exc}") from None

    def _read_file(self, path: str, columns: list[str] | None) -> pa.Table:
        fs, _ = _fs(self.root)
        try:
            with fs.open(_strip(fs, path), "rb") as fh:
                return pq.read_table(fh, columns=columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StorageError(f"corrupt or unreadable shard {path}: {exc}") from None


_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a manifest's shape (None when it has the shape `commit` writes): the fields
    readers index into must be there with the right types, and file and table names must be plain names
    (they become paths)."""
    if not isinstance(manifest, dict):
        return f"expected a JSON object, got {type(manifest).__name__}"
    for key in ("dataset", "version", "created_at"):
        if not isinstance(manifest.get(key), str):
            return f"{key!r} is missing or not a string"
    parents = manifest.get("parents")
    if not isinstance(parents, list) or not all(
        isinstance(p, dict) and isinstance(p.get("dataset"), str) and isinstance(p.get("version"), str)
        for p in parents
    ):
        return "'parents' is not a list of {dataset, version}"
    if not isinstance(manifest.get("params", {}), dict):
        return "'params' is not an object"
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        return "'tables' is missing or not an object"
    for table, facts in tables.items():
        if not _NAME_RE.match(table):
            return f"bad table name {table!r}"
        if not isinstance(facts, dict) or not isinstance(facts.get("files"), list):
            return f"table {table!r} has no 'files' list"
        if not _is_count(facts.get("rows")):
            return f"table {table!r} has no row count"
        for i, f in enumerate(facts["files"]):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not PART_RE.match(f["name"]):
                return f"table {table!r} file #{i} has no part-NNNNN-of-NNNNN.parquet 'name'"
            if not isinstance(f.get("sha256"), str) or not _SHA256_RE.match(f["sha256"]):
                return f"table {table!r} file {f['name']} has no sha256 digest"
            if not (_is_count(f.get("rows")) and _is_count(f.get("bytes"))):
                return f"table {table!r} file {f['name']} lacks its rows or bytes count"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Shards whose sha256 matched the manifest in this process, by (path, size, mtime, sha256): each file is
# hashed once per run, and again only if it changes size or mtime.
_VERIFIED_SHARDS: set[tuple[str, int, str, str]] = set()


def check_shard(fs: fsspec.AbstractFileSystem, path: str, facts: dict[str, Any], ref: VersionRef) -> None:
    """Raise StorageError naming `path` unless its bytes hash to the manifest's sha256 (cached per
    process; see _VERIFIED_SHARDS)."""
    local = _strip(fs, path)
    try:
        info = fs.info(local)
    except FileNotFoundError:
        raise StorageError(
            f"{ref}: shard {path} is missing (run `wikimix shards verify {ref.path}`)"
        ) from None
    size = int(info.get("size") or 0)
    key = (path, size, str(info.get("mtime", info.get("LastModified", ""))), facts["sha256"])
    if key in _VERIFIED_SHARDS:
        return
    if size != facts["bytes"] or _sha256(fs, local) != facts["sha256"]:
        raise StorageError(
            f"{ref}: shard {path} does not match the manifest (sha256 differs: changed after commit; "
            f"run `wikimix shards verify {ref.path}`)"
        )
    _VERIFIED_SHARDS.add(key)


def _sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    try:
        with fs.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise StorageError(f"unreadable shard {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _join(*parts: str) -> str:
    return "/".join([parts[0].rstrip("/")] + [p.strip("/") for p in parts[1:]])


def _strip(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs._strip_protocol(path)


@dataclass
class ShardSink:
    """The open end of a shard being written (VersionWriter.open_shard)."""

    table: str
    writer: pq.ParquetWriter

    def write(self, rows: pa.Table | list[dict]) -> None:
        arrow = to_arrow(self.table, rows)
        if arrow.num_rows:
            self.writer.write_table(arrow, row_group_size=ROW_GROUP_ROWS)


class VersionWriter:
    """Writes one dataset version shard by shard; `commit()` writes the manifest last.

    Re-opening the same (dataset, version) before commit resumes: shards already written are kept and
    `has_shard` tells a step which to skip.
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        dataset: str,
        version: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        parents: Iterable[VersionRef] = (),
    ):
        self.root = data_root(root)
        self.dataset = _check_name("dataset", dataset)
        self.params = dict(params or {})
        self.version = _check_name("version", version or new_version_id(self.params))
        self.parents = list(parents)
        self.fs, self._base = _fs(self.root)
        self._dir = _join(self._base, self.dataset, self.version)
        if self.fs.exists(_join(self._dir, MANIFEST)):
            raise StorageError(f"{self.dataset}@{self.version} is already committed; versions are immutable")
        self._made_dataset_dir = not self.fs.exists(_join(self._base, self.dataset))
        self._made_version_dir = not self.fs.exists(self._dir)
        try:
            self.fs.makedirs(self._dir, exist_ok=True)
            probe = _join(self._dir, f".probe-{uuid.uuid4().hex}")
            with self.fs.open(probe, "wb") as fh:
                fh.write(b"")
            self.fs.rm(probe)
        except OSError as exc:
            raise StorageError(f"cannot write to data root {self.root!r}: {exc.strerror or exc}") from None

    @property
    def ref(self) -> VersionRef:
        return VersionRef(self.root, self.dataset, self.version)

    def discard(self) -> None:
        """Remove this uncommitted version when this writer created it (a failed step leaves no debris);
        a version directory resumed from an earlier run keeps its shards for the next try."""
        if self.fs.exists(_join(self._dir, MANIFEST)):
            raise StorageError(f"{self.dataset}@{self.version} is committed; versions are immutable")
        if not self._made_version_dir:
            return
        if self.fs.exists(self._dir):
            self.fs.rm(self._dir, recursive=True)
        dataset_dir = _join(self._base, self.dataset)
        if self._made_dataset_dir and self.fs.exists(dataset_dir) and not self.fs.ls(dataset_dir):
            self.fs.rmdir(dataset_dir)

    def shard_path(self, table: str, index: int, num_shards: int) -> str:
        schema_for(table)
        if not 0 <= index < num_shards:
            raise StorageError(f"shard index {index} out of range for {num_shards} shards")
        return _join(self._dir, table, part_name(index, num_shards))

    def has_shard(self, table: str, index: int, num_shards: int) -> bool:
        """Completion marker: the shard's final file exists only once it was fully written."""
        return self.fs.exists(self.shard_path(table, index, num_shards))

    def write_shard(
        self, table: str, index: int, num_shards: int, rows: pa.Table | list[dict] | Iterable[pa.Table]
    ) -> str:
        """Write one shard atomically (temp file, fsync, rename). Returns its path. `rows` may be an
        iterable of chunks (tables or lists of rows): one chunk at a time is held in memory."""
        chunks = [rows] if isinstance(rows, pa.Table | list) else rows
        with self.open_shard(table, index, num_shards) as sink:
            for chunk in chunks:
                sink.write(chunk)
        return self.shard_path(table, index, num_shards)

    @contextlib.contextmanager
    def open_shard(self, table: str, index: int, num_shards: int) -> Iterator[ShardSink]:
        """A shard written chunk by chunk (`sink.write(rows)`) and renamed into place when the block ends
        without an error (removed when it raises). Two shards open at once let one pass over the input
        feed two tables; the one opened last is completed first."""
        final = self.shard_path(table, index, num_shards)
        tmp = _join(self._dir, table, f".tmp-{uuid.uuid4().hex}-{part_name(index, num_shards)}")
        self.fs.makedirs(_join(self._dir, table), exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as fh:
                with pq.ParquetWriter(fh, schema_for(table), compression="zstd") as writer:
                    yield ShardSink(table, writer)
                fh.flush()
                if hasattr(fh, "fileno"):
                    with contextlib.suppress(OSError, ValueError, AttributeError):
                        os.fsync(fh.fileno())
            self.fs.mv(tmp, final)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    def write_table(self, table: str, rows: pa.Table | list[dict], num_shards: int = 1) -> list[str]:
        """Split rows into `num_shards` contiguous shards and write each."""
        arrow = to_arrow(table, rows)
        n = arrow.num_rows
        paths = []
        for i in range(num_shards):
            lo, hi = n * i // num_shards, n * (i + 1) // num_shards
            paths.append(self.write_shard(table, i, num_shards, arrow.slice(lo, hi - lo)))
        return paths

    def commit(self) -> VersionRef:
        """Check every table is complete, hash every shard, and write the manifest (atomically, last)."""
        tables: dict[str, Any] = {}
        for entry in sorted(self.fs.ls(self._dir, detail=False)):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(".") or not self.fs.isdir(entry):
                continue
            schema = schema_for(name)
            parts = {}
            for f in self.fs.ls(entry, detail=False):
                fname = f.rsplit("/", 1)[-1]
                m = PART_RE.match(fname)
                if m:
                    parts[fname] = (int(m.group(1)), int(m.group(2)))
            totals = {n for _, n in parts.values()}
            if len(totals) > 1:
                raise StorageError(f"{self.ref}: table {name!r} mixes shard counts {sorted(totals)}")
            if totals:
                total = totals.pop()
                missing = sorted(set(range(total)) - {i for i, _ in parts.values()})
                if missing:
                    raise StorageError(f"{self.ref}: table {name!r} lacks shard(s) {missing} of {total}")
            files = []
            for fname in sorted(parts):
                path = _join(entry, fname)
                files.append({"name": fname, **_file_facts(self.fs, path, schema)})
            tables[name] = {
                "schema_fingerprint": fingerprint(schema),
                "rows": sum(f["rows"] for f in files),
                "files": files,
            }
        manifest = {
            "dataset": self.dataset,
            "version": self.version,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),  # orders "latest"
            "code_version": code_version(),
            "params": self.params,
            "parents": [{"dataset": p.dataset, "version": p.version} for p in self.parents],
            "tables": tables,
        }
        self._remove_stale_temps()
        tmp = _join(self._dir, f".tmp-{uuid.uuid4().hex}-{MANIFEST}")
        with self.fs.open(tmp, "w") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True, default=str)
        self.fs.mv(tmp, _join(self._dir, MANIFEST))
        return self.ref

    def _remove_stale_temps(self) -> None:
        """Temp files of writers that crashed; safe at commit, when every rank has finished."""
        for path in self.fs.find(self._dir):
            if path.rsplit("/", 1)[-1].startswith(".tmp-"):
                self.fs.rm(path)


def _file_facts(fs: fsspec.AbstractFileSystem, path: str, schema: pa.Schema) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        fh.seek(0)
        try:
            meta = pq.ParquetFile(fh)
        except pa.ArrowInvalid as exc:
            raise StorageError(f"corrupt shard {path}: {exc}") from None
        if fingerprint(meta.schema_arrow) != fingerprint(schema):
            raise SchemaError(f"shard {path} does not have the table's schema")
        rows = meta.metadata.num_rows
    return {"rows": rows, "bytes": size, "sha256": digest.hexdigest()}


def write_version(
    root: str | os.PathLike | None,
    dataset: str,
    tables: dict[str, pa.Table | list[dict]],
    *,
    version: str | None = None,
    params: dict[str, Any] | None = None,
    parents: Iterable[VersionRef] = (),
    num_shards: int = 1,
) -> VersionRef:
    """Write small tables in one go and commit (tests, samples, metadata-sized outputs)."""
    writer = VersionWriter(root, dataset, version, params=params, parents=parents)
    for table, rows in tables.items():
        writer.write_table(table, rows, num_shards=num_shards)
    return writer.commit()


def list_datasets(root: str | os.PathLike | None = None) -> list[str]:
    fs, base = _fs(data_root(root))
    if not fs.exists(base):
        return []
    return sorted(
        e.rstrip("/").rsplit("/", 1)[-1]
        for e in fs.ls(base, detail=False)
        if fs.isdir(e) and not e.rstrip("/").rsplit("/", 1)[-1].startswith(".")
    )


def list_versions(
    root: str | os.PathLike | None, dataset: str, problems: list[str] | None = None
) -> list[VersionRef]:
    """Committed versions of a dataset, oldest first (by manifest creation time, then id).

    A version whose manifest is corrupt or malformed raises StorageError, unless a `problems` list is
    given: then that version is left out and its one-line problem appended, so a listing shows the rest
    and names the bad one (`shards ls`). Picking 'latest' never skips one: a bad newest version must not
    silently make an older one latest."""
    root = data_root(root)
    fs, base = _fs(root)
    ddir = _join(base, dataset)
    if not fs.exists(ddir):
        return []
    dated: list[tuple[str, VersionRef]] = []
    for e in fs.ls(ddir, detail=False):
        name = e.rstrip("/").rsplit("/", 1)[-1]
        if fs.exists(_join(e, MANIFEST)):
            ref = VersionRef(root, dataset, name)
            try:
                dated.append((ref.manifest()["created_at"], ref))
            except StorageError as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
    return [ref for _, ref in sorted(dated, key=lambda d: (d[0], d[1].version))]


def open_version(root: str | os.PathLike | None, dataset: str, version: str = "latest") -> VersionRef:
    """A committed version; 'latest' is the newest. One-line error when there is none."""
    root = data_root(root)
    if version == "latest":
        refs = list_versions(root, dataset)
        if not refs:
            raise StorageError(f"no committed version of dataset {dataset!r} under {root}")
        return refs[-1]
    ref = VersionRef(root, _check_name("dataset", dataset), _check_name("version", version))
    ref.manifest()  # raises when not committed
    return ref


def ref_from_path(path: str) -> VersionRef:
    """A VersionRef from `<root>/<dataset>/<version>` (the form `shards verify` takes)."""
    path = path.rstrip("/")
    if path.endswith("/" + MANIFEST):
        path = path[: -len(MANIFEST) - 1]
    parts = path.rsplit("/", 2)
    if len(parts) != 3:
        raise StorageError(f"{path!r} is not a <root>/<dataset>/<version> path")
    root, dataset, version = parts
    ref = VersionRef(root or "/", dataset, version)
    ref.manifest()
    return ref


def verify(ref: VersionRef) -> list[str]:
    """Re-hash every file against the manifest. Returns one line per problem (empty when intact); a
    manifest that cannot be read or has the wrong shape raises StorageError instead (bad input, not
    changed files)."""
    manifest = ref.manifest()
    fs, base = _fs(ref.path)
    problems = []
    for table, facts in sorted(manifest["tables"].items()):
        listed = {f["name"]: f for f in facts["files"]}
        tdir = _join(base, table)
        on_disk = set()
        if fs.exists(tdir):
            on_disk = {
                p.rsplit("/", 1)[-1] for p in fs.ls(tdir, detail=False) if PART_RE.match(p.rsplit("/", 1)[-1])
            }
        for name, f in sorted(listed.items()):
            path = _join(tdir, name)
            if name not in on_disk:
                problems.append(f"missing: {path}")
                continue
            if _sha256(fs, path) != f["sha256"]:
                problems.append(f"changed: {path} (sha256 differs from manifest)")
        for name in sorted(on_disk - set(listed)):
            problems.append(f"extra: {_join(tdir, name)} (not in manifest)")
    return problems
