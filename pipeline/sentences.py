"""Script-aware sentence and clause splitting, returning character spans so every piece stays traceable.

    from pipeline.sentences import split_sentences, split_clauses, sentences
    split_sentences("Հայաստանը երկիր է։ Այն ...", "hy")   # -> [(0, 18), (19, ...)]

Rules, per script:
- Latin, Cyrillic, Greek, Armenian, Georgian ...: `. ! ? …` end a sentence only when whitespace and a
  non-lowercase letter follow, and the word before the full stop is not a known abbreviation, a single
  letter (an initial) or an ordinal number before a lowercase word.
- Armenian `։` (and `:` used in its place), Devanagari `।` `॥`, Ethiopic `።`, Myanmar `။`, Khmer `។`,
  Arabic `؟` `۔`: always end a sentence.
- Tibetan `།` ends a clause as well as a sentence: it ends a sentence unless the syllable before it is a
  particle that needs a continuation (a connective, a case ending, the topic or quotative marker).
- CJK `。！？` end a sentence without any following space.
Closing quotes and brackets after a terminator stay with the sentence. A line break (one list item per
line) always ends a sentence.
"""

from __future__ import annotations

import re
import unicodedata

import regex

from pipeline.langcodes import ISO1_TO_ISO3, MACROLANGUAGE, iso3
from wikimix.errors import WikimixError

ISO3_TO_ISO1 = {v: k for k, v in ISO1_TO_ISO3.items()}

# Terminators that end a sentence whatever follows.
HARD_STOPS = "。！？｡։।॥።။།។؟۔᱾᱿"
# Terminators that end a sentence only before whitespace + a non-lowercase start.
SOFT_STOPS = ".!?…"
CLOSERS = "\"'”’»)]}》」』）"
# Clause boundaries: comma-like and semicolon-like marks (CJK ones need no space after them).
CLAUSE_MARKS_SPACED = ",;:،؛՝"
CLAUSE_MARKS_CJK = "、，；："

# Abbreviations that end in a full stop and are followed by more of the same sentence (lowercased, no dot).
_ABBREVIATIONS_TEXT = """
    e.g i.e vs mr mrs ms dr prof st jr sr no nos vol fig approx ca cf al inc ltd co corp jan feb
    mar apr jun jul aug sep sept oct nov dec gen col lt sgt gov rev mt ft u.s u.k a.m p.m ph.d b.c
    a.d z.b bzw usw ggf vgl nr chr geb gest sra srta dra ud uds pág núm av mme mlle env cie sig dott
    ecc т.е т.д т.п т.к т д п г гг им ул см ст стр тыс млн млрд р рр тис див напр проф акад н.э н.е
    пр вул обл р-н с е ін др пос ок прибл
"""
ABBREVIATIONS = set(_ABBREVIATIONS_TEXT.split())
_WORD_BEFORE = regex.compile(r"([\w\p{M}.\-]+)$")  # marks too: a Devanagari/Sinhala word ends in one
_SPACE_AFTER = re.compile(r"\s+")
_SMALL_LETTER_CHAIN = regex.compile(r"\s*\p{L}\.")  # after "z.": " B." continues the abbreviation


def _is_lower(ch: str) -> bool:
    """A lowercase letter of a cased script (Georgian Mkhedruli is Ll in Unicode but written caseless)."""
    return unicodedata.category(ch) == "Ll" and not "\u10d0" <= ch <= "\u10ff"


def _abbreviation_before(text: str, dot: int) -> bool:
    """True when the full stop at `dot` closes an abbreviation or an initial, not a sentence."""
    m = _WORD_BEFORE.search(text, max(0, dot - 40), dot)
    if not m:
        return False
    word = m.group(1).strip(".")
    if not word:
        return False
    if word.lower() in ABBREVIATIONS:
        return True
    if _THAI.match(word[-1]):  # Thai ends sentences with a space; its full stop marks abbreviations (น.)
        return True
    if len(word) != 1:
        return False
    # A single capital is an initial ("J. R. R. Tolkien", "О. Пушкін"); a single small letter only in a
    # chain of them ("z. B.", "d. h."): alone it is a word ("... Whitehall e." in Fon). In an abugida a
    # lone consonant is a word too ("...आहेत." ends in त after its vowel mark).
    category = unicodedata.category(word)
    return category == "Lu" or (category == "Ll" and bool(_SMALL_LETTER_CHAIN.match(text, dot + 1)))


NO_SPACE_SCRIPTS = frozenset({"Jpan", "Hans", "Hant"})  # no space between sentences


def sentencex_spans(text: str, lang: str = "") -> list[tuple[int, int]]:
    """Sentence spans by sentencex (Wikimedia's rule-based segmenter), whitespace trimmed."""
    from sentencex import get_sentence_boundaries

    spans: list[tuple[int, int]] = []
    for b in get_sentence_boundaries(sentencex_code(lang), text):
        _append_trimmed(text, b["start_index"], b["end_index"], spans)
    return spans


def sentencex_code(lang: str) -> str:
    """sentencex keys its rules by wiki / ISO 639-1 code where one exists ('hye_Armn' -> 'hy')."""
    code = iso3(lang)
    if code is None:
        return lang or "en"
    return ISO3_TO_ISO1.get(code) or ISO3_TO_ISO1.get(MACROLANGUAGE.get(code, code)) or code


def split_sentences(text: str, lang: str = "") -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of `text`, whitespace trimmed, in order.

    The project's rules (`rule_spans`, better than sentencex on every script of SIB-200 but Thai, see
    bench/sentences.py); a span holding Thai is split further by PyThaiNLP's CRF model, since Thai marks
    a sentence end with nothing but a space, as it does many phrase ends.
    """
    spans = []
    for a, b in rule_spans(text, lang):
        if _THAI.search(text, a, b):
            spans += [(a + x, a + y) for x, y in thai_spans(text[a:b])]
        else:
            spans.append((a, b))
    return spans


_THAI = regex.compile(r"\p{Thai}")


def thai_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of Thai text by PyThaiNLP's CRF sentence segmenter (`crfcut`, model in the wheel)."""
    try:
        from pythainlp.tokenize import sent_tokenize
    except ImportError:
        raise WikimixError(
            "package pythainlp is not installed (pip install pythainlp python-crfsuite)"
        ) from None
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece in sent_tokenize(text, engine="crfcut"):
        start = text.find(piece, pos)
        if start < 0:  # the model returned text that is not a substring: keep what is left whole
            break
        _append_trimmed(text, start, start + len(piece), spans)
        pos = start + len(piece)
    if pos < len(text):
        _append_trimmed(text, pos, len(text), spans)
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        # The model ends sentences at abbreviations ("11.00 น." = o'clock) and before words that tie what
        # follows to what precedes (THAI_CONTINUATIONS): rejoin both.
        after_abbreviation = (
            merged and text[merged[-1][1] - 1] == "." and _abbreviation_before(text, merged[-1][1] - 1)
        )
        if merged and (after_abbreviation or _starts_with_continuation(text, a, b)):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


# Thai words that cannot open an independent sentence, because they tie their clause to the one before:
# the coordinators และ "and" and หรือ "or", the relative ซึ่ง "which", the connectives โดย/โดยที่ "by,
# whereby", จึง "therefore", เพื่อ/เพื่อให้ "in order to", ทำให้ "causing", and the list openers เช่น "such
# as", รวมทั้ง/รวมถึง/รวมไปถึง "including", โดยเฉพาะ(อย่างยิ่ง) "especially". A space before them is a clause
# boundary inside the sentence.
_THAI_CONTINUATIONS_TEXT = (
    "และ หรือ ซึ่ง โดย โดยที่ จึง เพื่อ เพื่อให้ ทำให้ เช่น รวมทั้ง รวมถึง รวมไปถึง โดยเฉพาะ โดยเฉพาะอย่างยิ่ง"
)
THAI_CONTINUATIONS = frozenset(_THAI_CONTINUATIONS_TEXT.split())


def _starts_with_continuation(text: str, start: int, end: int) -> bool:
    """Whether the first Thai word of text[start:end] is one of THAI_CONTINUATIONS."""
    from pythainlp.tokenize import word_tokenize

    words = word_tokenize(text[start : min(end, start + 24)], engine="newmm", keep_whitespace=False)
    return bool(words) and words[0] in THAI_CONTINUATIONS


def rule_spans(text: str, lang: str = "") -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of `text`, whitespace trimmed, in order.

    The rules are chosen by the characters themselves, so mixed-script text (a Latin name inside Japanese)
    splits right too; `lang` only adds Armenian's ASCII `:` used as a full stop.
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    armenian = lang in ("hy", "hye", "hye_Armn")  # Armenian text often types `:` for `։`
    start = 0
    i = 0
    while i < n:
        ch = text[i]
        end = None
        # A line break ends a sentence (list items, one per line); so does a Tibetan ga-final space.
        if ch == "\n" or (ch == " " and i > start and _tibetan_sentence_end(text, i)):
            end = i
            i += 1
        elif ch == "།" and _tibetan_clause_shad(text, i):
            i += 1
        elif ch in HARD_STOPS or ch in "!?":
            # `!`/`?` before whitespace act like soft stops below; in CJK text a bare `！？` is hard.
            j = i + 1
            while j < n and (text[j] in HARD_STOPS or text[j] in "!?" or text[j] in CLOSERS):
                j += 1
            if ch in HARD_STOPS or j >= n or text[j].isspace():
                end = j
            i = j
        elif ch in SOFT_STOPS or (ch == ":" and armenian):
            j = i + 1
            while j < n and (text[j] in SOFT_STOPS or text[j] in CLOSERS):
                j += 1
            m = _SPACE_AFTER.match(text, j)
            if j >= n:
                end = j
            elif m:
                nxt = text[m.end()] if m.end() < n else ""
                boundary = nxt == "" or not _is_lower(nxt)
                if ch == "." and boundary and _abbreviation_before(text, i):
                    boundary = False
                # "am 1. Januar": a one- or two-digit ordinal inside a sentence is not an end.
                if ch == "." and boundary and re.search(r"\S\s+\d{1,2}$", text[max(start, i - 20) : i]):
                    boundary = False
                if boundary:
                    end = j
            i = j
        else:
            i += 1
        if end is not None:
            _append_trimmed(text, start, end, spans)
            start = end
    _append_trimmed(text, start, n, spans)
    return spans


def _blank(ch: str) -> bool:
    """Whitespace, or the zero-width space Khmer, Lao and Thai text writes between words."""
    return ch.isspace() or ch in "\u200b\ufeff"


def _tibetan_sentence_end(text: str, space: int) -> bool:
    """Tibetan writes no shad after a final ག (`...འདུག `): a space straight after a Tibetan letter, with
    Tibetan text after it, ends a sentence (inside a sentence a space follows a tsheg ་ or a shad །)."""
    before, after = text[space - 1], text[space + 1 : space + 2]
    return "\u0f40" <= before <= "\u0fbc" and bool(after) and "\u0f40" <= after <= "\u0fbc"


# Tibetan syllables after which a shad closes a clause, never a sentence: the connectives (དང "and",
# ཅིང/ཞིང/ཤིང and སྟེ/ཏེ "and then", ཀྱང/ཡང/འང/རུང "even, also", ན "if, when", ནས "after, from"), the case
# endings that need a head or a verb after them (genitive ཀྱི/གྱི/གི, terminative ཏུ/དུ/སུ/རུ/པར/བར,
# dative-locative ལ, ablative ལས), the topic marker ནི and the quotative ཅེས/ཞེས/ཤེས. A sentence ends in a
# verb or auxiliary (རེད ཡོད ཡིན འདུག སོང, Dzongkha ཨིན མས) or a final particle (གོ ངོ ... སོ).
_TIBETAN_CLAUSE_PARTICLES_TEXT = "དང ཅིང ཞིང ཤིང སྟེ ཏེ ཀྱང ཡང འང རུང ན ནས ཀྱི གྱི གི ཏུ དུ སུ རུ པར བར ལ ལས ནི ཅེས ཞེས ཤེས"
TIBETAN_CLAUSE_PARTICLES = frozenset(_TIBETAN_CLAUSE_PARTICLES_TEXT.split())
_TIBETAN_SYLLABLE_BEFORE = regex.compile(r"([\u0f40-\u0fbc]+)[\u0f0b\u0f0c]?\s*$")


def _tibetan_clause_shad(text: str, shad: int) -> bool:
    """True when the shad at `shad` closes a clause: the syllable before it is a clause particle."""
    m = _TIBETAN_SYLLABLE_BEFORE.search(text, max(0, shad - 12), shad)
    return bool(m) and m.group(1) in TIBETAN_CLAUSE_PARTICLES


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and _blank(text[start]):
        start += 1
    while end > start and _blank(text[end - 1]):
        end -= 1
    if end > start:
        spans.append((start, end))


def sentences(text: str, lang: str = "") -> list[str]:
    """The sentence strings of `text`."""
    return [text[a:b] for a, b in split_sentences(text, lang)]


def split_clauses(sentence: str, lang: str = "", min_chars: int = 12) -> list[tuple[int, int]]:
    """Character spans of the clauses of one sentence, split after comma- and semicolon-like marks.

    A mark splits only when whitespace follows (CJK marks need none) and not between digits (1,000).
    Pieces shorter than `min_chars` join their neighbour, so a clause is never a lone word or list item.
    """
    cuts = [0]
    n = len(sentence)
    for i, ch in enumerate(sentence):
        if ch in CLAUSE_MARKS_CJK or (ch in CLAUSE_MARKS_SPACED and i + 1 < n and sentence[i + 1].isspace()):
            cuts.append(i + 1)
    cuts.append(n)
    pieces: list[tuple[int, int]] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b > a:
            pieces.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged and (len(sentence[merged[-1][0] : merged[-1][1]].strip()) < min_chars):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    if len(merged) > 1 and len(sentence[merged[-1][0] : merged[-1][1]].strip()) < min_chars:
        last = merged.pop()
        merged[-1] = (merged[-1][0], last[1])
    out: list[tuple[int, int]] = []
    for a, b in merged:
        _append_trimmed(sentence, a, b, out)
    return out
