"""Evidence the aligner weighs, independent of the language: anchors and sentence embeddings.

Anchors (`text_anchors`, `link_anchors`): wikilink targets mapped to concepts through langlinks, numbers
(digits of any script normalised), Latin-script words in non-Latin text and capitalised names in cased
scripts, and the consonant skeleton of names transliterated to Latin ('Warsaw' = 'Варшава' = 'vrsv').
`anchor_overlap` scores two units' anchors (IDF-weighted, per anchor kind).

Embeddings (`margin_matrix`): the ratio margin of bitext mining (Artetxe & Schwenk 2019): the cosine of a
pair over the mean cosine of each side's k nearest candidates on the other side, so a pair counts only
when it stands out from its neighbours (hubs and generally similar paragraphs of one article do not).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipeline.concepts import normalize_title
from pipeline.sections import numbers_in

EVIDENCE_DAMPING = 0.5  # idf mass at which one kind's overlap counts half: one shared digit is thin evidence
LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'\-]+")
WORD = re.compile(r"[^\W\d_][^\W\d_'’\-]*")
PHONETIC_DIGRAPHS = (
    ("sh", "s"),
    ("ch", "k"),
    ("kh", "h"),
    ("gh", "g"),
    ("ph", "f"),
    ("th", "t"),
    ("ts", "s"),
)
PHONETIC_LETTERS = str.maketrans({"w": "v", "c": "k", "q": "k", "x": "k", "z": "s", "j": "j"})


# --------------------------------------------------------------------------------------------- anchors


@dataclass
class LinkIndex:
    """(lang, title) -> concept, from pages and their langlinks; links to the same concept match."""

    concept_of: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_pages(cls, pages: Iterable[dict]) -> LinkIndex:
        index = cls()
        for page in pages:
            concept = page.get("concept") or f"{page['lang']}:{normalize_title(page['title'])}"
            index.add(page["lang"], page["title"], concept)
            for link in page.get("langlinks") or []:
                index.add(link["lang"], link["title"], concept)
        return index

    def add(self, lang: str, title: str, concept: str) -> None:
        self.concept_of.setdefault((lang, normalize_title(title)), concept)

    def anchor(self, lang: str, title: str) -> str:
        title = normalize_title(title)
        concept = self.concept_of.get((lang, title))
        return f"c:{concept}" if concept else f"t:{_fold(title)}"


def _fold(s: str) -> str:
    """Case- and accent-insensitive form (names keep their letters across languages: 'Gambäck'='Gamback')."""
    decomposed = unicodedata.normalize("NFKD", s.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.lru_cache(maxsize=200_000)
def phonetic_key(word: str) -> str:
    """Consonant skeleton of a word transliterated to Latin: 'Warsaw', 'Варшава' -> 'vrsv';
    'Matlin', 'ماتلين' -> 'mtln'. Names written in different scripts meet here."""
    from anyascii import anyascii

    s = _fold(anyascii(word))
    for a, b in PHONETIC_DIGRAPHS:
        s = s.replace(a, b)
    s = re.sub(r"[^a-z]", "", s.translate(PHONETIC_LETTERS))
    s = re.sub(r"[aeiouyh]", "", s)
    return re.sub(r"(.)\1+", r"\1", s)


def _script_has_case(word: str) -> bool:
    first = word[0]
    return first.lower() != first.upper()


def _is_han(word: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in word)


def _stem(word: str) -> str:
    """Drop a possessive or plural s ("Tesla's", "Teslas" -> "tesla"): names inflect so across languages."""
    word = word.removesuffix("'s").removesuffix("’s")
    return word[:-1] if len(word) > 4 and word.endswith("s") else word


def mostly_latin(text: str) -> bool:
    letters = [ch for ch in text[:2000] if ch.isalpha()]
    latin = sum(1 for ch in letters if ch.isascii() or "\u00c0" <= ch <= "\u024f")
    return bool(letters) and latin / len(letters) > 0.5


def text_anchors(text: str, latin_text: bool | None = None) -> Counter[str]:
    """Language-independent anchors found in a text: numbers and Latin-script names.

    In Latin-script text only capitalised words that do not start a sentence count (names); in other
    scripts every Latin word does (it is a name, a code or a borrowed term).
    """
    if latin_text is None:
        latin_text = mostly_latin(text)
    # Digits only: '2,850' (en), '2.850' (de) and '2850' (ja) are one anchor whichever separator
    # convention the language uses for thousands or decimals.
    anchors: Counter[str] = Counter(f"n:{re.sub(r'[^0-9]', '', n)}" for n in numbers_in(text))
    for m in WORD.finditer(text):
        word = m.group()
        latin = bool(LATIN_WORD.fullmatch(word))
        cased = _script_has_case(word)
        if cased:
            # A capitalised word that does not start a sentence is a name (in any cased script).
            k = m.start() - 1
            while k >= 0 and text[k] in " \t":
                k -= 1
            is_name = word[0].isupper() and k >= 0 and text[k] not in ".!?:;\n\"'«“。"
        else:
            is_name = not _is_han(word)  # caseless scripts (Arabic, Devanagari, kana): any word may be
        if latin and (is_name or not latin_text) and len(word) >= 2:
            anchors[f"w:{_stem(_fold(word))}"] += 1
        if is_name or (latin and not latin_text):
            key = phonetic_key(word)
            if len(key) >= 3:
                anchors[f"p:{key}"] += 1
    return anchors


def link_anchors(links: Iterable[str], lang: str, index: LinkIndex) -> Counter[str]:
    return Counter(index.anchor(lang, t) for t in links if t)


def links_in_sentence(sentence: str, links: Iterable[str]) -> list[str]:
    """Link targets of a paragraph that appear in one of its sentences (prefix match allows inflection)."""
    low = sentence.casefold()
    out = []
    for t in links:
        stem = t.casefold()[: max(4, len(t) - 3)]
        if stem and stem in low:
            out.append(t)
    return out


def idf_weights(anchor_sets: list[Counter[str]]) -> dict[str, float]:
    """Inverse document frequency of each anchor over the units being compared."""
    df: Counter[str] = Counter()
    for anchors in anchor_sets:
        df.update(set(anchors))
    n = len(anchor_sets)
    return {a: math.log(1.0 + n / c) for a, c in df.items()}


def kind_weights(anchors: Counter[str], idf: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for x, c in anchors.items():
        out[x[0]] += c * idf.get(x, 1.0)
    return out


def anchor_overlap(
    a: Counter[str],
    b: Counter[str],
    idf: dict[str, float],
    kinds_a: dict[str, float] | None = None,
    kinds_b: dict[str, float] | None = None,
) -> tuple[float, list[str]]:
    """IDF-weighted anchor overlap, averaged over the anchor kinds (number, word, phonetic, link) both
    sides have.

    Kinds are compared apart so that a side that cannot express a kind (no Latin words in Arabic text)
    is not penalised for lacking it. Per kind: the shared weight over the smaller side's weight (the
    overlap coefficient: a short paragraph is not penalised for its long counterpart), damped when the
    shared evidence is thin.
    """
    if not a or not b:
        return 0.0, []
    shared = a.keys() & b.keys()
    if not shared:
        return 0.0, []
    kinds_a = kinds_a if kinds_a is not None else kind_weights(a, idf)
    kinds_b = kinds_b if kinds_b is not None else kind_weights(b, idf)
    kinds = kinds_a.keys() & kinds_b.keys()
    common: dict[str, float] = defaultdict(float)
    for x in shared:
        common[x[0]] += min(a[x], b[x]) * idf.get(x, 1.0)
    total = sum(
        common[k] / min(kinds_a[k], kinds_b[k]) * common[k] / (common[k] + EVIDENCE_DAMPING) for k in common
    )
    ranked = sorted(shared, key=lambda x: (-idf.get(x, 1.0), x))
    return total / len(kinds), ranked


def length_score(len_a: int, len_b: int, expected_ratio: float) -> float:
    if len_a <= 0 or len_b <= 0:
        return 0.0
    return math.exp(-abs(math.log((len_b / len_a) / expected_ratio)))


def margin_matrix(emb_a: np.ndarray, emb_b: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(ratio margins, cosines) of every pair of unit embeddings (unit-norm rows).

    margin(x, y) = cos(x, y) / ((mean cos of x's k nearest ys) + (mean cos of y's k nearest xs)) * 2;
    k shrinks to the smaller side. A true translation among its article's paragraphs stands out: > 1.
    """
    cos = emb_a @ emb_b.T
    if cos.size == 0:
        return cos, cos
    k_a, k_b = min(k, cos.shape[1]), min(k, cos.shape[0])
    near_a = np.sort(cos, axis=1)[:, -k_a:].mean(axis=1)  # per row: its k best columns
    near_b = np.sort(cos, axis=0)[-k_b:, :].mean(axis=0)
    return cos / np.maximum((near_a[:, None] + near_b[None, :]) / 2, 1e-6), cos
