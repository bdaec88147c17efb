"""Documents switching among dozens of languages, from the real SIB-200 sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sib200 import Sib200Config, build_sib200, language_dirs, load_sib200
from storage.store import VersionWriter
from wikimix.errors import ConfigError, WikimixError


@pytest.fixture(scope="module")
def sib_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpus" / "sib200"


def test_sentences_are_aligned_by_index_id(sib_dir: Path) -> None:
    sentences = load_sib200(sib_dir, ["eng_Latn", "ukr_Cyrl", "jpn_Jpan"])
    assert len(sentences) == 1004
    entry = sentences[min(sentences)]
    assert set(entry["texts"]) == {"eng_Latn", "ukr_Cyrl", "jpn_Jpan"}
    assert entry["split"] in ("train", "dev", "test") and entry["category"]


def test_documents_mix_dozens_of_languages_with_lid_and_metrics(sib_dir: Path, data_root: Path) -> None:
    langs = language_dirs(sib_dir)[::4]  # ~48 languages in many scripts
    cfg = Sib200Config(langs=langs, sentences_per_doc=len(langs), seed=3)
    writer = VersionWriter(data_root, "sib200-docs")
    report = build_sib200(sib_dir, writer, cfg)
    docs = writer.commit().read("documents").to_pylist()
    full = [d for d in docs if len(d["segments"]) == len(langs)]
    assert full
    for doc in full:
        # `distinct`: a window as long as the language list uses every language exactly once.
        assert sorted(s["lang"] for s in doc["segments"]) == sorted(langs)
    for doc in docs:
        assert all(a["lang"] != b["lang"] for a, b in zip(doc["segments"], doc["segments"][1:], strict=False))
        assert doc["metrics"]["n_langs"] == len(doc["langs"])
    assert report["languages"] == len(langs)
    assert report["segments"] == 1004  # every sentence used once
    # LID is judged on the languages the model knows, and the rest are named, not counted as errors.
    assert 0 < report["lid_judged"] < report["segments"]
    assert report["lid_agreement"] >= 0.7
    assert report["metrics"]["n_langs"] == len(langs)
    assert report["metrics"]["lang_entropy"] > 5  # ~log2(48) bits: the languages share the text evenly


def test_clause_granularity_and_determinism(sib_dir: Path, data_root: Path) -> None:
    langs = ["eng_Latn", "spa_Latn", "fra_Latn", "rus_Cyrl", "ukr_Cyrl"]
    texts = []
    for i in range(2):
        writer = VersionWriter(data_root, f"sib-clause-{i}")
        cfg = Sib200Config(langs=langs, sentences_per_doc=10, granularity="clause", distinct=False, lid=False)
        build_sib200(sib_dir, writer, cfg)
        texts.append([d["text"] for d in writer.commit().read("documents", ["text"]).to_pylist()])
    assert texts[0] == texts[1]
    writer = VersionWriter(data_root, "sib-clause-check")
    build_sib200(
        sib_dir,
        writer,
        Sib200Config(langs=langs, sentences_per_doc=10, granularity="clause", distinct=False, lid=False),
    )
    docs = writer.commit().read("documents").to_pylist()
    assert sum(len(d["segments"]) for d in docs) > 1004  # sentences split into clauses across languages


def test_bad_input(sib_dir: Path, tmp_path: Path, data_root: Path) -> None:
    with pytest.raises(WikimixError, match="not found"):
        load_sib200(tmp_path / "missing")
    with pytest.raises(WikimixError, match="no SIB-200 language"):
        load_sib200(tmp_path)
    with pytest.raises(WikimixError, match="has no language"):
        load_sib200(sib_dir, ["eng_Latn", "xxx_Latn"])
    with pytest.raises(ConfigError):
        Sib200Config(policy="curriculum")
    with pytest.raises(ConfigError, match="at least 3"):
        build_sib200(
            sib_dir, VersionWriter(data_root, "sib-two"), Sib200Config(langs=["eng_Latn", "fra_Latn"])
        )
    bad = tmp_path / "bad" / "eng_Latn"
    bad.mkdir(parents=True)
    (bad / "train.tsv").write_text("id\ttext\n1\thello\n", encoding="utf-8")
    with pytest.raises(WikimixError, match="expected columns"):
        load_sib200(tmp_path / "bad")


def test_cli_builds_sib200_documents(sib_dir: Path, data_root: Path) -> None:
    from typer.testing import CliRunner

    from storage.store import open_version
    from wikimix.cli import app

    langs = "eng_Latn,fra_Latn,ukr_Cyrl,jpn_Jpan,hin_Deva,arb_Arab"
    args = [
        "codeswitch",
        "--sib200",
        str(sib_dir),
        "--langs",
        langs,
        "--sentences-per-doc",
        "6",
        "--root",
        str(data_root),
    ]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[-1].startswith("sib200-docs@")
    docs = open_version(data_root, "sib200-docs").read("documents").to_pylist()
    assert all(len(d["langs"]) == len(d["segments"]) for d in docs)  # 6 sentences, 6 languages each
    # 1004 = 167 * 6 + 2: the last window has 2 sentences, too few languages for a document.
    assert len(docs) == 167
