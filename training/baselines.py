"""Baselines every table carries: a unigram and an interpolated Kneser-Ney n-gram, fitted on the train split.

Both model UTF-8 *bytes*. Bytes make them exact on the task's scored text (training/eval_task.py: the
continuation's bytes, whatever any model's tokenizer), give bits per byte with no tokenizer in between, and
let them be sampled like the byte model (invalid UTF-8 included, reported as such). A BPE n-gram would need
the reference tokenizer's segmentation of every completion, and its vocabulary of 8192 makes order-3 counts
sparse on a corpus of a few hundred thousand tokens; a 6-gram of bytes sees about two characters of
context for Cyrillic and five to six for Latin script, with far denser counts.

- `UnigramBytes`: p(b) = (count(b) + 1) / (N + 256) (add-one, so every byte has a finite cost).
- `KneserNeyBytes`: interpolated Kneser-Ney (Chen & Goodman 1998) of order `order`: the highest order on
  raw counts, lower orders on continuation counts (distinct left extensions), one absolute discount per
  order D = n1 / (n1 + 2 n2), the unigram level interpolated with the uniform law over 256 bytes; an unseen
  context falls through to the next lower order. Its distribution for any context sums to 1 (tested).

    lm = KneserNeyBytes.fit(train_texts, order=6)
    bits = lm.nll_bits(prompt_bytes, continuation_bytes)
    sample = lm.sample(prompt_bytes, n_bytes=120, rng=np.random.default_rng(0))
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from wikimix.errors import ConfigError

VOCAB = 256


class UnigramBytes:
    name = "unigram"

    def __init__(self, counts: np.ndarray):
        self.probs = (counts + 1.0) / (counts.sum() + VOCAB)

    @classmethod
    def fit(cls, texts: Iterable[str]) -> UnigramBytes:
        counts = np.zeros(VOCAB)
        for text in texts:
            counts += np.bincount(np.frombuffer(text.encode("utf-8"), dtype=np.uint8), minlength=VOCAB)
        return cls(counts)

    def dist(self, context: bytes) -> np.ndarray:
        return self.probs

    def nll_bits(self, prompt: bytes, continuation: bytes) -> float:
        return float(-np.log2(self.probs[np.frombuffer(continuation, dtype=np.uint8)]).sum())

    def sample(
        self, prompt: bytes, n_bytes: int, rng: np.random.Generator, temperature: float = 1.0
    ) -> bytes:
        return bytes(rng.choice(VOCAB, size=n_bytes, p=_tempered(self.probs, temperature)).tolist())


class KneserNeyBytes:
    name = "kneser-ney"

    def __init__(self, order: int, tables: dict[int, dict[bytes, tuple]], discounts: dict[int, float]):
        self.order, self.tables, self.discounts = order, tables, discounts
        self.dist = lru_cache(maxsize=200_000)(self._dist)

    @classmethod
    def fit(cls, texts: Iterable[str], order: int = 6) -> KneserNeyBytes:
        if order < 1:
            raise ConfigError(f"n-gram order must be >= 1, got {order}")
        counts: dict[int, Counter[bytes]] = {k: Counter() for k in range(1, order + 1)}
        for text in texts:  # raw counts of the highest order's n-grams
            data = text.encode("utf-8")
            counts[order].update(data[i : i + order] for i in range(len(data) - order + 1))
        for k in range(order, 1, -1):  # continuation counts: distinct left extensions of each (k-1)-gram
            for gram in counts[k]:
                counts[k - 1][gram[1:]] += 1
        tables: dict[int, dict[bytes, tuple]] = {}
        discounts: dict[int, float] = {}
        for k in range(1, order + 1):
            of_counts = Counter(counts[k].values())
            n1, n2 = of_counts.get(1, 0), of_counts.get(2, 0)
            discounts[k] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
            by_context: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
            for gram, c in counts[k].items():
                by_context[gram[:-1]].append((gram[-1], c))
            tables[k] = {
                h: (np.array([b for b, _ in f], dtype=np.int64), np.array([c for _, c in f], dtype=float))
                for h, f in by_context.items()
            }
        return cls(order, tables, discounts)

    def _dist(self, context: bytes) -> np.ndarray:
        """P(next byte | the last order - 1 bytes of context), over all 256 bytes."""
        p = np.full(VOCAB, 1.0 / VOCAB)
        for k in range(1, self.order + 1):
            if len(context) < k - 1:
                break
            entry = self.tables[k].get(context[len(context) - (k - 1) :] if k > 1 else b"")
            if entry is None:  # unseen context: this order adds nothing
                continue
            followers, c, d = entry[0], entry[1], self.discounts[k]
            total = c.sum()
            lower = p * (d * len(followers) / total)
            lower[followers] += np.maximum(c - d, 0.0) / total
            p = lower
        return p

    def nll_bits(self, prompt: bytes, continuation: bytes) -> float:
        text, start, h = prompt + continuation, len(prompt), self.order - 1
        return float(
            -sum(math.log2(self.dist(text[max(0, i - h) : i])[text[i]]) for i in range(start, len(text)))
        )

    def sample(
        self, prompt: bytes, n_bytes: int, rng: np.random.Generator, temperature: float = 1.0
    ) -> bytes:
        out, h = bytearray(prompt), self.order - 1
        for _ in range(n_bytes):
            out.append(
                int(rng.choice(VOCAB, p=_tempered(self.dist(bytes(out[len(out) - h :])), temperature)))
            )
        return bytes(out[len(prompt) :])


def _tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return p
    if temperature <= 0:
        out = np.zeros_like(p)
        out[int(np.argmax(p))] = 1.0
        return out
    q = np.exp(np.log(np.maximum(p, 1e-300)) / temperature)
    return q / q.sum()
