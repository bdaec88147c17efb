"""XQuAD articles as code-switched paragraph documents, on the shared XQuAD files (6 languages)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from pipeline.xquad import XquadConfig, build_xquad, concept_of, load_xquad
from storage.store import VersionWriter
from training.data import DataOptions, ShardData
from training.split import concept_splits
from training.tokenizers import ByteTokenizer
from wikimix.errors import WikimixError


@pytest.fixture(scope="module")
def xquad_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "xquad"


def test_articles_are_aligned_paragraph_by_paragraph(xquad_dir: Path) -> None:
    articles = load_xquad(xquad_dir, ["en", "de", "ru"])
    assert len(articles) == 48 and sum(len(a["paragraphs"]) for a in articles) == 240
    assert all(set(p) == {"en", "de", "ru"} for a in articles for p in a["paragraphs"])
    assert concept_of("Amazon_rainforest") == "Amazon rainforest"
    with pytest.raises(WikimixError, match="no language"):
        load_xquad(xquad_dir, ["en", "xx"])


def test_each_article_is_one_code_switched_concept_and_splits_whole(xquad_dir: Path, data_root: Path) -> None:
    writer = VersionWriter(data_root, "xq-cs-docs")
    report = build_xquad(xquad_dir, writer, XquadConfig(seed=1, lid=False))
    ref = writer.commit()
    docs = ref.read("documents").to_pylist()
    assert report["languages"] == 6 and len(docs) == 48  # one document per article
    for doc in docs:
        langs = [s["lang"] for s in doc["segments"]]
        assert len(set(langs)) >= 3 and all(a != b for a, b in zip(langs, langs[1:], strict=False))
        assert len({s["paragraph_idx"] for s in doc["segments"]}) == len(langs)  # one language per paragraph
    assert Counter(d["concept"] for d in docs).most_common(1)[0][1] == 1
    splits = concept_splits(ref, "documents", 0.1, 0.2)
    assert splits["test"] and not set(splits["test"]) & set(splits["train"])
    data = ShardData(ref, ByteTokenizer(), DataOptions(val_frac=0.1, test_frac=0.2))
    assert {data.units[d] for d, _ in data.documents("test")} == set(splits["test"])


def test_cli_codeswitch_builds_xquad_docs(xquad_dir: Path, data_root: Path) -> None:
    from typer.testing import CliRunner

    from wikimix.cli import app

    args = [
        "codeswitch",
        "--xquad",
        str(xquad_dir),
        "--langs",
        "en,de,ru,zh",
        "--no-lid",
        "--root",
        str(data_root),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "xquad-docs@" in result.output and '"documents": 48' in result.output


def test_eval_corpus_merges_every_source_and_splits_by_concept(
    xquad_dir: Path, shared_dir: Path, data_root: Path
):
    from pipeline.eval_corpus import merge_documents
    from pipeline.sib200 import Sib200Config, build_sib200

    xq = VersionWriter(data_root, "xquad-docs")
    build_xquad(xquad_dir, xq, XquadConfig(langs=["en", "de", "ru"], lid=False))
    sib = VersionWriter(data_root, "sib200-docs")
    langs = ["eng_Latn", "ukr_Cyrl", "jpn_Jpan"]
    build_sib200(
        shared_dir / "corpus" / "sib200", sib, Sib200Config(langs=langs, sentences_per_doc=24, lid=False)
    )
    sources = [xq.commit(), sib.commit()]
    writer = VersionWriter(data_root, "eval-docs", parents=sources)
    report = merge_documents(sources, writer)
    merged = writer.commit()
    assert merged.read("documents").num_rows == sum(report.values()) == 48 + math.ceil(1004 / 24)
    splits = concept_splits(merged, "documents", 0.05, 0.05)
    kinds = {("sib200" if c.startswith("sib200:") else "xquad") for c in splits["test"]}
    assert kinds == {"sib200", "xquad"}  # the test split draws on both sources
    with pytest.raises(WikimixError, match="is in both"):
        merge_documents([sources[0], sources[0]], VersionWriter(data_root, "eval-dup"))


@pytest.mark.prefect
def test_build_eval_corpus_flow(
    xquad_dir: Path, shared_dir: Path, data_root: Path, prefect_server, monkeypatch
):
    from prefect.logging.configuration import setup_logging

    from flows.eval_corpus import build_eval_corpus
    from storage.store import ref_from_path

    setup_logging(incremental=False)  # bind Prefect's console to this test's streams, not an earlier test's

    monkeypatch.setenv("WIKIMIX_DATA", str(data_root))
    wiki = VersionWriter(data_root, "wiki-docs")  # stands in for build-corpus's documents
    build_xquad(xquad_dir, wiki, XquadConfig(langs=["en", "de", "ru"], seed=7, lid=False))
    wiki.commit()
    path = build_eval_corpus(
        docs="wiki-docs", name="t", xquad=str(xquad_dir), xquad_langs=["en", "zh", "ar"],
        sib200=str(shared_dir / "corpus" / "sib200"), sib200_langs=["eng_Latn", "ukr_Cyrl", "jpn_Jpan"],
    )  # fmt: skip
    merged = ref_from_path(path)
    assert merged.dataset == "t-eval-docs" and len(merged.files("documents")) == 3
    assert [p["dataset"] for p in merged.manifest()["parents"]] == ["wiki-docs", "xquad-docs", "sib200-docs"]
