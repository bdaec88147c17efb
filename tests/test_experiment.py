"""The code-switching experiment end to end on a tiny setting: XQuAD paragraphs (en, de, ru: the same
paragraph in each language) made into code-switched and monolingual documents by the real builder
(pipeline.codeswitch, curriculum policy), two seeds of `smoke`-sized mdlm runs; plus hand-computed cases."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from pipeline.codeswitch import BuildConfig, Candidate, Slot, documents_from_slots
from pipeline.sentences import split_sentences
from storage.store import write_version
from training import experiment as ex
from training.experiment_report import verdict
from training.intervals import interval

LANGS = ("en", "de", "ru")


def curriculum_docs(shared: Path, max_concepts: int = 80) -> list[dict]:
    """Documents of every curriculum stage from XQuAD paragraphs whose sentence counts agree across
    languages (sentence k of each language is one slot). Concept = article#paragraph."""
    data = {
        x: json.loads((shared / "corpus" / "xquad" / f"xquad.{x}.json").read_text())["data"] for x in LANGS
    }
    rows, cfg = [], BuildConfig(policy="curriculum", lid=False, min_langs=3, max_chars=100_000)
    for i, article in enumerate(data["en"]):
        for j in range(len(article["paragraphs"])):
            texts = {x: data[x][i]["paragraphs"][j]["context"] for x in LANGS}
            spans = {x: split_sentences(texts[x], x) for x in LANGS}
            if len({len(s) for s in spans.values()}) != 1:
                continue
            slots = [
                Slot(
                    pos=float(k),
                    candidates={
                        x: Candidate(
                            x,
                            texts[x][spans[x][k][0] : spans[x][k][1]],
                            {"wiki": f"{x}wiki", "page_id": i, "rev_id": 1, "section_idx": 0,
                             "paragraph_idx": j, "sentence_idx": k},
                        )
                        for x in LANGS
                    },
                )
                for k in range(len(spans["en"]))
            ]  # fmt: skip
            docs, _ = documents_from_slots(f"{article['title']}#{j}", slots, cfg)
            rows += docs
            if len({r["concept"] for r in rows}) >= max_concepts:
                return rows
    return rows


def test_experiment_runs_end_to_end_on_a_tiny_setting(data_root, shared_dir, tmp_path):
    torch.set_num_threads(1)  # tiny models: a second thread only adds sync cost on a busy CPU
    ref = write_version(data_root, "xq-cur", {"documents": curriculum_docs(shared_dir)})
    cfg = ex.ExperimentConfig(
        cs_data=str(ref),
        out=str(tmp_path / "exp"),
        name="tiny",
        variant="mdlm",
        budget="smoke",
        max_steps=6,
        seeds=(0, 1),
        heldout_frac=0.2,
        finetune_steps=3,
        train_overrides={"model": {"nll_samples": 2}},
        cloze_items=3,
        cloze_distractors=2,
        cloze_context=24,
        mem_passages=2,
        mem_prefix=16,
        mem_suffix=4,
        eval_windows=2,
    )
    paths = ex.run_experiment(cfg)
    summary = json.loads(Path(paths["summary"]).read_text())
    counts = summary["counts"]
    assert counts["heldout_concepts"] > 0 and counts["cloze_items"] > 0
    assert summary["finetune_lang"] in LANGS
    # every cloze fact was removed in its question language and survives in another, in both arms
    for item in (json.loads(line) for line in Path(paths["cloze"]).read_text().splitlines()):
        assert item["lang"] not in item["seen_cs"] and item["lang"] not in item["seen_mono"]
        assert item["seen_cs"] and item["seen_mono"] and item["number"] not in item["prefix"]
    cs_docs = ex.read_docs(ex.parse_data_spec(summary["data"]["cs"]))
    for item in json.loads(Path(paths["summary"]).read_text())["per_seed"]["0"]["cs"]["cloze"]["choices"]:
        assert item["chose"] in {item["number"], *next(
            c["distractors"] for c in map(json.loads, Path(paths["cloze"]).read_text().splitlines())
            if c["concept"] == item["concept"] and c["number"] == item["number"]
        )}  # fmt: skip
    heldout = {r["concept"] for r in ex.read_docs(ref)} - {d["concept"] for d in cs_docs}
    assert heldout and not heldout & {d["concept"] for d in cs_docs}
    per_seed = pq.read_table(paths["per_seed"]).to_pylist()
    assert {(r["seed"], r["arm"]) for r in per_seed} == {(s, a) for s in (0, 1) for a in ex.ARMS}
    assert all(r["heldout_bpb_mean"] > 0 and 0 <= r["cloze_accuracy"] <= 1 for r in per_seed)
    effects = summary["effects"]
    first = effects[0]
    assert (first["effect"], first["a"], first["b"], first["seeds"]) == (
        "held-out bits/byte (mean over languages)",
        "cs",
        "mono",
        2,
    )
    # recomputed from the per-seed table: the paired differences' mean and 95% t-interval; with two seeds
    # t(0.975, 1 df) = tan(0.475 pi) (Student's t with one degree of freedom is Cauchy) and the standard
    # error is |d0 - d1| / 2
    bpb = {(r["seed"], r["arm"]): r["heldout_bpb_mean"] for r in per_seed}
    d0, d1 = (bpb[s, "cs"] - bpb[s, "mono"] for s in (0, 1))
    half = math.tan(0.475 * math.pi) * abs(d0 - d1) / 2
    assert first["diff_mean"] == pytest.approx((d0 + d1) / 2, rel=1e-9, abs=1e-12)
    assert (first["diff_low"], first["diff_high"]) == pytest.approx(
        ((d0 + d1) / 2 - half, (d0 + d1) / 2 + half), rel=1e-4, abs=1e-9
    )
    assert first["a_mean"] == pytest.approx((bpb[0, "cs"] + bpb[1, "cs"]) / 2, rel=1e-9)
    md = Path(paths["report"]).read_text()
    assert "cross-lingual cloze accuracy" in md and "verbatim memorisation rate" in md
    # fine-tuning started from the code-switched weights: step counter restarted, data changed
    ft = json.loads((tmp_path / "exp" / "seed0" / "cs-ft" / "config.json").read_text())["train"]
    assert ft["data"] == summary["data"]["finetune"] and ft["max_steps"] == 3
    # a rerun resumes: nothing retrained, the same numbers
    weights = [
        tmp_path / "exp" / f"seed{s}" / a / "model.safetensors"
        for s in (0, 1)
        for a in ("cs", "mono", "cs-ft")
    ]
    stamps = [w.stat().st_mtime_ns for w in weights]
    again = json.loads(Path(ex.run_experiment(cfg)["summary"]).read_text())
    assert again["effects"] == effects
    assert [w.stat().st_mtime_ns for w in weights] == stamps


def test_interval_and_verdict_by_hand():
    # values 1, 2, 3: mean 2, sd 1, half-width 4.303 / sqrt(3)
    iv = interval([1.0, 2.0, 3.0])
    assert iv["mean"] == 2.0 and math.isclose(iv["high"] - 2.0, 4.303 / math.sqrt(3))
    assert math.isclose(2.0 - iv["low"], 4.303 / math.sqrt(3)) and iv["n"] == 3
    assert interval([5.0]) == {"mean": 5.0, "low": None, "high": None, "n": 1}
    assert interval([None]) == {"mean": None, "low": None, "high": None, "n": 0}
    assert verdict({"low": -0.3, "high": -0.1}, True, "cs", "mono") == "cs better"
    assert verdict({"low": -0.3, "high": -0.1}, False, "cs", "mono") == "mono better"
    assert verdict({"low": -0.3, "high": 0.1}, True, "cs", "mono") == "no detectable difference"


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_interval_covers_the_true_mean_95_percent_of_the_time(n: int):
    """Normal samples of a known mean: the 95% interval must cover it in 95% of 4000 draws (a binomial
    sd of 0.0034, so +-0.015 is over 4 sd), and its mean width must match t * E[sd] * 2 / sqrt(n)."""
    rng = random.Random(n)
    true_mean, sigma, draws = 3.0, 0.7, 4000
    covered, widths = 0, []
    for _ in range(draws):
        iv = interval([rng.gauss(true_mean, sigma) for _ in range(n)])
        covered += iv["low"] <= true_mean <= iv["high"]
        widths.append(iv["high"] - iv["low"])
    assert abs(covered / draws - 0.95) < 0.015
    # E[sample sd] = c4(n) * sigma, c4(n) = sqrt(2 / (n - 1)) * Gamma(n / 2) / Gamma((n - 1) / 2)
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    t = {2: math.tan(0.475 * math.pi), 3: 4.302653, 5: 2.776445, 12: 2.200985}[n]
    expected = 2 * t * c4 * sigma / math.sqrt(n)
    assert statistics.fmean(widths) == pytest.approx(expected, rel=0.05)


def test_segment_removal_and_cloze_choice_by_hand():
    doc = {
        "doc_id": "d",
        "concept": "C",
        "text": "Built in 1889 here. Gebaut 1889 dort. Построен в 1889 году.",
        "segments": [
            {"start": 0, "end": 19, "lang": "en"},
            {"start": 20, "end": 37, "lang": "de"},
            {"start": 38, "end": 59, "lang": "ru"},
        ],
    }
    assert [t for _, t in ex.segment_texts(doc)] == [
        "Built in 1889 here.",
        "Gebaut 1889 dort.",
        "Построен в 1889 году.",
    ]
    new = ex.without_segments(doc, lambda lang, text: lang == "de")
    assert new["text"] == "Built in 1889 here. Построен в 1889 году."
    assert [(s["start"], s["end"]) for s in new["segments"]] == [(0, 19), (20, 41)] and new["langs"] == [
        "en",
        "ru",
    ]
    assert ex.without_segments(doc, lambda lang, text: True) is None
    other = {
        "doc_id": "e",
        "concept": "D",
        "text": "Year 1234, 1500 and 2001.",
        "segments": [{"start": 0, "end": 25, "lang": "en"}],
    }
    cfg = ex.ExperimentConfig(cs_data="x", out="y", cloze_distractors=2, min_prefix_chars=5)
    items = ex.choose_cloze([doc, other], {"C"}, cfg)
    assert len(items) == 1
    it = items[0]
    assert (it["concept"], it["number"]) == ("C", "1889") and it["lang"] in ("en", "de", "ru")
    assert it["prefix"] in ("Built in ", "Gebaut ", "Построен в ")
    assert len(it["distractors"]) == 2 and set(it["distractors"]) <= {"1234", "1500", "2001"}
    assert ex.NUMBER.findall("in 1,000 and 12345 and 1889. 2.500") == ["1889"]
