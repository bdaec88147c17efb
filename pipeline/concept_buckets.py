"""A table's rows grouped by concept in bounded memory: hash-partition into bucket files, read one at a time.

A concept's rows lie in every language's shard, so grouping by collecting the whole table holds the whole
corpus in memory. Here one streaming pass writes each row to the bucket of its concept (a temporary
Parquet file); a bucket holds about `rows_per_bucket` rows, so a step holds one bucket and one concept's
work at a time, however many concepts there are. Tables partitioned with the same bucket count put each
concept in the same bucket (align and codeswitch read sections and alignments side by side this way).

    n = num_buckets(ref.num_rows("sections"))
    buckets = partition(ref.iter_batches("sections"), tmpdir, "sections", n)     # {bucket: path}
    for concept, group in concept_groups(buckets[b]): ...                         # polars frames
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_BUCKET = 4000  # paragraph rows: a few MB of text in memory at a time


def num_buckets(rows: int, rows_per_bucket: int | None = None) -> int:
    return max(1, math.ceil(rows / (rows_per_bucket or ROWS_PER_BUCKET)))


def bucket_of(concept: str, buckets: int) -> int:
    """Stable across runs and independent of `pipeline.align.shard_of` (another salt), so a rank's
    concepts spread over every bucket."""
    return zlib.crc32(b"bucket\0" + concept.encode()) % buckets


def partition(
    batches: Iterable[pa.RecordBatch],
    directory: str | Path,
    name: str,
    buckets: int,
    keep: Callable[[str], bool] | None = None,
) -> dict[int, Path]:
    """Write the rows with a concept (and `keep(concept)`) into `<directory>/<name>-<bucket>.parquet`;
    {bucket: path} of the buckets that got rows. Row order within a concept is kept."""
    writers: dict[int, pq.ParquetWriter] = {}
    paths: dict[int, Path] = {}
    try:
        for batch in batches:
            ids = np.array(
                [
                    bucket_of(c, buckets) if c is not None and (keep is None or keep(c)) else -1
                    for c in batch.column("concept").to_pylist()
                ],
                dtype=np.int64,
            )
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            rows = pa.Table.from_batches([batch]).take(pa.array(order))
            for b in np.unique(ids[ids >= 0]).tolist():
                lo, hi = np.searchsorted(ids, b, "left"), np.searchsorted(ids, b, "right")
                if b not in writers:
                    paths[b] = Path(directory) / f"{name}-{b:05d}.parquet"
                    writers[b] = pq.ParquetWriter(paths[b], rows.schema)
                writers[b].write_table(rows.slice(int(lo), int(hi - lo)))
    finally:
        for writer in writers.values():
            writer.close()
    return dict(sorted(paths.items()))


def concept_groups(path: str | Path) -> Iterator[tuple[str, pl.DataFrame]]:
    """(concept, its rows) of one bucket file, concepts in order of first appearance."""
    frame = pl.read_parquet(path)
    for (concept,), group in frame.group_by(["concept"], maintain_order=True):
        yield concept, group
