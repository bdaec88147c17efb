"""Tokenise once: the stored token table (row for row with its text table), found again by later readers
and runs without tokenising, and resumes that seek across epochs to exactly the stream's batches."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from storage.store import list_versions, verify, write_version
from training.config import make_config
from training.data import DataOptions, ShardData
from training.token_table import TOKENS_TABLE, find_token_table, token_dataset
from training.tokenizers import BPETokenizer, ByteTokenizer, load_tokenizer, tokenizer_hash
from training.trainer import train

torch.set_num_threads(1)


class CountingByteTokenizer(ByteTokenizer):
    """The byte tokenizer, counting the texts it encodes (the same hash: it encodes alike)."""

    def __init__(self) -> None:
        self.encoded = 0

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        self.encoded += len(texts)
        return super().encode_batch(texts)

    def encode_batch_with_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        self.encoded += len(texts)
        return super().encode_batch_with_offsets(texts)


def same_batches(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.tokens, y.tokens) and x.doc_ids == y.doc_ids for x, y in zip(a, b, strict=True)
    )


def test_the_table_is_stored_row_for_row_and_found_again_without_tokenising(xquad_docs, xquad_sig):
    tok = CountingByteTokenizer()
    first = ShardData(xquad_docs, tok, DataOptions(seq_len=64, batch_size=8), significance=xquad_sig)
    stream = list(itertools.islice(first.train_batches(), 6))
    pairs = list(first.eval_batches("val", max_examples=4))
    table = first.token_table()
    assert tok.encoded == xquad_docs.num_rows("documents")  # every document once, in every split
    assert table.dataset == token_dataset(xquad_docs) == "xq-docs-tokens" and verify(table) == []
    manifest = table.manifest()
    assert manifest["parents"] == [{"dataset": "xq-docs", "version": xquad_docs.version}]
    assert manifest["params"]["tokenizer_hash"] == tokenizer_hash(ByteTokenizer())
    # one token shard per text shard, the same rows in the same order, the ids and offsets the tokenizer gives
    assert len(table.files(TOKENS_TABLE)) == len(xquad_docs.files("documents")) == 3
    for text_file, token_file in zip(xquad_docs.files("documents"), table.files(TOKENS_TABLE), strict=True):
        assert text_file.rsplit("/", 1)[1] == token_file.rsplit("/", 1)[1]
    texts = xquad_docs.read("documents", ["doc_id", "text"]).to_pylist()
    rows = table.read(TOKENS_TABLE).to_pylist()
    assert [r["doc_id"] for r in rows] == [t["doc_id"] for t in texts]
    for text, row in zip(texts[::50], rows[::50], strict=True):
        ids, offsets = ByteTokenizer().encode_with_offsets(text["text"])
        assert row["ids"] == ids and row["n_tokens"] == len(ids)
        assert list(zip(row["starts"], row["ends"], strict=True)) == offsets

    again_tok = CountingByteTokenizer()
    again = ShardData(xquad_docs, again_tok, DataOptions(seq_len=64, batch_size=8), significance=xquad_sig)
    resumed = list(itertools.islice(again.train_batches(start=3), 3))
    assert same_batches(resumed, stream[3:])
    assert all(torch.equal(a.removal_rank, b.removal_rank) for a, b in zip(resumed, stream[3:], strict=True))
    assert same_batches(list(again.eval_batches("val", max_examples=4)), pairs)
    assert again_tok.encoded == 0 and again.token_table() == table
    assert len(list_versions(xquad_docs.root, "xq-docs-tokens")) == 1


def test_another_tokenizer_or_text_version_gets_its_own_table(tmp_path, xquad_docs, data_root):
    byte_table = ShardData(xquad_docs, ByteTokenizer(), DataOptions()).token_table()
    texts = ShardData(xquad_docs, ByteTokenizer(), DataOptions()).texts(max_chars=100_000)
    bpe = BPETokenizer.train(texts, 300)
    bpe.save(tmp_path / "tokenizer.json")
    assert tokenizer_hash(load_tokenizer(tmp_path / "tokenizer.json")) == tokenizer_hash(bpe)  # saved == live
    bpe_table = ShardData(xquad_docs, bpe, DataOptions()).token_table()
    assert bpe_table != byte_table and bpe_table.manifest()["params"]["tokenizer"] == "bpe"
    assert find_token_table(xquad_docs, "documents", ByteTokenizer()) == byte_table
    other = write_version(data_root, "xq-docs", {"documents": [{"doc_id": "a", "text": "words " * 50}]})
    assert find_token_table(other, "documents", ByteTokenizer()) is None
    assert ShardData(other, ByteTokenizer(), DataOptions()).token_table() not in (byte_table, bpe_table)
    assert len(list_versions(data_root, "xq-docs-tokens")) == 3


@pytest.mark.parametrize("world_size", [1, 2])
def test_a_resume_seeks_across_epochs_to_exactly_the_streams_batch(data_root, world_size):
    rows = [{"doc_id": f"d{i}", "text": f"document {i} " + "word " * (3 + i % 7)} for i in range(24)]
    ref = write_version(data_root, "few-docs", {"documents": rows}, num_shards=2)
    options = DataOptions(seq_len=16, batch_size=4, val_frac=0, test_frac=0, world_size=world_size)
    per_epoch = ShardData(ref, ByteTokenizer(), options)._windows_per_epoch()
    assert per_epoch % 4 and per_epoch < 100  # batches straddle epochs; the stream spans four of them
    stream = list(itertools.islice(ShardData(ref, ByteTokenizer(), options).train_batches(), per_epoch))
    for start in (1, per_epoch // 4, per_epoch // 4 + 1, len(stream) - 2):
        tok = CountingByteTokenizer()
        resumed = list(itertools.islice(ShardData(ref, tok, options).train_batches(start=start), 2))
        assert same_batches(resumed, stream[start : start + 2]), start
        assert tok.encoded == 0


def test_training_runs_on_the_same_data_and_tokenizer_share_one_table(tmp_path, xquad_docs):
    def run(out: str, **overrides) -> None:
        settings = {"progress": False, "threads": 1, "max_steps": 2, "eval_every": 0, **overrides}
        train(make_config("ar", budget="smoke", data="xq-docs", out=str(tmp_path / out), overrides=settings))

    run("a", stop_at=1)
    (table,) = list_versions(xquad_docs.root, "xq-docs-tokens")
    created = table.manifest()["created_at"]
    run("a")  # the resume
    run("b", seed=1)  # another run
    assert list_versions(xquad_docs.root, "xq-docs-tokens") == [table]
    assert table.manifest()["created_at"] == created
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2
