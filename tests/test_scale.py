"""How the corpus build's cost grows: a concept in every SIB-200 variety builds, alignment is linear in
languages, the streaming steps hold a bounded amount of memory, and the bench's contract holds."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from bench.scale import replicate_dumps
from pipeline import concept_buckets, dump
from pipeline.align import AlignConfig, language_pairs, run_align
from pipeline.align_units import Article, Unit
from pipeline.codeswitch import run_codeswitch
from pipeline.lid import identify_version
from pipeline.sib200 import language_dirs, write_sib200_wiki
from pipeline.significance import StatRanker, rank_version
from storage.store import VersionWriter
from wikimix.errors import WikimixError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "wiki"


@pytest.fixture(scope="module")
def sib_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "sib200"


def _aligned_pairs(align_ref) -> set[tuple[str, str]]:
    rows = align_ref.scan("alignments").select("lang_a", "lang_b").unique().collect().rows()
    return {(a, b) for a, b in rows if b is not None}


def test_a_concept_in_every_sib200_variety_builds_end_to_end(sib_dir: Path, data_root: Path) -> None:
    langs = language_dirs(sib_dir)
    assert len(langs) >= 189
    wiki = write_sib200_wiki(sib_dir, data_root, "sib-all", sentences=4, per_paragraph=2)
    assert wiki.num_rows("pages") == len(langs)
    align, _ = run_align(wiki)
    pairs = _aligned_pairs(align)
    reached = {lang for pair in pairs for lang in pair}
    assert reached == set(langs)  # every variety is aligned to the pivots: one connected concept
    pivots = AlignConfig().pivots
    assert len(pairs) <= pivots * (pivots - 1) // 2 + pivots * (len(langs) - pivots)
    docs, reports = run_codeswitch(align)
    assert docs.num_rows("documents") >= 1 and reports[0]["min_langs_per_doc"] >= 3
    used = {
        lang
        for batch in docs.iter_batches("documents", columns=["langs"])
        for ls in batch[0].to_pylist()
        for lang in ls
    }
    assert len(used) >= 3
    lid = VersionWriter(data_root, "sib-all-lid", parents=[docs])
    identify_version(docs, lid)
    assert lid.commit().num_rows("lid") == sum(
        len(s) for s in docs.read("documents", ["segments"])[0].to_pylist()
    )
    sig = VersionWriter(data_root, "sib-all-sig", parents=[docs])
    rank_version(docs, sig, [StatRanker.fit_version(docs)], progress=False)
    assert sig.commit().num_rows("significance") == docs.num_rows("documents")


def test_aligned_language_pairs_grow_linearly_not_quadratically(sib_dir: Path, data_root: Path) -> None:
    langs = language_dirs(sib_dir)
    counts = {}
    for n in (16, 64):
        wiki = write_sib200_wiki(sib_dir, data_root, f"sib-{n}", langs[:n], sentences=2, per_paragraph=2)
        align, _ = run_align(wiki)
        counts[n] = len(_aligned_pairs(align))
    # all pairs would give 120 -> 2016 (x16.8); the pivot graph at most 8 per language: 92 -> 476
    assert counts[64] <= 8 * 64
    assert counts[64] / counts[16] <= 4**1.3


def test_language_pairs_are_every_pair_up_to_pivots_plus_one_and_a_star_beyond() -> None:
    arts = [_sized(f"l{i:02d}", 100 - i) for i in range(12)]
    assert len(language_pairs(arts[:4], pivots=3)) == 6  # 4 languages, 3 pivots: every pair
    pairs = language_pairs(arts, pivots=3)
    assert len(pairs) == 3 + 3 * 9
    assert all({"l00", "l01", "l02"} & {a.lang, b.lang} for a, b in pairs)  # the three largest articles
    with pytest.raises(WikimixError, match="pivots must be >= 1"):
        language_pairs(arts, pivots=0)


def _sized(lang: str, size: int) -> Article:
    """An article whose only section is `size` characters long (the pivots are the longest articles)."""
    section = Unit(f"{lang}wiki:1:1:0", lang, "", Counter(), 0.0, size)
    return Article(lang, f"{lang}wiki", 1, 1, [section], [])


def test_ingest_streams_each_dump_a_chunk_of_pages_at_a_time(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk of pages is split and written as it is read (one row group per chunk in both shards),
    never a whole language's pages in memory at once."""
    monkeypatch.setattr(dump, "PAGES_PER_CHUNK", 3)
    dumps, concepts = replicate_dumps(SAMPLE, SAMPLE / "concepts.tsv", 2, tmp_path / "x2")
    wiki, _ = dump.ingest_dumps(dumps, concepts, root=data_root, name="x2", langs=["de", "en"])
    for path in wiki.files("pages"):
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows == 16 and meta.num_row_groups == 6  # 16 pages of a language, 3 at a time
    assert [pq.ParquetFile(p).metadata.num_row_groups for p in wiki.files("sections")] == [6, 6]
    log = wiki.read("fetch_log").to_pylist()
    assert len(log) == 32 and {r["status"] for r in log} == {"ok"}


def test_align_groups_concepts_through_buckets_and_writes_each_as_it_is_aligned(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Align never collects a table: the sections go to bucket files by concept (every concept in one
    bucket, all its rows in order), and each concept's alignments are written as their own row group as
    soon as they are made. (Peak memory per stage is measured by bench/scale.py in fresh processes.)"""
    monkeypatch.setattr(concept_buckets, "ROWS_PER_BUCKET", 40)
    dumps, concepts = replicate_dumps(SAMPLE, SAMPLE / "concepts.tsv", 2, tmp_path / "x2")
    wiki, _ = dump.ingest_dumps(dumps, concepts, root=data_root, name="x2", langs=["de", "en"])
    n = concept_buckets.num_buckets(wiki.num_rows("sections"))
    assert n == -(-wiki.num_rows("sections") // 40) > 1
    buckets = concept_buckets.partition(wiki.iter_batches("sections", batch_size=50), tmp_path, "s", n)
    assert len(buckets) > 1
    seen: dict[str, int] = {}
    for bucket, path in buckets.items():
        for concept, group in concept_buckets.concept_groups(path):
            assert concept not in seen and concept_buckets.bucket_of(concept, n) == bucket
            seen[concept] = group.height
            expected = wiki.scan("sections").filter(pl.col("concept") == concept).collect()
            assert group.select(expected.columns).equals(expected)  # all its rows, in the table's order
    assert sum(seen.values()) == wiki.num_rows("sections") and len(seen) == 16
    align, reports = run_align(wiki)
    (shard,) = align.files("alignments")
    assert pq.ParquetFile(shard).metadata.num_row_groups == reports[0]["concepts"] == 16


def test_bench_prints_its_three_figures_last(tmp_path: Path) -> None:
    cmd = [sys.executable, "bench/scale.py", "--quick", "--stages", "ingest,align", "--work", str(tmp_path)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split("=")[0] for line in lines[-3:]] == [
        "corpus_cost_exponent",
        "lang_cost_exponent",
        "peak_rss_growth",
    ]
    assert all(float(line.split("=")[1]) == float(line.split("=")[1]) for line in lines[-3:])  # not nan
    assert any(line.startswith("pages=2 stage=align") for line in lines)


def test_bench_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for bad in (["--sizes", "0,2"], ["--stages", "lid"], ["--stages", "bogus"], ["--langs-sizes", "2"]):
        out = subprocess.run(
            [sys.executable, "bench/scale.py", "--quick", "--work", str(tmp_path), *bad],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, bad
