"""The shard loader: splits, rank sharding, packed windows, eval pairs, significance ranks; Markov source."""

from __future__ import annotations

import itertools
import math
import re
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


def assert_packed_from(window: list[int], docs: list[list[int]], eos: int) -> None:
    """A training window is its documents' tokens packed with <eos> after each: the tail of the first
    document, the middle ones whole, the head of the last."""
    pieces: list[list[int]] = [[]]
    for t in window:
        if t == eos:
            pieces.append([])
        else:
            pieces[-1].append(t)
    if pieces[-1] == []:  # the window ends on the last document's <eos>
        pieces.pop()
    assert len(pieces) == len(docs), (len(pieces), len(docs))
    for i, (piece, doc) in enumerate(zip(pieces, docs, strict=True)):
        followed_by_eos = i < len(pieces) - 1 or window[-1] == eos
        if i == 0 and followed_by_eos:
            assert doc[len(doc) - len(piece) :] == piece, "the window does not start with a document's tail"
        elif i == 0:  # one document fills the window: any stretch of it
            assert any(doc[j : j + len(piece)] == piece for j in range(len(doc) - len(piece) + 1))
        elif followed_by_eos:
            assert piece == doc, f"document {i} of the window is not whole"
        else:
            assert doc[: len(piece)] == piece, "the window does not end with a document's head"


def test_train_windows_stream_from_every_shard_and_resume_exactly(xquad_docs):
    tok = ByteTokenizer()
    data = ShardData(xquad_docs, tok, DataOptions(seq_len=64, batch_size=8, seed=3))
    batches = list(itertools.islice(data.train_batches(), 6))
    b = batches[0]
    assert b.tokens.shape == (8, 64) and b.pad_mask.all() and (b.prompt_len == 0).all()
    assert b.removal_rank is None and len(b.doc_ids) == 8
    texts = {r["doc_id"]: r["text"] for r in xquad_docs.read("documents").to_pylist()}
    for batch in batches:
        for tokens, doc_ids in zip(batch.tokens.tolist(), batch.doc_ids, strict=True):
            assert all(split_of(d) == "train" for d in doc_ids.split("+"))
            assert_packed_from(tokens, [tok.encode(texts[d]) for d in doc_ids.split("+")], tok.special.eos_id)
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
    assert batch.tokens.shape[0] == 2
    for ranks, tokens, real in zip(batch.removal_rank, batch.tokens, batch.pad_mask, strict=True):
        text = tok.decode(tokens[real].tolist())
        spaces = [i for i, t in enumerate(tokens.tolist()) if t == ord(" ")]
        assert (ranks[spaces] == -1).all()  # whitespace belongs to no word
        assert (ranks[~real] == -1).all()
        assert (ranks[real] >= 0).float().mean() > 0.7
        # every byte of a word carries that word's rank, and the ranks order the words shortest first
        # (xquad_sig ranks by length, then position); the window may cut the last word, so it is left out
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)][:-1]
        byte_at = [len(text[:i].encode()) for i in range(len(text) + 1)]
        word_ranks = []
        for start, end in words:
            in_word = set(ranks[byte_at[start] : byte_at[end]].tolist())
            assert len(in_word) == 1 and min(in_word) >= 0, (text[start:end], in_word)
            word_ranks.append(in_word.pop())
        by_length = sorted(range(len(words)), key=lambda k: (words[k][1] - words[k][0], k))
        assert [word_ranks[k] for k in by_length] == sorted(word_ranks)
        assert len(set(word_ranks)) == len(words) > 10 and len({e - s for s, e in words}) >= 4
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
