"""The shard loader: splits, rank sharding, packed windows, eval pairs, significance ranks; Markov source."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch

from storage.store import write_version
from training.data import (
    DataOptions,
    MarkovData,
    ShardData,
    open_data,
    parse_data_spec,
    split_of,
    token_ranks,
)
from training.tokenizers import BPETokenizer, ByteTokenizer
from wikimix.errors import ConfigError, WikimixError

torch.set_num_threads(2)


def test_split_is_fixed_by_document_id_and_follows_the_fractions():
    ids = [f"doc-{i}" for i in range(4000)]
    splits = Counter(split_of(d, 0.05, 0.1) for d in ids)
    assert abs(splits["test"] / 4000 - 0.1) < 0.02 and abs(splits["val"] / 4000 - 0.05) < 0.015
    assert [split_of(d) for d in ids[:50]] == [split_of(d) for d in ids[:50]]
    # the test split does not move when the validation fraction changes
    assert {d for d in ids if split_of(d, 0.05, 0.1) == "test"} == {
        d for d in ids if split_of(d, 0.2, 0.1) == "test"
    }


def test_token_ranks_take_the_lowest_overlapping_span():
    # tokens: "ab" "c d" "e" ; spans: "abc" rank 5, "d" rank 2
    offsets = [(0, 2), (2, 5), (5, 6)]
    assert token_ranks(offsets, [(0, 3, 5), (4, 5, 2)]) == [5, 2, -1]
    assert token_ranks(offsets, []) == [-1, -1, -1]


def test_train_windows_stream_from_every_shard_and_resume_exactly(xquad_docs):
    tok = ByteTokenizer()
    data = ShardData(xquad_docs, tok, DataOptions(seq_len=64, batch_size=8, seed=3))
    batches = list(itertools.islice(data.train_batches(), 6))
    b = batches[0]
    assert b.tokens.shape == (8, 64) and b.pad_mask.all() and (b.prompt_len == 0).all()
    assert b.removal_rank is None and len(b.doc_ids) == 8
    texts = {r["doc_id"]: r for r in xquad_docs.read("documents").to_pylist()}
    first_doc = b.doc_ids[0].split("+")[0]
    assert split_of(first_doc) == "train"
    row = [t for t in b.tokens[0].tolist() if t < 256]
    assert tok.decode(row[:20]) in texts[first_doc]["text"] or tok.decode(row[:20])[:5] in " ".join(
        t["text"] for t in texts.values()
    )
    langs = {d.split("-")[1] for batch in batches for ids in batch.doc_ids for d in ids.split("+")}
    assert langs == {"en", "de", "ru"}  # the shuffle buffer mixes all three shards
    resumed = list(itertools.islice(data.train_batches(start=4), 2))
    assert all(torch.equal(a.tokens, r.tokens) for a, r in zip(batches[4:], resumed, strict=True))
    other_seed = next(
        ShardData(xquad_docs, tok, DataOptions(seq_len=64, batch_size=8, seed=4)).train_batches()
    )
    assert not torch.equal(other_seed.tokens, b.tokens)


def test_ranks_read_disjoint_shares_that_cover_the_split(xquad_docs):
    tok = ByteTokenizer()
    whole = {d for d, _ in ShardData(xquad_docs, tok, DataOptions()).documents("train")}
    for world in (2, 5):  # 3 shards: by shard for 2 ranks, by document for 5
        parts = [
            {
                d
                for d, _ in ShardData(xquad_docs, tok, DataOptions(rank=r, world_size=world)).documents(
                    "train"
                )
            }
            for r in range(world)
        ]
        assert set().union(*parts) == whole
        assert sum(map(len, parts)) == len(whole)
    test_docs = {d for d, _ in ShardData(xquad_docs, tok, DataOptions()).documents("test")}
    assert test_docs and not test_docs & whole


def test_eval_pairs_are_prompt_then_fifty_scored_tokens(xquad_docs, shared_dir):
    tok = BPETokenizer.train(
        ShardData(xquad_docs, ByteTokenizer(), DataOptions()).texts(max_chars=200_000), 1000
    )
    data = ShardData(xquad_docs, tok, DataOptions(batch_size=4))
    batches = list(data.eval_batches("val", max_examples=10))
    assert sum(b.tokens.shape[0] for b in batches) == 10
    for b in batches:
        assert ((b.prompt_len >= 100) & (b.prompt_len <= 200)).all()
        assert torch.equal(b.pad_mask.sum(1), b.prompt_len + 50)
        assert (b.tokens[~b.pad_mask] == tok.special.pad_id).all()
        assert all(split_of(d) == "val" for d in b.doc_ids)
    again = list(data.eval_batches("val", max_examples=10))
    assert all(torch.equal(a.tokens, b.tokens) for a, b in zip(batches, again, strict=True))
    with pytest.raises(ConfigError, match="'val' or 'test'"):
        next(data.eval_batches("train"))


def test_significance_spans_land_on_token_positions(xquad_docs, xquad_sig):
    tok = ByteTokenizer()
    data = ShardData(xquad_docs, tok, DataOptions(batch_size=2, val_frac=0.5), significance=xquad_sig)
    batch = next(data.eval_batches("val", max_examples=2))
    ranks, tokens = batch.removal_rank[0], batch.tokens[0]
    text = tok.decode(tokens[batch.pad_mask[0]].tolist())
    spaces = [i for i, t in enumerate(tokens.tolist()) if t == ord(" ")]
    assert (ranks[spaces] == -1).all()  # whitespace belongs to no word
    assert (ranks[~batch.pad_mask[0]] == -1).all()
    assert (ranks[batch.pad_mask[0]] >= 0).float().mean() > 0.7
    # every byte of one word shares its rank, and the shortest words go first
    word_end = text.index(" ")
    assert len(set(ranks[:word_end].tolist())) == 1
    one_letter = [i for i in range(1, len(text) - 1) if text[i - 1] == " " and text[i + 1] == " "]
    if one_letter:
        assert ranks[one_letter[0]] < ranks[:word_end].max() or word_end == 1
    train = next(data.train_batches())
    assert train.removal_rank.shape == train.tokens.shape


def test_sections_tables_train_too_and_split_by_page(data_root):
    rows = [
        {
            "wiki": "xwiki",
            "lang": "x",
            "page_id": p,
            "rev_id": 1,
            "section_idx": s,
            "paragraph_idx": 0,
            "text": f"page {p} section {s} " * 20,
        }
        for p in range(30)
        for s in range(3)
    ]
    ref = write_version(data_root, "x-wiki", {"sections": rows})
    data = open_data("x-wiki", ByteTokenizer(), DataOptions(seq_len=32, batch_size=2))
    assert data.table == "sections"
    docs = list(data.documents("train"))
    pages = Counter(d for d, _ in docs)
    assert all(n == 3 for n in pages.values())  # a page's paragraphs stay together
    assert next(data.train_batches()).tokens.shape == (2, 32)
    assert str(parse_data_spec(f"x-wiki@{ref.version}")) == str(ref)


def test_bad_data_gives_one_line_errors(data_root):
    with pytest.raises(WikimixError, match="no committed version"):
        parse_data_spec("nope")
    with pytest.raises(ConfigError, match="no data given"):
        parse_data_spec("")
    ref = write_version(data_root, "x-align", {"alignments": []})
    with pytest.raises(ConfigError, match="no text table"):
        ShardData(ref, ByteTokenizer(), DataOptions())
    tiny = write_version(data_root, "tiny-docs", {"documents": [{"doc_id": "a", "text": "short"}]})
    with pytest.raises(WikimixError, match="no training window"):
        next(ShardData(tiny, ByteTokenizer(), DataOptions(val_frac=0, test_frac=0)).train_batches())
    with pytest.raises(ConfigError, match="val_frac"):
        DataOptions(val_frac=0.6, test_frac=0.5)
    with pytest.raises(ConfigError, match="rank"):
        DataOptions(rank=2, world_size=2)


def test_markov_source_entropy_matches_its_samples_and_ranks_split_the_global_batch():
    src = MarkovData(DataOptions(seq_len=400, batch_size=64))
    batch = next(src.train_batches())
    nll, n = src.oracle_nll(batch)
    # the empirical NLL per token of a long sample approaches the entropy rate
    assert nll / n == pytest.approx(src.entropy_rate, abs=0.03)
    assert 0 < src.entropy_rate < math.log(3)  # 3 successors per state
    halves = [
        next(MarkovData(DataOptions(seq_len=400, batch_size=32, rank=r, world_size=2)).train_batches())
        for r in (0, 1)
    ]
    assert torch.equal(halves[0].tokens, batch.tokens[0::2]) and torch.equal(
        halves[1].tokens, batch.tokens[1::2]
    )
    assert torch.equal(
        next(src.train_batches(start=3)).tokens, list(itertools.islice(src.train_batches(), 4))[3].tokens
    )
