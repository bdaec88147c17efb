"""Significance rankers on real text with the real packaged encoder (multilingual-e5-small, 2 threads).

.venv/bin/pytest tests/test_significance.py -q
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.encoder import Encoder, EncoderConfig, default_model_path, weights_hash
from pipeline.significance import (
    GreedyRanker,
    LooRanker,
    RankerConfig,
    StatRanker,
    all_shards_written,
    make_ranker,
    make_windows,
    rank_version,
    sentence_ranges,
    tokenize,
)
from storage.store import StorageError, VersionWriter, open_version, write_version
from wikimix.errors import ConfigError, WikimixError

# Closed-class English words: what a meaning-preserving ranker should give up first.
_FUNCTION_WORDS_TEXT = """a an the of in on at to for from by with as into onto upon about over under after before between
    through during without within and or but nor so yet if than then that which who whom whose what when
    where while because although though is are was were be been being am has have had do does did will
    would shall should can could may might must it its he him his she her hers they them their theirs we
    us our you your i me my this these those there here not no also such both either neither each any all
    some other own same very just"""
FUNCTION_WORDS = set(_FUNCTION_WORDS_TEXT.split())


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    torch.set_num_threads(2)
    return Encoder(EncoderConfig(threads=2))


def xquad(shared_dir: Path, lang: str) -> list[str]:
    data = json.loads((shared_dir / "corpus" / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


def sib200(shared_dir: Path, code: str, n: int = 3) -> list[str]:
    lines = (shared_dir / "corpus" / "sib200" / code / "dev.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[2] for line in lines[1 : n + 1]]


def first_sentences(text: str, k: int) -> str:
    """The text up to the end of its k-th sentence."""
    spans = tokenize(text)
    ranges = sentence_ranges(text, spans)
    hi = ranges[min(k, len(ranges)) - 1][1]
    return text[: spans[hi - 1][1]]


def check_spans(text: str, spans: list[dict]) -> None:
    """Spans are the tokens of the text in order, nothing but whitespace between them; ranks a permutation."""
    assert [(s["start"], s["end"]) for s in spans] == tokenize(text)
    covered = "".join(text[s["start"] : s["end"]] for s in spans)
    assert covered == "".join(text.split())
    assert sorted(s["removal_rank"] for s in spans) == list(range(len(spans)))
    assert all(np.isfinite(s["score"]) for s in spans)


# ---------------------------------------------------------------------------------------------- tokens


@pytest.mark.shared
def test_tokens_map_back_to_exact_text_in_every_script(shared_dir):
    texts = [p for lang in ("en", "de", "ru", "zh", "ar", "es") for p in xquad(shared_dir, lang)[:40]]
    texts += [
        t
        for code in ("jpn_Jpan", "hye_Armn", "mar_Deva", "tha_Thai", "kor_Hang", "heb_Hebr")
        for t in sib200(shared_dir, code)
    ]
    for text in texts:
        spans = tokenize(text)
        assert spans, text
        prev = 0
        for s, e in spans:
            assert prev <= s < e
            assert text[prev:s].strip() == ""  # only whitespace between tokens
            assert not any(ch.isspace() for ch in text[s:e])
            prev = e
        assert text[prev:].strip() == ""


def test_tokens_are_words_punctuation_and_single_cjk_characters():
    text = "Don't pay 1,234.5 dollars, Mr. Smith! 東京は日本の首都です。カーテン मराठी भाषा Հայերեն։"
    tokens = [text[s:e] for s, e in tokenize(text)]
    assert tokens == [
        "Don't", "pay", "1,234.5", "dollars", ",", "Mr", ".", "Smith", "!",
        "東", "京", "は", "日", "本", "の", "首", "都", "で", "す", "。", "カ", "ー", "テ", "ン",
        "मराठी", "भाषा", "Հայերեն", "։",
    ]  # fmt: skip
    assert tokenize("") == [] and tokenize(" \n\t ") == []


def test_enrichment_words_are_segmented_words_in_japanese_and_tokens_elsewhere():
    from bench.significance import frequent_word_share, word_spans

    text = "東京は日本の首都です。研究者たちはチップを開発しました。"
    words = [text[a:b] for a, b in word_spans(text, "jpn_Jpan")]
    assert words[:6] == ["東京", "は", "日本", "の", "首都", "です"] and "チップ" in words
    assert "".join(words) == text  # every character lies in exactly one word
    english = "The capital of Japan is Tokyo."
    assert word_spans(english, "eng_Latn") == tokenize(english)
    # A ranked token counts when its word is frequent: は (one character) and です (two) do, 東京 does not.
    spans = tokenize(text)
    ranked = [[{"start": a, "end": b, "removal_rank": k} for k, (a, b) in enumerate(spans)]]
    overall, early = frequent_word_share([text], ranked, "jpn_Jpan", {"は", "です"})
    assert overall == pytest.approx(4 / len(spans))  # は twice, で and す of です, nothing else
    assert early == pytest.approx(1 / (len(spans) // 4))  # the first quarter (東 京 は ...) holds one は


def test_windows_pack_whole_sentences_within_budget():
    text = "One two three. Four five six seven. Eight nine. " + " ".join(f"W{i}" for i in range(30)) + "."
    spans = tokenize(text)
    sentences = sentence_ranges(text, spans)
    assert sentences[:3] == [(0, 4), (4, 9), (9, 12)]
    windows = make_windows(sentences, [2] * len(spans), budget=20)
    # Covers every token exactly once, in order.
    assert windows[0][0] == 0 and windows[-1][1] == len(spans)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert all(2 * (hi - lo) <= 20 for lo, hi in windows)
    assert windows[0] == (0, 9)  # sentences 1+2 fit (18 wordpieces); sentence 3 would overflow
    assert windows[1][0] == 9  # the cut is at a sentence end
    assert make_windows([], [], 10) == []
    # One token wider than the budget still gets a window of its own.
    assert make_windows([(0, 3)], [1, 50, 1], budget=10) == [(0, 1), (1, 2), (2, 3)]


# --------------------------------------------------------------------------------------------- rankers


@pytest.mark.shared
def test_scores_are_deterministic_and_consistent(encoder, shared_dir):
    texts = [first_sentences(xquad(shared_dir, "en")[3], 1), first_sentences(xquad(shared_dir, "zh")[3], 1)]
    loo = LooRanker(encoder)
    a, b = loo.rank(texts), loo.rank(texts)
    assert a == b
    for text, spans in zip(texts, a, strict=True):
        check_spans(text, spans)
        by_rank = sorted(spans, key=lambda s: s["removal_rank"])
        assert all(x["score"] <= y["score"] for x, y in zip(by_rank, by_rank[1:], strict=False))
        assert len({round(s["score"], 6) for s in spans}) > len(spans) // 2  # scores discriminate
    greedy = GreedyRanker(encoder)
    g1, g2 = greedy.rank(texts), greedy.rank(texts)
    assert g1 == g2
    for text, spans in zip(texts, g1, strict=True):
        check_spans(text, spans)
    # Greedy's first round is leave-one-out: the tokens it drops first are loo's least significant.
    one_window = texts[0]
    n = len(tokenize(one_window))
    assert len(loo.plan([one_window]).windows) == 1
    first_round = int(np.ceil(greedy.config.greedy_fraction * n))
    loo_first = {s["start"] for s in a[0] if s["removal_rank"] < first_round}
    greedy_first = {s["start"] for s in g1[0] if s["removal_rank"] < first_round}
    assert greedy_first == loo_first


def _function_word_effect(texts: list[str], ranked: list[list[dict]]) -> dict[str, float]:
    """Normalised removal positions of function words + punctuation vs content words."""
    func, content = [], []
    for text, spans in zip(texts, ranked, strict=True):
        n = len(spans)
        for s in spans:
            word, q = text[s["start"] : s["end"]], s["removal_rank"] / (n - 1)
            if word.lower() in FUNCTION_WORDS or not any(ch.isalnum() for ch in word):
                func.append(q)
            elif word.isalpha():
                content.append(q)
    f, c = np.array(func), np.array(content)
    return {
        "n_func": len(f),
        "n_content": len(c),
        "func_first_quarter": float((f < 0.25).mean()),
        "content_first_quarter": float((c < 0.25).mean()),
        # P(a function word / punctuation mark is removed before a content word), over all pairs.
        "auc": float((f[:, None] < c[None, :]).mean()),
    }


@pytest.mark.shared
def test_function_words_and_punctuation_go_first(encoder, shared_dir):
    paragraphs = xquad(shared_dir, "en")
    texts = [first_sentences(p, 2) for p in paragraphs[::20][:12]]  # 12 articles' worth, ~600 tokens
    loo = _function_word_effect(texts, LooRanker(encoder).rank(texts))
    assert loo["n_func"] > 200 and loo["n_content"] > 200
    # Measured on these paragraphs: first quarter 0.43 vs 0.09, AUC 0.76 (chance: 0.5); greedy on its
    # six sentences 0.45 vs 0.09, AUC 0.76; stat 0.53 vs 0.0, AUC 0.98.
    assert loo["func_first_quarter"] > 2.5 * loo["content_first_quarter"], loo
    assert loo["auc"] > 0.7, loo

    short = [first_sentences(p, 1) for p in paragraphs[5::40][:6]]
    greedy = _function_word_effect(short, GreedyRanker(encoder).rank(short))
    assert greedy["func_first_quarter"] > 2 * greedy["content_first_quarter"], greedy
    assert greedy["auc"] > 0.65, greedy

    stat = StatRanker.fit(paragraphs)
    effect = _function_word_effect(texts, stat.rank(texts))
    assert effect["auc"] > 0.9 and effect["content_first_quarter"] < 0.05, effect


def test_empty_one_token_and_odd_documents(encoder):
    texts = ["", "   \n", "Hello", "...", "東", "The cat sat on the mat."]
    for ranker in (LooRanker(encoder), GreedyRanker(encoder), StatRanker.fit(texts)):
        out = ranker.rank(texts)
        assert len(out) == len(texts)
        assert out[0] == [] and out[1] == []
        assert [(s["start"], s["end"], s["removal_rank"]) for s in out[2]] == [(0, 5, 0)]
        assert [s["removal_rank"] for s in out[4]] == [0]
        for text, spans in zip(texts, out, strict=True):
            check_spans(text, spans)
    assert LooRanker(encoder).rank([]) == [] and StatRanker({}).rank([]) == []


@pytest.mark.shared
def test_very_long_document_is_windowed_never_truncated(encoder, shared_dir):
    # Five paragraphs of one article: ~4x what the encoder reads at once (256 wordpieces).
    text = "\n".join(xquad(shared_dir, "en")[:5])
    config = RankerConfig(window_wordpieces=32)  # short windows keep the test fast
    loo = LooRanker(encoder, config)
    plan = loo.plan([text])
    assert len(plan.spans[0]) > 600
    for w in plan.windows:
        assert sum(encoder.count_wordpieces([w.text_without()])) <= 32 or w.hi - w.lo == 1
    (spans,) = loo.rank([text])
    check_spans(text, spans)
    tail = np.array([s["score"] for s in spans[-100:]])
    assert np.median(tail) > 1e-3  # a truncated tail would score exactly 0
    # Stat handles a 50k-token document in one go.
    huge = " ".join([text] * 60)
    (stat_spans,) = StatRanker.fit([huge]).rank([huge])
    assert len(stat_spans) > 30_000
    assert sorted(s["removal_rank"] for s in stat_spans) == list(range(len(stat_spans)))


@pytest.mark.shared
def test_non_latin_scripts(encoder, shared_dir):
    texts = [first_sentences(xquad(shared_dir, lang)[10], 1) for lang in ("zh", "ar", "ru")]
    texts += sib200(shared_dir, "jpn_Jpan", 1) + sib200(shared_dir, "hye_Armn", 1)
    out = LooRanker(encoder).rank(texts)
    for text, spans in zip(texts, out, strict=True):
        check_spans(text, spans)
        assert np.std([s["score"] for s in spans]) > 0
    zh_tokens = [texts[0][s["start"] : s["end"]] for s in out[0]]
    assert all(len(t) == 1 for t in zh_tokens if "\u4e00" <= t[0] <= "\u9fff")


# ----------------------------------------------------------------------------------- storage and CLI


def _docs_rows(shared_dir: Path) -> list[dict]:
    texts = [first_sentences(xquad(shared_dir, lang)[20], 1) for lang in ("en", "de", "zh", "ar", "ru")]
    texts.append("")
    return [{"doc_id": f"doc{i:02d}", "text": t} for i, t in enumerate(texts)]


@pytest.mark.shared
def test_rank_version_shards_resume_and_commit(encoder, shared_dir, data_root):
    rows = _docs_rows(shared_dir)
    docs = write_version(data_root, "t-docs", {"documents": rows}, num_shards=3)
    stat = StatRanker.fit_version(docs)
    rankers = [LooRanker(encoder), stat]
    writer = VersionWriter(data_root, "t-sig", "v1", params={"r": "loo+stat"}, parents=[docs])

    paths = rank_version(docs, writer, rankers, rank=1, world_size=2, progress=False)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["part-00001-of-00003.parquet"]
    assert not all_shards_written(docs, writer)
    done = os.stat(paths[0]).st_mtime_ns

    paths = rank_version(docs, writer, rankers, rank=0, world_size=1, progress=False, chunk_docs=2)
    assert len(paths) == 3 and all_shards_written(docs, writer)
    assert os.stat(paths[1]).st_mtime_ns == done  # the finished shard was skipped, not rewritten
    ref = writer.commit()

    assert ref.manifest()["parents"] == [{"dataset": "t-docs", "version": docs.version}]
    table = ref.read("significance").to_pylist()
    assert len(table) == 2 * len(rows)
    text_of = {r["doc_id"]: r["text"] for r in rows}
    for row in table:
        check_spans(text_of[row["doc_id"]], row["spans"])
        if row["ranker"] == "loo":
            assert row["encoder"] == encoder.name == "e5:multilingual-e5-small-q4"
            assert row["encoder_hash"] == encoder.hash
        else:
            assert row["ranker_version"] == "unigram-surprisal-v1" and row["encoder"] == ""
    # The documents table is untouched (attributes live beside it).
    assert docs.read("documents", columns=["doc_id", "text"]).to_pylist() == rows
    # Same scores as ranking the text on its own: the shard unit changes nothing (up to float noise from
    # a different batch composition).
    stored = {r["doc_id"]: r["spans"] for r in table if r["ranker"] == "loo"}["doc00"]
    direct = LooRanker(encoder).rank([rows[0]["text"]])[0]
    assert np.allclose([s["score"] for s in stored], [s["score"] for s in direct], atol=1e-5)
    ranks = np.array([[s["removal_rank"] for s in stored], [s["removal_rank"] for s in direct]])
    assert np.corrcoef(ranks)[0, 1] > 0.999


@pytest.mark.shared
def test_cli_writes_sig_version_and_reports_bad_input(shared_dir, data_root, capsys, monkeypatch):
    from typer.testing import CliRunner

    from wikimix.cli import app, main

    docs = write_version(data_root, "demo-docs", {"documents": _docs_rows(shared_dir)[:3]}, num_shards=2)
    runner = CliRunner()
    args = ["significance", "--docs", "demo-docs", "--ranker", "stat", "--ranker", "loo", "--no-progress"]
    args += ["--threads", "2", "--encoder", str(default_model_path())]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "committed demo-sig@" in result.output
    sig = open_version(data_root, "demo-sig")
    assert sig.manifest()["parents"] == [{"dataset": "demo-docs", "version": docs.version}]
    assert sorted({r["ranker"] for r in sig.read("significance").to_pylist()}) == ["loo", "stat"]
    assert sig.num_rows("significance") == 6
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already committed" in again.output

    for bad, message in [
        (["--docs", "demo-docs", "--ranker", "nope"], "unknown ranker 'nope'"),
        (["--docs", "missing-docs", "--ranker", "stat"], "no committed version of dataset 'missing-docs'"),
        (
            ["--docs", "demo-docs", "--encoder", "/nonexistent/model"],
            "model file /nonexistent/model not found",
        ),
        (
            ["--docs", "demo-docs", "--encoder-backend", "minilm", "--encoder", "/nonexistent/model"],
            "is not a sentence-transformers model",
        ),
        (["--docs", "demo-docs", "--encoder-backend", "bert"], "unknown encoder backend 'bert'"),
        (
            ["--docs", "demo-docs", "--ranker", "stat", "--rank", "3", "--world-size", "2"],
            "outside world_size",
        ),
    ]:
        monkeypatch.setattr(sys, "argv", ["wikimix", "significance", *bad, "--no-progress"])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_bad_config_and_inputs(encoder, data_root, tmp_path):
    with pytest.raises(ConfigError):
        RankerConfig(window_wordpieces=0)
    with pytest.raises(ConfigError):
        RankerConfig(greedy_fraction=0)
    with pytest.raises(ConfigError):
        make_ranker("loo", None)
    with pytest.raises(ConfigError):
        make_ranker("stat", encoder)
    with pytest.raises(ConfigError, match="unknown ranker"):
        make_ranker("bm25", encoder)
    with pytest.raises(ConfigError):
        Encoder(EncoderConfig(batch_size=0))
    model = tmp_path / "model"
    model.mkdir()
    (model / "modules.json").write_text("[]")
    with pytest.raises(ConfigError, match="no weight files"):
        Encoder(EncoderConfig(backend="minilm", path=str(model)))
    # Weight hash: stable, and any changed byte changes it.
    (model / "model.safetensors").write_bytes(b"\x00" * 64)
    h = weights_hash(model)
    assert h == weights_hash(model) and len(h) == 16
    (model / "model.safetensors").write_bytes(b"\x00" * 63 + b"\x01")
    assert weights_hash(model) != h
    assert encoder.hash == weights_hash(default_model_path())

    pages_only = write_version(data_root, "p-wiki", {"fetch_log": []})
    writer = VersionWriter(data_root, "p-sig", "v1", parents=[pages_only])
    with pytest.raises(StorageError, match="has no table 'documents'"):
        rank_version(pages_only, writer, [StatRanker({})], progress=False)
    docs = write_version(data_root, "q-docs", {"documents": [{"doc_id": "a", "text": "x"}]})
    with pytest.raises(ConfigError):
        rank_version(docs, writer, [StatRanker({})], rank=2, world_size=2, progress=False)
    with pytest.raises(ConfigError):
        rank_version(docs, writer, [], progress=False)
    assert issubclass(ConfigError, WikimixError)
