"""XQuAD articles as code-switched paragraph documents, on the shared XQuAD files (6 languages)."""

from __future__ import annotations

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
