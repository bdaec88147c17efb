"""The concept split on real stored documents: XQuAD paragraphs, where every article exists in en, de and ru
(each paragraph's translations share its `concept`)."""

from __future__ import annotations

from collections import defaultdict

from tests.fixtures_training import xquad_docs  # noqa: F401 (fixture)
from training.data import DataOptions, ShardData
from training.split import concept_splits, split_of, split_unit
from training.tokenizers import ByteTokenizer


def test_no_translation_of_a_test_document_is_in_training(xquad_docs):  # noqa: F811
    opts = DataOptions(val_frac=0.1, test_frac=0.1)
    data = ShardData(xquad_docs, ByteTokenizer(), opts)
    by_split = {s: {d for d, _ in data.documents(s)} for s in ("train", "val", "test")}
    concept = {r["doc_id"]: r["concept"] for r in xquad_docs.read("documents").to_pylist()}
    langs_of = defaultdict(set)
    for doc_id in by_split["test"]:
        langs_of[concept[doc_id]].add(doc_id.split("-")[1])
    # the test split holds whole concepts: each in all three languages, none of them trained on
    assert len(langs_of) >= 2 and all(langs == {"en", "de", "ru"} for langs in langs_of.values())
    trained_concepts = {concept[d] for d in by_split["train"]}
    assert not trained_concepts & set(langs_of)
    assert not {concept[d] for d in by_split["val"]} & (trained_concepts | set(langs_of))
    # split.json's listing agrees with what the loader streams
    listed = concept_splits(xquad_docs, "documents", 0.1, 0.1)
    for s in ("train", "val", "test"):
        assert set(listed[s]) == {concept[d] for d in by_split[s]}


def test_split_is_deterministic_and_by_unit():
    assert split_unit("doc-1", "Moon") == "Moon" and split_unit("doc-1", None) == "doc-1"
    assert [split_of(f"c{i}", 0.1, 0.1) for i in range(200)] == [
        split_of(f"c{i}", 0.1, 0.1) for i in range(200)
    ]
    # a larger validation share never moves a test unit
    assert {i for i in range(500) if split_of(f"c{i}", 0.1, 0.1) == "test"} == {
        i for i in range(500) if split_of(f"c{i}", 0.3, 0.1) == "test"
    }
