"""Documents that switch among dozens of languages, from SIB-200 (the same 1,004 sentences in ~190).

    wikimix codeswitch --sib200 ../shared/corpus/sib200 --sentences-per-doc 40     # CLI: sib200-docs
    from pipeline.sib200 import Sib200Config, build_sib200, load_sib200

SIB-200 (FLORES-200 sentences with topic labels) is sentence-aligned by `index_id` across language
varieties written as ISO 639-3 + script (`eng_Latn`). Consecutive index_ids come from the same source
article, so a window of consecutive sentences reads as a passage; every sentence of the window becomes a
slot that any language may render, and the passage is composed by pipeline.codeswitch. With `distinct`
(the default) no language repeats inside a document until all are used: a window as long as the
language list mixes every language once, as in one article written in all the languages it exists in.
Language ID and metrics run across all of them (codes mapped to lid.176's by pipeline.lid; languages the
model does not know are left out of the agreement rate and counted).

`write_sib200_wiki` turns one group of consecutive sentences into one concept with an article in every
variety (a `<name>-wiki` version, as ingest writes), so the aligner and the whole corpus pipeline can be
run, and timed, on a concept in all ~190 languages (bench/scale.py):

    ref = write_sib200_wiki("../shared/corpus/sib200", root="data", name="sib-all", sentences=8)
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.codeswitch import BuildConfig, Candidate, Slot, annotate, compose, render, summarize
from pipeline.lid import lid_code
from wikimix.errors import ConfigError, WikimixError

SPLITS = ("train", "dev", "test")


@dataclass
class Sib200Config:
    langs: list[str] = field(default_factory=list)  # empty: every language directory found
    sentences_per_doc: int = 24
    distinct: bool = True  # no language twice in a document until every language was used
    policy: str = "uniform"  # uniform | weighted (curriculum stages are for aligned articles)
    granularity: str = "sentence"  # sentence | clause
    weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    lid: bool = True

    def __post_init__(self) -> None:
        if self.sentences_per_doc < 2:
            raise ConfigError("sentences_per_doc must be >= 2")
        if self.policy not in ("uniform", "weighted"):
            raise ConfigError(f"SIB-200 documents take policy 'uniform' or 'weighted', not {self.policy!r}")


def language_dirs(directory: str | Path) -> list[str]:
    path = Path(directory)
    if not path.is_dir():
        raise WikimixError(f"SIB-200 directory not found: {path}")
    langs = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / "train.tsv").is_file())
    if not langs:
        raise WikimixError(f"no SIB-200 language directories (<lang_Script>/train.tsv) under {path}")
    return langs


def load_sib200(directory: str | Path, langs: list[str] | None = None) -> dict[int, dict]:
    """{index_id: {"split", "category", "texts": {lang: text}}} over the chosen languages."""
    directory = Path(directory)
    known = language_dirs(directory)
    langs = langs or known
    missing = sorted(set(langs) - set(known))
    if missing:
        raise WikimixError(f"SIB-200 has no language(s) {', '.join(missing)} under {directory}")
    sentences: dict[int, dict] = {}
    for lang in langs:
        for split in SPLITS:
            path = directory / lang / f"{split}.tsv"
            if not path.is_file():
                continue
            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
                if reader.fieldnames is None or not {"index_id", "category", "text"} <= set(
                    reader.fieldnames
                ):
                    raise WikimixError(f"{path}: expected columns index_id, category, text")
                for row in reader:
                    try:
                        idx = int(row["index_id"])
                    except (TypeError, ValueError):
                        raise WikimixError(f"{path}: bad index_id {row['index_id']!r}") from None
                    entry = sentences.setdefault(
                        idx, {"split": split, "category": row["category"], "texts": {}}
                    )
                    if row["text"] and row["text"].strip():
                        entry["texts"][lang] = row["text"].strip()
    return sentences


def sib200_slots(sentences: dict[int, dict]) -> list[Slot]:
    """One slot per sentence, in index_id order; every language that has the sentence is a candidate."""
    slots = []
    for idx in sorted(sentences):
        entry = sentences[idx]
        source = {
            "wiki": "sib200",
            "page_id": idx,
            "rev_id": 0,
            "section_idx": SPLITS.index(entry["split"]),
            "paragraph_idx": 0,
            "sentence_idx": 0,
        }
        candidates = {lang: Candidate(lang, text, source) for lang, text in entry["texts"].items()}
        if candidates:
            slots.append(Slot(float(idx), candidates))
    return slots


def build_sib200(
    directory: str | Path, writer, cfg: Sib200Config | None = None, rank: int = 0, world_size: int = 1
) -> dict:
    """Write `documents` shard `rank` of `world_size` (window i goes to rank i % world_size); a report."""
    cfg = cfg or Sib200Config()
    if not 0 <= rank < world_size:
        raise WikimixError(f"rank {rank} out of range for world size {world_size}")
    path = writer.shard_path("documents", rank, world_size)
    if writer.has_shard("documents", rank, world_size):
        return {"path": path, "skipped": True}
    sentences = load_sib200(directory, cfg.langs or None)
    slots = sib200_slots(sentences)
    langs = sorted({lang for s in slots for lang in s.candidates})
    if len(langs) < 3:
        raise ConfigError("SIB-200 documents need at least 3 languages")
    build = BuildConfig(
        policy=cfg.policy,
        granularity=cfg.granularity,
        seed=cfg.seed,
        weights=cfg.weights,
        min_langs=3,
        max_chars=10**9,  # a window is one document
        avoid_recent=len(langs) - 1 if cfg.distinct else 1,
        lid=cfg.lid,
        lid_filter=False,
    )
    rows: list[dict] = []
    stats: Counter = Counter()
    n = cfg.sentences_per_doc
    for w, start in enumerate(range(0, len(slots), n)):
        if w % world_size != rank:
            continue
        window = slots[start : start + n]
        rng = random.Random(f"sib200\0{cfg.seed}\0{w}")
        docs, st = compose(window, build, cfg.granularity, rng)
        stats.update(st)
        first = int(window[0].pos)
        rows += [
            render(f"sib200:{first}", cfg.policy, cfg.granularity, cfg.seed, i, segs)
            for i, segs in enumerate(docs)
        ]
    annotate(rows, cfg.lid)
    writer.write_shard("documents", rank, world_size, rows)
    unsupported = sorted(lang for lang in langs if lid_code(lang) is None)
    return {
        "path": path,
        "skipped": False,
        "languages": len(langs),
        "lid_unsupported_languages": unsupported,
        **dict(stats),
        **summarize(rows),
    }


def sib200_pages(
    sentences: dict[int, dict], first: int = 0, count: int = 8, per_paragraph: int = 4
) -> list[dict]:
    """`pages` rows of one concept: in every language, the `count` sentences from the `first`-th index_id
    on (consecutive index_ids come from one source article), `per_paragraph` to a paragraph."""
    if count < 1 or per_paragraph < 1 or first < 0:
        raise ConfigError("a SIB-200 sentence group needs first >= 0, count >= 1 and per_paragraph >= 1")
    ids = sorted(sentences)[first : first + count]
    if not ids:
        raise WikimixError(f"SIB-200 has {len(sentences)} sentences: none from position {first}")
    concept = f"sib200:{ids[0]}-{ids[-1]}"
    langs = sorted({lang for i in ids for lang in sentences[i]["texts"]})
    now = datetime.now(UTC)
    pages = []
    for page_id, lang in enumerate(langs, start=1):
        texts = [sentences[i]["texts"][lang] for i in ids if lang in sentences[i]["texts"]]
        paragraphs = [" ".join(texts[k : k + per_paragraph]) for k in range(0, len(texts), per_paragraph)]
        pages.append(
            {
                "wiki": f"sib200{lang.lower().replace('_', '')}",
                "lang": lang,
                "page_id": page_id,
                "rev_id": ids[0],
                "title": concept,
                "concept": concept,
                "url": None,
                "timestamp": None,
                "wikitext": "\n\n".join(paragraphs),
                "fetched_at": now,
                "source": "dump",
                "redirected_from": None,
                "langlinks": [],
            }
        )
    return pages


def write_sib200_wiki(
    directory: str | Path,
    root=None,
    name: str = "sib200",
    langs: list[str] | None = None,
    first: int = 0,
    sentences: int = 8,
    per_paragraph: int = 4,
):
    """A `<name>-wiki` version (pages, sections) holding one SIB-200 sentence group as one concept with an
    article per variety (`langs`, default all): the input of align -> codeswitch -> LID -> significance."""
    from pipeline.sections import sections_from_page
    from storage.store import write_version

    pages = sib200_pages(load_sib200(directory, langs), first, sentences, per_paragraph)
    rows = [r for page in pages for r in sections_from_page(page)]
    params = {"source": "sib200", "langs": langs or [], "first": first, "sentences": sentences}
    return write_version(root, f"{name}-wiki", {"pages": pages, "sections": rows}, params=params)
