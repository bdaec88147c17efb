"""The knowledge report's power check by hand: per variant and seed, the parallel arm's accuracy on its seen
facts asked with a training frame against the 0.8 bar; a run below it says so and reports no comparison."""

from __future__ import annotations

from training.knowledge_experiment import KnowledgeConfig, Prepared
from training.knowledge_report import POWER_BAR, power, report_markdown, summarize

ARMS = ("mono", "parallel", "cs")


def item(entity: str, k: int, heldout: bool) -> dict:
    # parallel and cs saw every non-held-out fact in the query language; mono saw only the first of each
    seen = {"mono": k == 0 and not heldout, "parallel": not heldout, "cs": not heldout}
    return {
        "entity": entity,
        "lang": "de",
        "heldout": heldout,
        "seen": seen,
        "candidates": ["a", "b", "c", "d"],
    }


def setting(parallel_probe: dict[int, list[bool]]) -> tuple[KnowledgeConfig, Prepared, dict]:
    cfg = KnowledgeConfig(
        out="unused", budget="smoke", variants=("ar",), seeds=(0, 1), arms=ARMS, finetune_steps=0
    )
    items = [item(e, k, k == 2) for e in ("E1", "E2") for k in range(3)]  # 2 seen, 1 held out per person
    probe = [it for it in items if any(it["seen"].values())]
    prepared = Prepared(data={}, tokenizer="byte", items=items, train_frame_items=probe, counts={})
    results = {}
    for seed in cfg.seeds:
        for arm in ARMS:
            hits = [True, False, seed == 0] * 2
            probe_hits = parallel_probe[seed] if arm == "parallel" else [True] * len(probe)
            results[(seed, "ar", arm)] = {"hits": hits, "probe_hits": probe_hits}
    return cfg, prepared, results


def test_power_is_parallel_seen_facts_with_a_training_frame_per_seed():
    cfg, prepared, results = setting({0: [True, True, True, True], 1: [True, True, True, False]})
    rows = power(cfg, prepared, results)
    assert [(r["seed"], r["accuracy"], r["items"], r["stored"]) for r in rows] == [
        (0, 1.0, 4, True),
        (1, 0.75, 4, False),
    ]
    assert all(r["bar"] == POWER_BAR == 0.8 and r["arm"] == "parallel" for r in rows)


def test_a_run_that_did_not_store_the_facts_reports_no_comparison():
    cfg, prepared, results = setting({0: [True] * 4, 1: [True, True, True, False]})
    cells, diffs, rows = summarize(cfg, prepared, results)
    assert diffs and all(d["powered"] is False for d in diffs)  # kept for knowledge.json, marked
    md = report_markdown(cfg, prepared, cells, diffs, rows)
    assert "ar: the models did not store the facts** (seed 1 below 0.8)" in md
    assert "not powered" in md and "a - b (held-out facts)" not in md
    assert "| ar | 1 | 0.750 | 4 | NO |" in md


def test_a_run_that_stored_the_facts_reports_the_comparison():
    cfg, prepared, results = setting({0: [True] * 4, 1: [True] * 4})
    cells, diffs, rows = summarize(cfg, prepared, results)
    assert all(r["stored"] for r in rows) and all(d["powered"] is True for d in diffs)
    md = report_markdown(cfg, prepared, cells, diffs, rows)
    assert "a - b (held-out facts)" in md and "| ar | cs - mono |" in md
    assert "did not store" not in md and "not powered" not in md


def test_without_a_parallel_arm_power_is_unchecked_and_the_comparison_stands():
    cfg, prepared, results = setting({0: [True] * 4, 1: [True] * 4})
    cfg.arms = ("mono", "cs")
    results = {k: v for k, v in results.items() if k[2] != "parallel"}
    cells, diffs, rows = summarize(cfg, prepared, results)
    assert rows == [] and all(d["powered"] is None for d in diffs)
    md = report_markdown(cfg, prepared, cells, diffs, rows)
    assert "Power: not checked" in md and "| ar | cs - mono |" in md
