"""Storage integrity: manifests of the wrong shape are one-line errors, listings survive one bad version,
and readers that verify refuse a shard swapped after commit."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from storage import store
from storage.store import (
    StorageError,
    list_versions,
    open_version,
    ref_from_path,
    verify,
    write_version,
)
from tests.test_storage import run_cli, sample_rows


def _rewrite_manifest(ref: store.VersionRef, edit) -> None:
    path = Path(ref.path) / store.MANIFEST
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def _drop_sha(m: dict) -> dict:
    del m["tables"]["pages"]["files"][0]["sha256"]
    return m


def _escaping_name(m: dict) -> dict:
    m["tables"]["pages"]["files"][0]["name"] = "../../../outside.parquet"
    return m


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {}, "'dataset' is missing"),
        (lambda m: [], "expected a JSON object, got list"),
        (lambda m: {**m, "tables": []}, "'tables' is missing or not an object"),
        (lambda m: {**m, "tables": {"pages": {"rows": 5, "files": {}}}}, "table 'pages' has no 'files' list"),
        (lambda m: {**m, "tables": {"pages": {"rows": 5, "files": ["x"]}}}, "file #0 has no part-"),
        (_drop_sha, "has no sha256 digest"),
        (_escaping_name, "file #0 has no part-"),
        (lambda m: {**m, "tables": {"../up": m["tables"]["pages"]}}, "bad table name '../up'"),
        (lambda m: {**m, "parents": "none"}, "'parents' is not a list"),
    ],
)
def test_malformed_manifest_is_a_one_line_storage_error(data_root: Path, edit, message):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages")}, version="v1")
    _rewrite_manifest(ref, edit)
    with pytest.raises(StorageError, match=message) as err:
        ref.manifest()
    assert "\n" not in str(err.value) and "wiki@v1: malformed manifest" in str(err.value)
    with pytest.raises(StorageError, match=message):  # verify: bad input (exit 2), not "changed files"
        verify(ref)


def test_verify_of_an_empty_object_manifest_exits_2_not_1(data_root: Path):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages")}, version="v1")
    (Path(ref.path) / store.MANIFEST).write_text("{}")
    with pytest.raises(StorageError, match="malformed manifest"):
        verify(ref_from_path(ref.path))
    result = run_cli("shards", "verify", ref.path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "malformed manifest" in lines[0]


def test_listing_with_one_bad_version_lists_the_rest_and_names_it(data_root: Path):
    good = [
        write_version(data_root, "wiki", {"pages": sample_rows("pages")}, version=v)
        for v in ("v1", "v2", "v4")
    ]
    bad = write_version(data_root, "wiki", {"pages": sample_rows("pages")}, version="v3")
    (Path(bad.path) / store.MANIFEST).write_text("{not json")
    with pytest.raises(StorageError, match="wiki@v3: corrupt manifest"):
        list_versions(data_root, "wiki")
    problems: list[str] = []
    assert list_versions(data_root, "wiki", problems=problems) == good
    assert len(problems) == 1 and problems[0].startswith("wiki@v3: corrupt manifest")
    # 'latest' never skips a bad version: the newest being broken must not make an older one latest
    _rewrite_manifest(good[-1], lambda m: {**m, "tables": None})
    with pytest.raises(StorageError, match="wiki@v4: malformed manifest"):
        open_version(data_root, "wiki")


def _swap_in_other_content(ref: store.VersionRef, data_root: Path) -> Path:
    """Replace the ref's first shard with a valid Parquet shard of different rows (same schema)."""
    other = write_version(data_root, "other", {"pages": sample_rows("pages", 7)})
    target = Path(ref.files("pages")[0])
    shutil.copyfile(other.files("pages")[0], target)
    return target


def test_verifying_readers_refuse_a_swapped_shard_and_name_it(data_root: Path):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages", 6)}, num_shards=2)
    assert ref.read("pages", verify=True).num_rows == 6
    target = _swap_in_other_content(ref, data_root)
    assert ref.read("pages").num_rows > 6  # an unverified read takes the swapped file as it is
    for read in (
        lambda: ref.read("pages", verify=True),
        lambda: list(ref.iter_batches("pages", verify=True)),
    ):
        with pytest.raises(StorageError, match="does not match the manifest") as err:
            read()
        assert str(target) in str(err.value) and "\n" not in str(err.value)
    # a shard another rank owns is not opened, so not checked either
    assert sum(b.num_rows for b in ref.iter_batches("pages", rank=1, world_size=2, verify=True)) == 3


def test_shards_are_hashed_once_per_process_and_again_when_they_change(data_root: Path, monkeypatch):
    ref = write_version(data_root, "wiki", {"pages": sample_rows("pages", 6)}, num_shards=2)
    hashed: list[str] = []
    real_sha256 = store._sha256

    def counting_sha256(fs, path):
        hashed.append(path)
        return real_sha256(fs, path)

    monkeypatch.setattr(store, "_sha256", counting_sha256)
    for _ in range(3):
        assert ref.read("pages", verify=True).num_rows == 6
    assert len(hashed) == 2
    target = Path(ref.files("pages")[0])
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    os.utime(target, ns=(1, 1))  # a changed file with a different mtime is hashed again
    with pytest.raises(StorageError, match="does not match the manifest"):
        ref.read("pages", verify=True)
    assert len(hashed) == 3
