"""A step whose result is empty, or whose every input failed, exits 2 and commits nothing: `latest` stays
where it was, and the error says what failed and how many (issue 15, item 3).

Each dataset first gets a real, non-empty version (the sample corpus through ingest, align, codeswitch and
significance); the empty run then writes into the same dataset and must leave its versions unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.concepts import read_concepts
from storage.store import list_versions, write_version
from tests.conftest import REPO
from tests.fixtures_wiki import SAMPLE_DIR, free_port_base
from wikimix.guards import EmptyResultError

DATASETS = ("s-wiki", "s-align", "s-docs", "s-sig")


@pytest.fixture
def chain(tmp_path: Path) -> str:
    """A data root holding one real version of each of s-wiki, s-align, s-docs and s-sig."""
    from pipeline.align import run_align
    from pipeline.codeswitch import BuildConfig, run_codeswitch
    from pipeline.dump import ingest_dumps
    from pipeline.significance import StatRanker, rank_version
    from storage.store import VersionWriter

    root = str(tmp_path / "data")
    wiki, _ = ingest_dumps(SAMPLE_DIR, SAMPLE_DIR / "concepts.tsv", root=root, name="s")
    align, _ = run_align(wiki, root)
    docs, _ = run_codeswitch(align, root, cfg=BuildConfig(lid=False))
    writer = VersionWriter(root, "s-sig", parents=[docs])
    rank_version(docs, writer, StatRanker.fit_version(docs), progress=False)
    writer.commit()
    for dataset in DATASETS:
        assert len(list_versions(root, dataset)) == 1
    return root


def _versions(root: str) -> dict[str, list]:
    return {dataset: list_versions(root, dataset) for dataset in DATASETS}


def _cli(root: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WIKIMIX_DATA": root}
    return subprocess.run(
        [sys.executable, "-m", "wikimix.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_ingest_that_keeps_no_page(chain: str, tmp_path: Path):
    from pipeline.dump import ingest_dumps

    before = _versions(chain)
    concepts = tmp_path / "concepts.tsv"
    concepts.write_text(
        "concept\tqid\tlang\ttitle\tpage_id\trev_id\tchars\nNowhere\t\ten\tNo such article\t\t\t\n"
    )
    with pytest.raises(EmptyResultError) as failed:
        ingest_dumps(SAMPLE_DIR, concepts, root=chain, name="s", langs=["en", "de"])
    read = re.search(
        r"none of the (\d+) page\(s\) read from 2 dump\(s\) \(en: (\d+) read, de: (\d+) read\)",
        str(failed.value),
    )
    assert read and int(read.group(1)) == int(read.group(2)) + int(read.group(3)) > 0, failed.value
    assert "ingest produced no pages rows" in str(failed.value) and "nothing committed" in str(failed.value)
    assert _versions(chain) == before

    out = _cli(chain, "ingest", "--dumps", str(SAMPLE_DIR), "--concepts", str(concepts), "--name", "s")
    assert "ingest produced no pages rows: the concept table names none of the" in _one_error_line(out)
    assert _versions(chain) == before


def test_fetch_where_every_wiki_is_down(chain: str, tmp_path: Path):
    from pipeline.fetch import crawl
    from pipeline.mwapi import FetchConfig
    from wikimix.localwiki import Family, LocalWiki

    table = read_concepts(SAMPLE_DIR / "concepts.tsv").subset(["en", "de"])
    dead = {lang: f"http://127.0.0.1:{free_port_base(1)}/api.php" for lang in ("en", "de")}
    before = _versions(chain)
    with pytest.raises(EmptyResultError) as failed:
        crawl(dead, concepts=table, root=chain, name="s", config=FetchConfig(max_retries=0))
    message = str(failed.value)
    n = len(table.rows)
    assert f"none of {n} requested title(s) stored (error {n})" in message and "cannot reach" in message
    assert _versions(chain) == before  # latest of s-wiki did not move
    log = pq.read_table(re.search(r"fetch log \(not committed\) at (\S+?);", message).group(1)).to_pylist()
    assert len(log) == n and {r["status"] for r in log} == {"error"}

    # the CLI on a family whose server is down (one language: each retries with back-off for ~15 s)
    family = Family(tmp_path / "family")
    port = int(dead["en"].split(":")[2].split("/")[0])
    family.wikis["en"] = LocalWiki("en", "enwiki", port, tmp_path / "family" / "en")
    family.dir.mkdir()
    family.save()
    concepts = tmp_path / "concepts.tsv"
    lines = (SAMPLE_DIR / "concepts.tsv").read_text().splitlines()
    english = [x for x in lines[1:] if x.split("\t")[2] == "en"]
    concepts.write_text("\n".join([lines[0], *english]) + "\n")
    out = _cli(chain, "fetch", "--family", "--family-dir", str(family.dir), "--concepts", str(concepts),
               "--name", "s")  # fmt: skip
    line = _one_error_line(out)
    n = len(english)
    assert f"fetch produced no pages rows: none of {n} requested title(s) stored (error {n})" in line
    assert "fetch log (not committed) at" in line and "(s-wiki latest unchanged)" in line
    assert _versions(chain) == before


@pytest.mark.mediawiki
def test_fetch_where_every_title_is_invalid(wiki_family, data_root: Path):
    from pipeline.fetch import crawl

    root = str(data_root)
    home = wiki_family.wikis[wiki_family.home].api_url
    good, _ = crawl(home, titles=[wiki_family.redirect_target], root=root, name="live")
    with pytest.raises(EmptyResultError) as failed:
        crawl(home, titles=["Bad [title]", "Also {bad}", "<nope>"], root=root, name="live")
    assert "none of 3 requested title(s) stored (invalid 3)" in str(failed.value)
    assert list_versions(root, "live-wiki") == [good]


def test_align_of_an_empty_wiki(chain: str):
    from pipeline.align import run_align

    empty = write_version(chain, "empty-wiki", {"pages": [], "sections": [], "fetch_log": []})
    before = _versions(chain)
    with pytest.raises(
        EmptyResultError, match=r"align produced no alignments rows: empty-wiki@\S+ has 0 section"
    ):
        run_align(empty, chain, dataset="s-align", num_shards=2)
    assert _versions(chain) == before

    out = _cli(chain, "align", "empty-wiki", "--out", "s-align")
    assert (
        "align produced no alignments rows" in _one_error_line(out)
        and "(s-align latest unchanged)" in out.stderr
    )
    assert _versions(chain) == before


def test_codeswitch_of_an_empty_or_too_thin_alignment(chain: str):
    from pipeline.align import run_align
    from pipeline.codeswitch import BuildConfig, run_codeswitch
    from pipeline.dump import ingest_dumps

    wiki = list_versions(chain, "s-wiki")[0]
    empty = write_version(chain, "empty-align", {"alignments": []}, parents=[wiki])
    before = _versions(chain)
    with pytest.raises(EmptyResultError, match=r"empty-align@\S+ holds 0 alignment row\(s\) of 0 concept"):
        run_codeswitch(empty, chain, dataset="s-docs", cfg=BuildConfig(lid=False))
    assert _versions(chain) == before

    # two languages: alignments exist, but no concept reaches min_langs=3, so no document
    two, _ = ingest_dumps(SAMPLE_DIR, SAMPLE_DIR / "concepts.tsv", root=chain, name="two", langs=["en", "de"])
    align, _ = run_align(two, chain)
    concepts = len(read_concepts(SAMPLE_DIR / "concepts.tsv").concepts())
    out = _cli(chain, "codeswitch", f"{align}", "--no-lid", "--out", "s-docs")
    line = _one_error_line(out)
    assert "codeswitch produced no documents rows" in line
    assert f"of {concepts} concept(s), {concepts} with fewer than min_langs=3 languages" in line
    assert _versions(chain) == before


def test_codeswitch_of_sib200_sentences_that_make_no_document(tmp_path: Path):
    root = str(tmp_path / "data")
    write_version(root, "sib200-docs", {"documents": []})  # an earlier (empty, old-style) version
    before = list_versions(root, "sib200-docs")
    for lang in ("eng_Latn", "ukr_Cyrl", "deu_Latn"):  # three languages, but a single sentence
        (tmp_path / "sib" / lang).mkdir(parents=True)
        (tmp_path / "sib" / lang / "train.tsv").write_text("index_id\tcategory\ttext\n1\tscience\tOne.\n")
    out = _cli(root, "codeswitch", "--sib200", str(tmp_path / "sib"), "--no-lid", "--sentences-per-doc", "4")
    line = _one_error_line(out)
    assert "codeswitch --sib200 produced no documents rows: no window of 4 sentence(s)" in line
    assert list_versions(root, "sib200-docs") == before


def test_significance_of_empty_documents(chain: str):
    docs = list_versions(chain, "s-docs")[0]
    empty = write_version(chain, "empty-docs", {"documents": []}, parents=[docs])
    before = _versions(chain)
    out = _cli(
        chain, "significance", "--docs", "empty-docs", "--ranker", "stat", "--name", "s", "--no-progress"
    )
    line = _one_error_line(out)
    assert f"significance produced no significance rows: {empty} holds 0 document(s)" in line
    assert _versions(chain) == before


@pytest.mark.prefect
@pytest.mark.slow
def test_a_flow_run_of_an_empty_step_fails_and_commits_nothing(prefect_server, data_root: Path):
    """build-corpus on two languages: wiki and align commit, the documents stage (min_langs=3) is empty."""
    from flows.corpus import build_corpus

    with pytest.raises(EmptyResultError, match=r"build-corpus e-docs produced no documents rows"):
        build_corpus(name="e", langs=["en", "de"], shards=2, rankers=["stat"])
    root = str(data_root)
    assert len(list_versions(root, "e-wiki")) == 1 and len(list_versions(root, "e-align")) == 1
    assert list_versions(root, "e-docs") == [] and list_versions(root, "e-sig") == []
