"""The evaluation task, defined in characters so every row of the table scores and writes the same text.

A *pair* is a prompt (text) and the next span of reference text: `cont_len` tokens (~50) of one fixed
reference tokenizer (a BPE trained on the train split, saved beside the report), cut on the tokens'
character offsets. Every model then
- scores bits on exactly the continuation's UTF-8 bytes (its own tokens of the continuation text, after its
  own tokens of the prompt), so `scored_bytes` is the same in every row and bits per byte compares them;
- generates until it has at least as many bytes, cut at that length on a character boundary
  (`cut_to_bytes`), so every row's completions are as long as the reference.
Pairs come from the concept-disjoint test split (training/split.py): consecutive, non-overlapping windows
of a document, up to `pairs_per_doc` per document, `max_pairs` in all, taken round-robin over concepts;
each carries its split unit (the concept), the cluster of the bootstrap (training/intervals.py).

Text statistics are computed on valid decoded text only: bytes that are not valid UTF-8 (a byte model can
write them) are counted as the invalid rate and left out, never scored as U+FFFD characters.

    ref_tok = reference_tokenizer(data, vocab_size=8192, path=out / "reference_tokenizer.json")
    pairs = build_pairs(data, ref_tok, TaskConfig())
    ids, prompt_len = encode_pair(model_tok, pairs[0], max_len=512)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from training import metrics
from training.data import token_ranks
from training.tokenizers import BPETokenizer, ByteTokenizer, Tokenizer, load_tokenizer
from wikimix.errors import ConfigError, WikimixError


@dataclass(frozen=True)
class TaskConfig:
    prompt_min: int = 100  # reference tokens
    prompt_max: int = 200
    cont_len: int = 50
    pairs_per_doc: int = 4
    max_pairs: int = 256
    reference_vocab: int = 8192  # the reference BPE's vocabulary
    tokenizer_train_chars: int = 20_000_000

    def __post_init__(self) -> None:
        if not 1 <= self.prompt_min <= self.prompt_max or self.cont_len < 1:
            raise ConfigError("need 1 <= prompt_min <= prompt_max and cont_len >= 1")
        if self.pairs_per_doc < 1 or self.max_pairs < 1:
            raise ConfigError("pairs_per_doc and max_pairs must be >= 1")


@dataclass(frozen=True)
class Pair:
    unit: str  # the split unit (concept): pairs of one unit are one bootstrap cluster
    doc_id: str
    prompt: str
    continuation: str
    offset: int = 0  # character offset of the prompt in its document (significance spans land by it)

    @property
    def scored_bytes(self) -> int:
        return len(self.continuation.encode("utf-8"))


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def reference_tokenizer(data: Any, vocab_size: int, path: Path, max_chars: int = 20_000_000) -> Tokenizer:
    """The fixed reference BPE: loaded from `path` when there (a rerun scores the same pairs), else trained
    on the train split (the caller saves it with its outputs)."""
    if path.exists():
        return load_tokenizer(path)
    return BPETokenizer.train(data.texts("train", max_chars=max_chars), vocab_size)


def build_pairs(data: Any, ref_tok: Tokenizer, cfg: TaskConfig, split: str = "test") -> list[Pair]:
    """The task's pairs from `split` of a ShardData (any tokenizer: only its documents are read), taken
    round-robin over concepts (a concept's pairs in document order) so `max_pairs` spans as many concepts,
    the bootstrap's clusters, as the split holds."""
    by_unit: dict[str, list[Pair]] = {}
    for doc_id, text in data.documents(split, world_size=1, rank=0):
        ids, offsets = ref_tok.encode_with_offsets(text)
        pos, k = 0, 0
        while k < cfg.pairs_per_doc and len(ids) - pos >= cfg.prompt_min + cfg.cont_len:
            longest = min(cfg.prompt_max, len(ids) - pos - cfg.cont_len)
            plen = cfg.prompt_min + _stable_int(f"{doc_id}:{k}") % (longest - cfg.prompt_min + 1)
            start, cut = offsets[pos][0], offsets[pos + plen][0]
            end = offsets[pos + plen + cfg.cont_len - 1][1]
            prompt, continuation = text[start:cut], text[cut:end]
            if prompt.strip() and continuation:
                unit = data.units.get(doc_id, doc_id)
                by_unit.setdefault(unit, []).append(Pair(unit, doc_id, prompt, continuation, start))
            pos += plen + cfg.cont_len
            k += 1
    queues = [by_unit[u] for u in sorted(by_unit, key=_stable_int)]
    pairs: list[Pair] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        pairs += [q[depth] for q in queues if depth < len(q)]
    if not pairs:
        raise WikimixError(
            f"no {split} pair of {cfg.prompt_min}+{cfg.cont_len} reference tokens in the data "
            "(too few or too short documents in the split)"
        )
    return pairs[: cfg.max_pairs]


def encode_pair(
    tok: Tokenizer, pair: Pair, max_len: int | None, spans: list[tuple[int, int, int]] | None = None
) -> tuple[list[int], int, list[int] | None]:
    """(prompt ids + continuation ids, prompt length, removal ranks or None) in `tok`: the two texts
    encoded apart, so the continuation's ids stand for exactly its bytes; the prompt is cut from the left
    to fit `max_len`. With the document's significance `spans`, each token gets its removal rank."""
    prompt, p_off = tok.encode_with_offsets(pair.prompt)
    cont, c_off = tok.encode_with_offsets(pair.continuation)
    if max_len is not None:
        if len(cont) >= max_len:
            raise ConfigError(f"a {len(cont)}-token continuation does not fit the model's max_len {max_len}")
        keep = max_len - len(cont)
        prompt, p_off = prompt[-keep:], p_off[-keep:]
    if not prompt:
        prompt, p_off = [tok.special.bos_id], [(0, 0)]
    ranks = None
    if spans is not None:
        shift = pair.offset + len(pair.prompt)
        offsets = [(a + pair.offset, b + pair.offset) for a, b in p_off] + [
            (a + shift, b + shift) for a, b in c_off
        ]
        ranks = token_ranks(offsets, spans)
    return prompt + cont, len(prompt), ranks


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's ByteLevel alphabet (what `tokenizers` ByteLevel uses), character -> byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def token_bytes(tok: Tokenizer, ids: Iterable[int]) -> bytes:
    """The raw bytes a sequence of ids stands for (specials dropped), invalid UTF-8 included."""
    ids = [int(i) for i in ids]
    specials = set(vars(tok.special).values())
    if isinstance(tok, ByteTokenizer):
        return bytes(i for i in ids if 0 <= i < 256)
    if isinstance(tok, BPETokenizer):
        table = _byte_decoder()
        out = bytearray()
        for i in ids:
            piece = tok._tok.id_to_token(i) if i not in specials else None
            if piece:
                out.extend(table[ch] for ch in piece if ch in table)
        return bytes(out)
    return tok.decode(ids).encode("utf-8")


def cut_to_bytes(data: bytes, n: int) -> bytes:
    """The first `n` bytes, extended to the end of the character that byte `n - 1` starts or continues
    (UTF-8 continuation bytes are 10xxxxxx), so the cut never splits a character."""
    end = min(n, len(data))
    while end < len(data) and (data[end] & 0xC0) == 0x80:
        end += 1
    return data[:end]


def invalid_bytes(data: bytes) -> int:
    """Bytes of `data` that are not part of a valid UTF-8 character."""
    return len(data) - len(data.decode("utf-8", errors="ignore").encode("utf-8"))


def valid_text(data: bytes) -> str:
    return data.decode("utf-8", errors="ignore")


def _words(text: str) -> list[str]:
    """Whitespace words; characters for text written without spaces (CJK)."""
    return text.split() if " " in text.strip() else list(text)


def completion_stats(completion: bytes, distinct_n: int = 2, rep_n: int = 4) -> dict[str, float]:
    """One completion's statistics on its valid decoded text: character unigram entropy (bits),
    distinct-n over words, repeated-n-gram rate over characters."""
    text = valid_text(completion)
    return {
        "entropy": metrics.unigram_entropy([list(text)]),
        "distinct": metrics.distinct_n([_words(text)], distinct_n),
        "repetition": metrics.repeated_ngram_rate([list(text)], rep_n),
    }


def text_stats(completions: Sequence[bytes], distinct_n: int = 2, rep_n: int = 4) -> dict[str, float | None]:
    """Per-completion statistics (completion_stats) averaged over completions, as MDLM-family papers report
    sample entropy, and the invalid UTF-8 rate of the raw bytes."""
    per = [completion_stats(c, distinct_n, rep_n) for c in completions]
    total = sum(len(c) for c in completions)
    out: dict[str, float | None] = {k: sum(p[k] for p in per) / len(per) if per else None for k in STATS}
    out["invalid_utf8"] = sum(invalid_bytes(c) for c in completions) / total if total else None
    return out


STATS = ("entropy", "distinct", "repetition")


def byte_accuracy(completions: Sequence[bytes], references: Sequence[bytes]) -> float:
    """Share of the references' byte positions where the completion has the same byte: comparable across
    every row, whatever its tokenizer (all rows write the same number of bytes)."""
    return metrics.token_accuracy([list(c) for c in completions], [list(r) for r in references])
