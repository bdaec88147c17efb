"""Tokenise once: token ids stored per (text table version, tokenizer) as a derived dataset, dolma-style.

A text table (`documents`, or `sections`) of `NAME@VERSION` tokenised by a tokenizer lands as a version of
the dataset `NAME-tokens`, with `NAME@VERSION` as its parent and, in its manifest's params, the source
version, the table, the source shards' digests and the tokenizer's hash (training/tokenizers.py). Its
`tokens` table (storage/schemas.py) has one shard per source shard, row for row in the source's order, so
reading it shard-interleaved gives exactly the rows (and training windows) the text would. Each row keeps
the split unit, so the loader never opens the text again; character offsets ride along for significance
ranks; `n_tokens` alone counts a split's windows (a resume skips whole epochs by arithmetic).

A second run on the same version with the same tokenizer finds the table and tokenises nothing. Concurrent
first builds each commit their own version (versions are never shared while written): both are complete
and equal, and later runs take the newest.

    ref = ensure_token_table(docs_ref, "documents", tokenizer)   # find, or tokenise and commit
    ref.iter_batches("tokens", columns=["doc_id", "unit", "ids"])
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from storage.store import VersionRef, VersionWriter, list_versions
from training.split import column_names, row_id_and_unit, unit_columns
from training.tokenizers import Tokenizer, tokenizer_hash

TOKENS_TABLE = "tokens"
TOKENS_FORMAT = 1  # bump when what a row holds changes: older tables are then not found, and rebuilt
ENCODE_ROWS = 256  # texts per encode_batch call


def token_dataset(source: VersionRef) -> str:
    return f"{source.dataset}-tokens"


def token_params(source: VersionRef, table: str, tok: Tokenizer) -> dict[str, str | int]:
    """What a token table is derived from: its manifest's params, and the key it is found by."""
    digests = "".join(f["sha256"] for f in source.manifest()["tables"][table]["files"])
    return {
        "source": str(source),
        "table": table,
        "source_sha256": hashlib.sha256(digests.encode()).hexdigest()[:16],
        "tokenizer": tok.name,
        "tokenizer_hash": tokenizer_hash(tok),
        "format": TOKENS_FORMAT,
    }


def find_token_table(source: VersionRef, table: str, tok: Tokenizer) -> VersionRef | None:
    """The newest committed token table of (source, table, tokenizer), or None. A version whose manifest
    cannot be read is passed over (it is not one this key can trust)."""
    wanted = token_params(source, table, tok)
    problems: list[str] = []
    for ref in reversed(list_versions(source.root, token_dataset(source), problems)):
        if ref.manifest().get("params") == wanted:
            return ref
    return None


def ensure_token_table(source: VersionRef, table: str, tok: Tokenizer) -> VersionRef:
    """The token table of (source, table, tokenizer): found, or built and committed now. The source's
    shards are checked against its manifest either way, so a text shard swapped after commit is refused
    even where its tokens were stored before."""
    source.check_shards(table)
    return find_token_table(source, table, tok) or build_token_table(source, table, tok)


def build_token_table(source: VersionRef, table: str, tok: Tokenizer) -> VersionRef:
    """Tokenise every row of the source table, shard by shard, into a new committed version."""
    writer = VersionWriter(
        source.root, token_dataset(source), params=token_params(source, table, tok), parents=[source]
    )
    try:
        n_files = len(source.files(table))
        columns = unit_columns(table, column_names(source, table)) + ["text"]
        for shard in range(n_files):
            writer.write_shard(
                TOKENS_TABLE, shard, n_files, _tokenised(source, table, columns, tok, shard, n_files)
            )
        return writer.commit()
    except BaseException:
        writer.discard()
        raise


def _tokenised(
    source: VersionRef, table: str, columns: list[str], tok: Tokenizer, shard: int, n_files: int
) -> Iterator[pa.Table]:
    for rb in source.iter_batches(table, ENCODE_ROWS, columns, rank=shard, world_size=n_files, verify=True):
        values = [rb.column(c).to_pylist() for c in columns]
        keys = [row_id_and_unit(table, list(row)) for row in zip(*values[:-1], strict=True)]
        encoded = tok.encode_batch_with_offsets([text or "" for text in values[-1]])
        ids = [e[0] for e in encoded]
        yield pa.table(
            {
                "doc_id": [k[0] for k in keys],
                "unit": [k[1] for k in keys],
                "n_tokens": pa.array([len(i) for i in ids], pa.int32()),
                "ids": _int32_lists(ids),
                "starts": _int32_lists([[s for s, _ in e[1]] for e in encoded]),
                "ends": _int32_lists([[end for _, end in e[1]] for e in encoded]),
            }
        )


def _int32_lists(lists: list[list[int]]) -> pa.ListArray:
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:], dtype=np.int32)
    flat = np.fromiter((v for row in lists for v in row), dtype=np.int32, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


def list_column(column: pa.Array) -> list[list[int]]:
    """A list<int32> column as Python lists, through numpy (several times faster than to_pylist)."""
    flat = column.values.to_numpy(zero_copy_only=False)
    offsets = column.offsets.to_numpy()
    return [flat[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
