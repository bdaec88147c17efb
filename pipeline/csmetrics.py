"""Code-switching metrics over language-tagged tokens, per document and per dataset.

    from pipeline.csmetrics import doc_metrics, token_tags
    tags = token_tags(text, segments)          # one language tag per token, OTHER for numbers/punct
    doc_metrics(tags)                          # {"cmi": ..., "m_index": ..., ...}

Definitions (n tokens; u language-independent tokens; w_j tokens of language j; k languages; p_j share):
- CMI, Code-Mixing Index (Das & Gambäck 2014): 100 * (1 - max_j w_j / (n - u)), 0 when n == u.
- M-index (Barnett et al. 2000, as used by Guzmán et al. 2017): (1 - sum p_j^2) / ((k - 1) sum p_j^2);
  0 for one language, 1 when every language has the same share.
- I-index (Guzmán et al. 2017): switch points / (n - 1) over the language-tagged tokens.
- Burstiness (Goh & Barabási 2008, used by Guzmán et al. 2017): (sigma - mu) / (sigma + mu) of the lengths
  of monolingual spans; -1 periodic, 0 Poisson-like, towards 1 bursty.
- Language entropy (Guzmán et al. 2017): -sum p_j log2 p_j, in bits.
- Mean segment length: mean monolingual span length in tokens.
Language-independent tokens (numbers, punctuation, symbols) are tagged OTHER and left out of p_j,
switch points and spans, as the papers do for 'other'/'universal' tokens.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence

OTHER = "other"
# One token per CJK ideograph / kana / hangul syllable (no spaces between words there), else word runs,
# else single non-space symbols.
TOKEN_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]|[^\W\d_]+|\d+|\S")
METRIC_NAMES = ("cmi", "m_index", "i_index", "burstiness", "lang_entropy", "mean_segment_len")


def tokenize(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_language_token) per token; digits and punctuation are language-independent."""
    out = []
    for m in TOKEN_RE.finditer(text):
        tok = m.group()
        out.append((m.start(), m.end(), any(ch.isalpha() for ch in tok)))
    return out


def token_tags(text: str, segments: Iterable[dict]) -> list[str]:
    """Language tag of every token of `text`: its segment's `lang`, OTHER for language-independent ones."""
    spans = sorted((s["start"], s["end"], s["lang"]) for s in segments)
    tags = []
    j = 0
    for start, _end, is_word in tokenize(text):
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        inside = j < len(spans) and spans[j][0] <= start
        tags.append(spans[j][2] if is_word and inside else OTHER)
    return tags


def spans_of(tags: Sequence[str]) -> list[tuple[str, int]]:
    """Monolingual runs (language, length) over the language-tagged tokens (OTHER skipped)."""
    runs: list[list] = []
    for tag in tags:
        if tag == OTHER:
            continue
        if runs and runs[-1][0] == tag:
            runs[-1][1] += 1
        else:
            runs.append([tag, 1])
    return [(lang, n) for lang, n in runs]


def cmi(tags: Sequence[str]) -> float:
    n = len(tags)
    counts = Counter(t for t in tags if t != OTHER)
    u = n - sum(counts.values())
    if n == u:
        return 0.0
    return 100.0 * (1.0 - max(counts.values()) / (n - u))


def _shares(tags: Sequence[str]) -> list[float]:
    counts = Counter(t for t in tags if t != OTHER)
    total = sum(counts.values())
    return [c / total for c in counts.values()] if total else []


def m_index(tags: Sequence[str]) -> float:
    p = _shares(tags)
    k = len(p)
    if k < 2:
        return 0.0
    s = sum(x * x for x in p)
    return (1.0 - s) / ((k - 1) * s)


def i_index(tags: Sequence[str]) -> float:
    lang = [t for t in tags if t != OTHER]
    if len(lang) < 2:
        return 0.0
    return sum(a != b for a, b in zip(lang, lang[1:], strict=False)) / (len(lang) - 1)


def burstiness(tags: Sequence[str]) -> float:
    lengths = [n for _, n in spans_of(tags)]
    if not lengths:
        return 0.0
    mu = statistics.fmean(lengths)
    sigma = statistics.pstdev(lengths)
    return (sigma - mu) / (sigma + mu)


def lang_entropy(tags: Sequence[str]) -> float:
    return -sum(p * math.log2(p) for p in _shares(tags) if p > 0)


def mean_segment_len(tags: Sequence[str]) -> float:
    lengths = [n for _, n in spans_of(tags)]
    return statistics.fmean(lengths) if lengths else 0.0


def doc_metrics(tags: Sequence[str]) -> dict[str, float | int]:
    """All metrics of one document's token tags, plus n_langs and n_switches (the CS_METRICS struct)."""
    runs = spans_of(tags)
    return {
        "cmi": cmi(tags),
        "m_index": m_index(tags),
        "i_index": i_index(tags),
        "burstiness": burstiness(tags),
        "lang_entropy": lang_entropy(tags),
        "mean_segment_len": mean_segment_len(tags),
        "n_langs": len({lang for lang, _ in runs}),
        "n_switches": max(len(runs) - 1, 0),
    }


def dataset_metrics(docs_tags: Iterable[Sequence[str]]) -> dict[str, float | int]:
    """Per-dataset view: the mean of each per-document metric (`mean_<name>`), and the corpus-level
    metrics over all tokens pooled (documents kept apart, so no switch is counted across two documents)."""
    per_doc = []
    pooled: list[str] = []
    switches = 0
    pairs = 0
    all_runs: list[int] = []
    for tags in docs_tags:
        per_doc.append(doc_metrics(tags))
        lang = [t for t in tags if t != OTHER]
        switches += sum(a != b for a, b in zip(lang, lang[1:], strict=False))
        pairs += max(len(lang) - 1, 0)
        all_runs += [n for _, n in spans_of(tags)]
        pooled += tags
    out: dict[str, float | int] = {"n_docs": len(per_doc)}
    for name in METRIC_NAMES:
        out[f"mean_{name}"] = statistics.fmean(d[name] for d in per_doc) if per_doc else 0.0
    out["cmi"] = out["mean_cmi"]  # Das & Gambäck: corpus CMI is the mean over utterances
    out["m_index"] = m_index(pooled)
    out["lang_entropy"] = lang_entropy(pooled)
    out["i_index"] = switches / pairs if pairs else 0.0
    if all_runs:
        mu, sigma = statistics.fmean(all_runs), statistics.pstdev(all_runs)
        out["burstiness"] = (sigma - mu) / (sigma + mu)
        out["mean_segment_len"] = mu
    else:
        out["burstiness"] = out["mean_segment_len"] = 0.0
    out["n_langs"] = len({t for t in pooled if t != OTHER})
    return out
