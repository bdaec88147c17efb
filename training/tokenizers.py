"""Tokenizers: byte-level (256 bytes + 4 specials) and ByteLevel BPE trained on the corpus.

Both map text to ids and back, and give each token its *character* span in the text, so significance
spans (character offsets into documents.text) land on token positions. Saved as `tokenizer.json`.

    tok = BPETokenizer.train(texts, vocab_size=8192); tok.save("out/tokenizer.json")
    tok = load_tokenizer("out/tokenizer.json")   # or load_tokenizer("byte")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from wikimix.errors import ConfigError, WikimixError

SPECIAL_TOKENS = ("<pad>", "<mask>", "<bos>", "<eos>")


@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens every model relies on."""

    pad_id: int
    mask_id: int
    bos_id: int
    eos_id: int


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    special: SpecialIds

    def encode(self, text: str) -> list[int]: ...
    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]: ...
    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...
    def encode_batch_with_offsets(
        self, texts: list[str]
    ) -> list[tuple[list[int], list[tuple[int, int]]]]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def serialized(self) -> str: ...
    def save(self, path: str | Path) -> None: ...


def tokenizer_hash(tok: Tokenizer) -> str:
    """sha256 prefix of the tokenizer's saved form: two tokenizers with one hash encode every text alike."""
    return hashlib.sha256(tok.serialized().encode()).hexdigest()[:16]


class ByteTokenizer:
    """UTF-8 bytes 0..255, then <pad> <mask> <bos> <eos> as 256..259."""

    name = "byte"
    vocab_size = 256 + len(SPECIAL_TOKENS)
    special = SpecialIds(pad_id=256, mask_id=257, bos_id=258, eos_id=259)

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for i, ch in enumerate(text):
            b = ch.encode("utf-8")
            ids.extend(b)
            offsets.extend([(i, i + 1)] * len(b))  # every byte of a character spans that character
        return ids, offsets

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def encode_batch_with_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        return [self.encode_with_offsets(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def serialized(self) -> str:
        return json.dumps({"wikimix_tokenizer": "byte", "special": asdict(self.special)})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.serialized())


class BPETokenizer:
    """ByteLevel BPE from the `tokenizers` library; specials get ids 0..3."""

    name = "bpe"

    def __init__(self, hf_tokenizer):
        self._tok = hf_tokenizer
        ids = [hf_tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if any(i is None for i in ids):
            raise WikimixError(f"BPE tokenizer lacks special tokens {SPECIAL_TOKENS}")
        self.special = SpecialIds(*ids)
        self.vocab_size = hf_tokenizer.get_vocab_size()

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8192) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ConfigError(f"BPE vocab_size must be >= {256 + len(SPECIAL_TOKENS)}, got {vocab_size}")
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte stays encodable
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self._tok.encode(text, add_special_tokens=False)
        return enc.ids, [tuple(o) for o in enc.offsets]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def encode_batch_with_offsets(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        encs = self._tok.encode_batch(texts, add_special_tokens=False)
        return [(e.ids, [tuple(o) for o in e.offsets]) for e in encs]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def serialized(self) -> str:
        return self._tok.to_str()

    def save(self, path: str | Path) -> None:
        self._tok.save(str(path))


def load_tokenizer(path_or_name: str | Path) -> ByteTokenizer | BPETokenizer:
    """'byte', or a saved tokenizer.json (either kind). One-line error otherwise."""
    if str(path_or_name) == "byte":
        return ByteTokenizer()
    path = Path(path_or_name)
    if not path.is_file():
        raise WikimixError(f"no tokenizer at {path} (give 'byte' or a tokenizer.json path)")
    try:
        head = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WikimixError(f"corrupt tokenizer file {path}: {exc}") from None
    if head.get("wikimix_tokenizer") == "byte":
        return ByteTokenizer()
    from tokenizers import Tokenizer as HFTokenizer

    try:
        return BPETokenizer(HFTokenizer.from_file(str(path)))
    except Exception as exc:  # the Rust side raises a bare Exception
        raise WikimixError(f"cannot load tokenizer {path}: {exc}") from None
