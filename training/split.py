"""The one train / val / test split of the project: by concept, so no translation of a test text is trained on.

The split unit is whatever shares content across languages: the `concept` of a stored document or section
(a wiki concept group; `sib200:<first index_id>` for a SIB-200 window, whose sentences no other window holds;
an XQuAD article title). A row without a concept is its own unit (its document id). The unit is hashed
with a fixed salt, so the split never moves when data is added, and the trainer's data loader
(training/data.py), the evaluator (training/evaluate.py) and the experiment (training/experiment.py) all
call `split_of` on the same unit.

    split_of(split_unit(doc_id, concept), val_frac=0.05, test_frac=0.05)   # 'train' | 'val' | 'test'
    concept_splits(ref, val_frac, test_frac)      # {'train': [...], 'val': [...], 'test': [...]} unit ids
"""

from __future__ import annotations

import hashlib

from storage.store import VersionRef

SPLIT_SALT = "wikimix-split-v1"  # changing it would move units between splits: never do
SPLITS = ("train", "val", "test")


def split_of(unit: str, val_frac: float = 0.05, test_frac: float = 0.05) -> str:
    """'train' | 'val' | 'test', fixed by a salted hash of the split unit (see split_unit)."""
    h = int.from_bytes(hashlib.sha256(f"{SPLIT_SALT}:{unit}".encode()).digest()[:8], "big") / 2**64
    return "test" if h < test_frac else "val" if h < test_frac + val_frac else "train"


def split_unit(doc_id: str, concept: str | None) -> str:
    """The unit a row is split by: its concept, or the row's own id when it has none."""
    return concept if concept else doc_id


def unit_columns(table: str, names: list[str]) -> list[str]:
    """Columns that name a row of `table` and its concept (when the table has one)."""
    ids = ["doc_id"] if table == "documents" else ["wiki", "page_id"]
    return ids + (["concept"] if "concept" in names else [])


def row_id_and_unit(table: str, values: list) -> tuple[str, str]:
    """(row id, split unit) from the values of unit_columns(table, ...) in that order."""
    n_ids = 1 if table == "documents" else 2
    row_id = str(values[0]) if n_ids == 1 else f"{values[0]}:{values[1]}"
    concept = values[n_ids] if len(values) > n_ids else None
    return row_id, split_unit(row_id, concept)


def concept_splits(ref: VersionRef, table: str, val_frac: float, test_frac: float) -> dict[str, list[str]]:
    """Every split unit of a stored text table, by split (sorted): what `split.json` records."""
    columns = unit_columns(table, column_names(ref, table))
    units: set[str] = set()
    for rb in ref.iter_batches(table, 1024, columns, verify=True):
        for values in zip(*(rb.column(c).to_pylist() for c in columns), strict=True):
            units.add(row_id_and_unit(table, list(values))[1])
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for unit in sorted(units):
        out[split_of(unit, val_frac, test_frac)].append(unit)
    return out


def column_names(ref: VersionRef, table: str) -> list[str]:
    """The stored columns of `table` (its first shard's schema)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(ref.files(table)[0]).names)
