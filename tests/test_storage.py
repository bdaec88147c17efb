"""The shard store: atomic versioned writes, manifests, verification, readers, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from storage.schemas import TABLES, SchemaError, fingerprint, schema_for, to_arrow
from storage.store import (
    StorageError,
    VersionWriter,
    list_datasets,
    list_versions,
    open_version,
    ref_from_path,
    verify,
    write_version,
)

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def sample_rows(table: str, n: int = 5) -> list[dict]:
    """Valid rows for every table, with nested fields filled so round-trips exercise them."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "pages": {
                    "wiki": "ukwiki",
                    "lang": "uk",
                    "page_id": i,
                    "rev_id": 100 + i,
                    "title": f"Сторінка {i}",
                    "concept": "Danube",
                    "url": f"http://uk.example/wiki/{i}",
                    "timestamp": NOW,
                    "wikitext": "'''Дунай''' — річка." * (i + 1),
                    "fetched_at": NOW,
                    "source": "api",
                    "redirected_from": None,
                    "langlinks": [{"lang": "vi", "title": "Sông Danube", "url": "http://vi.example/wiki/x"}],
                },
                "sections": {
                    "wiki": "ukwiki",
                    "lang": "uk",
                    "page_id": 1,
                    "rev_id": 101,
                    "concept": "Danube",
                    "title": "Дунай",
                    "section_idx": i,
                    "paragraph_idx": 0,
                    "level": 2,
                    "heading": "Історія",
                    "parent": -1,
                    "text": "У 1856 році ...",
                    "links": ["Чорне море"],
                    "numbers": ["1856"],
                    "years": [1856],
                },
                "fetch_log": {
                    "wiki": "ukwiki",
                    "lang": "uk",
                    "concept": "Danube",
                    "requested_title": f"T{i}",
                    "status": "missing",
                    "detail": "no such page",
                    "page_id": None,
                    "rev_id": None,
                    "logged_at": NOW,
                },
                "alignments": {
                    "concept": "Danube",
                    "unit": "paragraph",
                    "lang_a": "uk",
                    "key_a": f"ukwiki:1:101:{i}:0",
                    "lang_b": "vi" if i % 2 else None,
                    "key_b": f"viwiki:7:70:{i}:0" if i % 2 else None,
                    "score": 0.9 if i % 2 else 0.0,
                    "evidence": json.dumps({"years": [1856]}),
                },
                "documents": {
                    "doc_id": f"d{i}",
                    "concept": "Danube",
                    "policy": "uniform",
                    "granularity": "sentence",
                    "seed": i,
                    "langs": ["uk", "vi", "ja"],
                    "text": "Дунай тече. Sông chảy. 川です。",
                    "segments": [
                        {
                            "start": 0,
                            "end": 11,
                            "lang": "uk",
                            "lid_lang": "uk",
                            "lid_prob": 0.99,
                            "wiki": "ukwiki",
                            "page_id": 1,
                            "rev_id": 101,
                            "section_idx": 0,
                            "paragraph_idx": 0,
                            "sentence_idx": 0,
                        },
                    ],
                    "metrics": {
                        "cmi": 66.7,
                        "m_index": 1.0,
                        "i_index": 1.0,
                        "burstiness": -1.0,
                        "lang_entropy": 1.58,
                        "mean_segment_len": 2.0,
                        "n_langs": 3,
                        "n_switches": 2,
                        "lid_agreement": 1.0,
                    },
                },
                "significance": {
                    "doc_id": f"d{i}",
                    "ranker": "stat",
                    "ranker_version": "1",
                    "encoder": "",
                    "encoder_hash": "",
                    "spans": [
                        {"start": 0, "end": 5, "score": 0.3, "removal_rank": 1},
                        {"start": 6, "end": 10, "score": 0.1, "removal_rank": 0},
                    ],
                },
                "lid": {
                    "doc_id": f"d{i}",
                    "segment_idx": i,
                    "start": 10 * i,
                    "end": 10 * i + 9,
                    "intended": "arb",
                    "lang": "ara",
                    "match": "macro",
                    "heliport": "ara",
                    "heliport_score": 0.9,
                    "lid176": "ara",
                    "lid176_prob": 0.8,
                    "cld2": "ara",
                    "cld2_score": 1024.0,
                    "identifier": "heliport-1.0.1+lid176",
                },
                "tokens": {
                    "doc_id": f"d{i}",
                    "unit": "Danube",
                    "n_tokens": i,
                    "ids": list(range(i)),
                    "starts": list(range(i)),
                    "ends": list(range(1, i + 1)),
                },
            }[table]
        )
    return rows


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_table_round_trips_through_polars_and_datasets(data_root: Path, table: str):
    rows = sample_rows(table, n=7)
    ref = write_version(data_root, "rt", {table: rows}, num_shards=3)
    assert [Path(f).name for f in ref.files(table)] == [f"part-0000{i}-of-00003.parquet" for i in range(3)]
    frame = ref.scan(table).collect()
    assert frame.height == 7 and frame.columns == schema_for(table).names
    hf = ref.to_hf(table)
    assert hf.num_rows == 7 and hf.column_names == schema_for(table).names
    assert ref.read(table).to_pylist() == to_arrow(table, rows).to_pylist()
    first_key = schema_for(table).names[0]
    assert hf[0][first_key] == rows[0][first_key]


def test_manifest_records_hashes_rows_schema_params_and_parents(data_root: Path):
    parent = write_version(data_root, "wiki", {"pages": sample_rows("pages")}, params={"langs": ["uk"]})
    child = write_version(
        data_root,
        "docs",
        {"documents": sample_rows("documents", 4)},
        parents=[parent],
        params={"seed": 3},
        num_shards=2,
    )
    m = child.manifest()
    assert m["parents"] == [{"dataset": "wiki", "version": parent.version}]
    assert m["params"] == {"seed": 3}
    assert m["tables"]["documents"]["rows"] == 4
    assert m["tables"]["documents"]["schema_fingerprint"] == fingerprint(schema_for("documents"))
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in m["tables"]["documents"]["files"])
    assert m["code_version"] and m["created_at"]
    assert list_datasets(data_root) == ["docs", "wiki"]
    assert open_version(data_root, "docs") == child


def test_auto_version_ids_never_collide(data_root: Path):
    refs = {
        write_version(data_root, "wiki", {"pages": sample_rows("pages", 1)}, params={"a": 1})
        for _ in range(5)
    }
    assert len(refs) == 5 and len(list_versions(data_root, "wiki")) == 5


def test_versions_are_immutable_and_latest_is_newest(data_root: Path):
    a = write_version(data_root, "wiki", {"pages": sample_rows("pages")}, version="v1")
    b = write_version(data_root, "wiki", {"pages": sample_rows("pages", 2)}, version="v2")
    assert [r.version for r in list_versions(data_root, "wiki")] == ["v1", "v2"]
    assert open_version(data_root, "wiki", "latest") == b
    with pytest.raises(StorageError, match="already committed"):
        VersionWriter(data_root, "wiki", "v1")
    assert a.num_rows("pages") == 5


def test_streaming_reader_splits_shards_by_rank(data_root: Path):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages", 8)}, num_shards=4)
    seen = []
    for rank in range(2):
        for batch in ref.iter_batches("pages", batch_size=1, columns=["page_id"], rank=rank, world_size=2):
            seen.extend(batch.column("page_id").to_pylist())
    assert sorted(seen) == list(range(8))
    rank0 = [b.column("page_id").to_pylist() for b in ref.iter_batches("pages", rank=0, world_size=2)]
    assert sum(rank0, []) == [0, 1, 4, 5]  # shards 0 and 2


def test_fsspec_url_root_works(data_root: Path):
    url = "file://" + str(data_root)
    ref = write_version(url, "wiki", {"pages": sample_rows("pages")})
    assert open_version(url, "wiki").scan("pages").collect().height == 5
    assert verify(ref) == []


def test_resume_keeps_written_shards_and_commit_checks_completeness(data_root: Path):
    w = VersionWriter(data_root, "wiki", "run1")
    w.write_shard("pages", 0, 3, sample_rows("pages", 2))
    with pytest.raises(StorageError, match=r"lacks shard\(s\) \[1, 2\]"):
        w.commit()
    resumed = VersionWriter(data_root, "wiki", "run1")
    assert resumed.has_shard("pages", 0, 3) and not resumed.has_shard("pages", 1, 3)
    resumed.write_shard("pages", 1, 3, sample_rows("pages", 1))
    resumed.write_shard("pages", 2, 3, [])
    ref = resumed.commit()
    assert ref.num_rows("pages") == 3 and verify(ref) == []


def test_flipped_byte_missing_and_extra_files_are_named_by_verify(data_root: Path):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages", 6)}, num_shards=3)
    assert verify(ref) == []
    files = [Path(f) for f in ref.files("pages")]
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 0x01
    files[1].write_bytes(bytes(raw))
    files[2].unlink()
    (files[0].parent / "part-00009-of-00009.parquet").write_bytes(b"x")
    problems = verify(ref)
    assert problems == [
        f"changed: {files[1]} (sha256 differs from manifest)",
        f"missing: {files[2]}",
        f"extra: {files[0].parent / 'part-00009-of-00009.parquet'} (not in manifest)",
    ]


def test_corrupt_shard_read_is_one_line_error(data_root: Path):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages")})
    Path(ref.files("pages")[0]).write_bytes(b"PAR1 not really parquet")
    with pytest.raises(StorageError, match="corrupt or unreadable shard") as err:
        ref.read("pages")
    assert "\n" not in str(err.value)


def test_bad_input_gives_one_line_errors(data_root: Path, tmp_path: Path):
    with pytest.raises(SchemaError, match="unknown table 'nope'"):
        write_version(data_root, "x", {"nope": []})
    with pytest.raises(SchemaError, match="lacks required field 'title'"):
        write_version(
            data_root, "x", {"pages": [{k: v for k, v in sample_rows("pages")[0].items() if k != "title"}]}
        )
    with pytest.raises(SchemaError, match="unknown field"):
        write_version(data_root, "x", {"pages": [{**sample_rows("pages")[0], "colour": "red"}]})
    with pytest.raises(SchemaError, match="do not fit the schema"):
        write_version(data_root, "x", {"pages": [{**sample_rows("pages")[0], "page_id": "seven"}]})
    with pytest.raises(SchemaError, match=r"rows lack required field\(s\) wiki, lang"):
        to_arrow("pages", pa.table({"title": ["a"]}))
    with pytest.raises(SchemaError, match="unknown field"):
        to_arrow(
            "pages", to_arrow("pages", sample_rows("pages")).append_column("colour", pa.array(["r"] * 5))
        )
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot write to data root") as err:
        VersionWriter(blocker / "root", "wiki")
    assert "\n" not in str(err.value)
    with pytest.raises(StorageError, match="bad dataset name"):
        VersionWriter(data_root, "../escape")
    with pytest.raises(StorageError, match="no committed version"):
        open_version(data_root, "absent")
    with pytest.raises(StorageError, match="not committed"):
        ref_from_path(str(data_root / "absent" / "v1"))
    # nothing half-written is left behind by the failed writes
    assert list_versions(data_root, "x") == []


SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa
    from storage.store import VersionWriter
    from tests.test_storage import sample_rows

    root, version = sys.argv[1], sys.argv[2]
    w = VersionWriter(root, "wiki", version)
    w.write_shard("pages", 0, 2, sample_rows("pages", 3))
    print("shard0", flush=True)

    def slow_chunks():
        for i in range(10_000):
            yield pa.Table.from_pylist(sample_rows("pages", 50))
            time.sleep(0.01)

    w.write_shard("pages", 1, 2, slow_chunks())
    w.commit()
    """
)


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_sigkill_mid_write_leaves_no_partial_shard_and_unchanged_manifest(data_root: Path, delay: float):
    before = write_version(data_root, "wiki", {"pages": sample_rows("pages")}, version="v0")
    manifest_bytes = (Path(before.path) / "manifest.json").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(data_root), "v1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "shard0"
    table_dir = data_root / "wiki" / "v1" / "pages"
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".tmp-") for p in table_dir.iterdir()):
        assert time.monotonic() < deadline, "writer never started its second shard"
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    visible = sorted(p.name for p in table_dir.iterdir() if not p.name.startswith("."))
    assert visible == ["part-00000-of-00002.parquet"]  # the finished shard only; no partial one
    assert not (data_root / "wiki" / "v1" / "manifest.json").exists()
    assert (Path(before.path) / "manifest.json").read_bytes() == manifest_bytes
    assert open_version(data_root, "wiki") == before
    assert pl.scan_parquet(str(table_dir / "part-00000-of-00002.parquet")).collect().height == 3

    # resuming finishes the version; the crashed writer's temp file is cleaned at commit
    resumed = VersionWriter(data_root, "wiki", "v1")
    assert resumed.has_shard("pages", 0, 2)
    resumed.write_shard("pages", 1, 2, sample_rows("pages", 2))
    ref = resumed.commit()
    assert verify(ref) == [] and ref.num_rows("pages") == 5
    assert not any(p.name.startswith(".tmp-") for p in table_dir.iterdir())


def run_cli(*args: str, env_root: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if env_root is not None:
        env["WIKIMIX_DATA"] = str(env_root)
    return subprocess.run(
        [sys.executable, "-m", "wikimix.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_shards_ls_and_verify(data_root: Path):
    ref = write_version(
        data_root, "wiki", {"pages": sample_rows("pages"), "sections": sample_rows("sections")}, num_shards=2
    )
    out = run_cli("shards", "ls", str(data_root))
    assert out.returncode == 0
    assert f"wiki\t{ref.version}\tpages\t5 rows\t2 files" in out.stdout
    assert f"wiki\t{ref.version}\tsections\t5 rows\t2 files" in out.stdout

    ok = run_cli("shards", "verify", ref.path)
    assert ok.returncode == 0 and "ok: wiki@" in ok.stdout

    shard = Path(ref.files("sections")[1])
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    bad = run_cli("shards", "verify", ref.path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"changed: {shard} (sha256 differs from manifest)"

    missing = run_cli("shards", "verify", str(data_root / "wiki" / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: ")
    empty = run_cli("shards", "ls", env_root=data_root / "empty")
    assert empty.returncode == 0 and "no datasets" in empty.stdout
