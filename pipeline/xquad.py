"""Code-switched paragraph documents from XQuAD: 48 SQuAD articles, 240 paragraphs, the same in every language.

    from pipeline.xquad import XquadConfig, build_xquad, load_xquad

XQuAD (`xquad.<lang>.json`, SQuAD format) is a professional translation of the same articles, aligned by
position: article i, paragraph j is one text in every language. Each article becomes one document whose
paragraphs are slots that any language may render (pipeline/codeswitch.py `compose`, one language per
paragraph, no language twice in a row), so an evaluation corpus gains whole-article concepts in languages
the wiki dumps lack. The document's concept is the English article title with spaces for underscores, the
way wiki concepts are named, so an XQuAD article and a wiki concept about the same subject are one split
unit (training/split.py) and never straddle train and test.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.codeswitch import BuildConfig, Candidate, Slot, annotate, compose, render
from wikimix.errors import ConfigError, WikimixError


@dataclass
class XquadConfig:
    langs: list[str] = field(default_factory=list)  # empty: every xquad.<lang>.json found
    policy: str = "uniform"  # uniform | weighted
    weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    lid: bool = True

    def __post_init__(self) -> None:
        if self.policy not in ("uniform", "weighted"):
            raise ConfigError(f"XQuAD documents take policy 'uniform' or 'weighted', not {self.policy!r}")


def concept_of(title: str) -> str:
    """A wiki-style concept name from an XQuAD (SQuAD) title: `Amazon_rainforest` -> `Amazon rainforest`."""
    return title.replace("_", " ").strip()


def load_xquad(directory: str | Path, langs: list[str] | None = None) -> list[dict]:
    """[{"concept", "paragraphs": [{lang: text}]}] per article, aligned across the chosen languages."""
    directory = Path(directory)
    found = sorted(p.name.split(".")[1] for p in directory.glob("xquad.*.json"))
    if not found:
        raise WikimixError(f"no XQuAD files (xquad.<lang>.json) under {directory}")
    langs = langs or found
    missing = sorted(set(langs) - set(found))
    if missing:
        raise WikimixError(f"XQuAD has no language(s) {', '.join(missing)} under {directory}")
    data = {lang: json.loads((directory / f"xquad.{lang}.json").read_text())["data"] for lang in langs}
    sizes = {lang: [len(a["paragraphs"]) for a in articles] for lang, articles in data.items()}
    if len({tuple(s) for s in sizes.values()}) != 1:
        raise WikimixError(f"XQuAD files under {directory} are not aligned (articles / paragraphs differ)")
    titles = data["en"] if "en" in data else data[langs[0]]
    articles = []
    for i, article in enumerate(titles):
        paragraphs = [
            {lang: data[lang][i]["paragraphs"][j]["context"].strip() for lang in langs}
            for j in range(len(article["paragraphs"]))
        ]
        articles.append({"concept": concept_of(article["title"]), "paragraphs": paragraphs})
    return articles


def article_slots(index: int, article: dict) -> list[Slot]:
    """One slot per paragraph, every language with the paragraph a candidate."""
    slots = []
    for j, texts in enumerate(article["paragraphs"]):
        source = {"wiki": "xquad", "page_id": index, "rev_id": 0, "section_idx": 0, "paragraph_idx": j,
                  "sentence_idx": 0}  # fmt: skip
        candidates = {lang: Candidate(lang, text, source) for lang, text in texts.items() if text}
        if candidates:
            slots.append(Slot(float(j), candidates))
    return slots


def build_xquad(
    directory: str | Path, writer, cfg: XquadConfig | None = None, rank: int = 0, world_size: int = 1
) -> dict:
    """Write `documents` shard `rank` of `world_size` (article i goes to rank i % world_size); a report."""
    cfg = cfg or XquadConfig()
    if not 0 <= rank < world_size:
        raise WikimixError(f"rank {rank} out of range for world size {world_size}")
    path = writer.shard_path("documents", rank, world_size)
    if writer.has_shard("documents", rank, world_size):
        return {"path": path, "skipped": True}
    articles = load_xquad(directory, cfg.langs or None)
    langs = sorted(articles[0]["paragraphs"][0])
    if len(langs) < 3:
        raise ConfigError("XQuAD documents need at least 3 languages")
    build = BuildConfig(
        policy=cfg.policy, granularity="sentence", seed=cfg.seed, weights=cfg.weights, min_langs=3,
        max_chars=10**9, avoid_recent=1, lid=cfg.lid, lid_filter=False,
    )  # fmt: skip
    rows: list[dict] = []
    stats: Counter = Counter()
    for i, article in enumerate(articles):
        if i % world_size != rank:
            continue
        docs, st = compose(
            article_slots(i, article), build, "sentence", random.Random(f"xquad\0{cfg.seed}\0{i}")
        )
        stats.update(st)
        rows += [
            render(article["concept"], cfg.policy, "paragraph", cfg.seed, k, s) for k, s in enumerate(docs)
        ]
    annotate(rows, cfg.lid)
    writer.write_shard("documents", rank, world_size, rows)
    return {"path": path, "skipped": False, "languages": len(langs), "documents": len(rows), **dict(stats)}
