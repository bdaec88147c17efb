"""The cloze can see knowledge: a tiny ar trained on a 3-person KB (mono arm, 300 steps, bytes) ranks the
true value first for most facts it saw, with a training frame and with a held-out frame (chance ~0.1)."""

from __future__ import annotations

import pytest

from training.knowledge import chance
from training.knowledge_experiment import KnowledgeConfig, grid, measure, prepare
from training.knowledge_report import _cell_items


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_trained_tiny_ar_knows_the_facts_it_saw(data_root, tmp_path):
    cfg = KnowledgeConfig(
        out=str(tmp_path / "kx"), budget="smoke", seeds=(0,), variants=("ar",), arms=("mono", "cs"),
        n_entities=3, n_finetune_entities=0, passes=4, eval_entities=3, max_steps=300, finetune_steps=0,
        train_overrides={"threads": 1, "seq_len": 128, "lr": 3e-3, "warmup_steps": 10,
                         "model": {"d_model": 64, "n_layers": 2, "n_heads": 2}},
    )  # fmt: skip
    out = tmp_path / "kx"
    out.mkdir()
    prepared = prepare(cfg, out)
    run = grid(cfg, prepared).train(0, "ar", "mono")
    result = measure(cfg, prepared, run, "mono")
    seen, hits = _cell_items(prepared.items, result["hits"], "seen", "mono")
    probe, probe_hits = _cell_items(
        prepared.train_frame_items, result["probe_hits"], "seen-train-frame", "mono"
    )
    assert len(seen) == len(probe) == 3 * 6  # each person's six facts, in the home language
    assert chance(seen) < 0.15
    assert sum(probe_hits) / len(probe_hits) >= 0.75  # measured 0.94
    assert sum(hits) / len(hits) >= 0.6  # held-out frame: measured 0.89
    assert measure(cfg, prepared, run, "mono") == result  # cached with its checkpoint step
