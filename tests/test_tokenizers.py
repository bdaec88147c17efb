"""Byte and BPE tokenizers: round trips, character offsets, specials, save/load, errors."""

from __future__ import annotations

import pytest

from training.tokenizers import BPETokenizer, ByteTokenizer, load_tokenizer
from wikimix.errors import ConfigError, WikimixError

MIXED = "Kyiv — Київ ist die Hauptstadt. 東京は日本の首都です. Hà Nội là thủ đô."


def test_byte_round_trip_and_offsets_point_at_characters():
    tok = ByteTokenizer()
    ids, offsets = tok.encode_with_offsets(MIXED)
    assert ids == tok.encode(MIXED) == list(MIXED.encode("utf-8"))
    assert tok.decode(ids) == MIXED
    assert len(offsets) == len(ids)
    # every byte of "東" (3 bytes) spans exactly that one character
    k = MIXED.index("東")
    first = len(MIXED[:k].encode("utf-8"))
    assert offsets[first : first + 3] == [(k, k + 1)] * 3
    assert tok.vocab_size == 260
    assert {tok.special.pad_id, tok.special.mask_id, tok.special.bos_id, tok.special.eos_id} == {
        256,
        257,
        258,
        259,
    }
    assert tok.decode([72, 105, tok.special.mask_id, tok.special.eos_id]) == "Hi"  # specials vanish


def test_bpe_trains_round_trips_and_maps_offsets(tmp_path):
    corpus = [MIXED, "Die Hauptstadt der Ukraine ist Kyiv.", "Thủ đô của Việt Nam là Hà Nội."] * 50
    tok = BPETokenizer.train(corpus, vocab_size=400)
    assert 260 < tok.vocab_size <= 400
    assert tok.special.pad_id != tok.special.mask_id
    ids, offsets = tok.encode_with_offsets(MIXED)
    assert tok.decode(ids) == MIXED
    assert len(ids) < len(MIXED.encode("utf-8"))  # merges learned
    # offsets are character offsets into the text, in order, covering it
    assert offsets[0][0] == 0 and offsets[-1][1] == len(MIXED)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(offsets, offsets[1:], strict=False))
    pieces = "".join(tok.decode([i]) for i in ids)
    assert pieces == MIXED
    unseen = "Ψ new script ✓"
    assert tok.decode(tok.encode(unseen)) == unseen  # byte fallback via the initial alphabet

    path = tmp_path / "tokenizer.json"
    tok.save(path)
    again = load_tokenizer(path)
    assert again.encode(MIXED) == ids and again.special == tok.special
    assert tok.encode_batch([MIXED, "Kyiv"]) == [ids, tok.encode("Kyiv")]
    assert tok.encode_batch_with_offsets([MIXED])[0] == (ids, offsets)


def test_byte_tokenizer_saves_and_loads(tmp_path):
    ByteTokenizer().save(tmp_path / "tokenizer.json")
    assert isinstance(load_tokenizer(tmp_path / "tokenizer.json"), ByteTokenizer)
    assert isinstance(load_tokenizer("byte"), ByteTokenizer)


def test_bad_tokenizer_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(WikimixError, match="no tokenizer at"):
        load_tokenizer(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(WikimixError, match="corrupt tokenizer file"):
        load_tokenizer(bad)
    with pytest.raises(ConfigError, match="vocab_size must be >= 260"):
        BPETokenizer.train(["abc"], vocab_size=100)
