"""build-corpus on a Dask cluster given by address (a local cluster of 2 worker processes) commits the same
rows as with threads: every stage's rows hash the same."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# when a page was ingested: the one column that is not content (the two builds ingest seconds apart)
VOLATILE = {"fetched_at"}
TABLES = {
    "wiki": ["pages", "sections"],
    "align": ["alignments"],
    "docs": ["documents"],
    "sig": ["significance"],
}


def row_hashes(path: str, table: str) -> list[str]:
    """The sorted content hashes of a table's rows (independent of shard and row order)."""
    from storage.store import ref_from_path

    rows = ref_from_path(path).read(table).to_pylist()
    contents = [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]
    return sorted(
        hashlib.sha256(json.dumps(r, sort_keys=True, default=str).encode()).hexdigest() for r in contents
    )


def build(root: Path, task_runner: str, monkeypatch) -> dict[str, str]:
    from flows.corpus import build_corpus

    monkeypatch.setenv("WIKIMIX_DATA", str(root))
    params = {"name": "scale", "rankers": ["stat"], "shards": 2, "max_chars": 500}
    return build_corpus(**params, task_runner=task_runner)


@pytest.mark.timeout(900)
def test_build_corpus_on_dask_workers_commits_the_rows_threads_commit(prefect_server, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    threads = build(tmp_path / "threads", "threads", monkeypatch)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = build(tmp_path / "dask", f"dask:{cluster.scheduler_address}", monkeypatch)
        with Client(cluster.scheduler_address) as client:
            # a worker process that ran a stage task has imported the flows module
            imported = client.run(lambda: "flows.corpus" in __import__("sys").modules)
    assert len(imported) == 2 and any(imported.values()), imported
    for stage, tables in TABLES.items():
        assert Path(dask[stage]).parent.parent == tmp_path / "dask"
        for table in tables:
            hashes = row_hashes(dask[stage], table)
            assert hashes, (stage, table)
            assert hashes == row_hashes(threads[stage], table), (stage, table)
