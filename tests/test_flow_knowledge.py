"""The cs-knowledge flow at a tiny smoke size against a real Prefect server: every arm trains, the cloze
table and plot land as artifacts and read back through the client, and the report names every arm."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.test_flows_end_to_end import artifact

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

TINY = {"n_entities": 12, "n_finetune_entities": 4, "passes": 1, "eval_entities": 2, "max_steps": 6,
        "finetune_steps": 2}  # fmt: skip


@pytest.mark.timeout(900)
def test_cs_knowledge_flow_publishes_table_and_plot(prefect_server, prefect_client, tmp_path):
    import torch

    from flows.knowledge import cs_knowledge

    torch.set_num_threads(1)  # two threads on a busy 2-core machine oversubscribe (BENCHMARKS.md)
    previous = os.environ.get("WIKIMIX_DATA")
    os.environ["WIKIMIX_DATA"] = str(tmp_path / "data")
    try:
        state = cs_knowledge(
            budget="smoke", seeds=[0], variants=["ar", "mdlm"], overrides=TINY, return_state=True
        )
    finally:
        if previous is None:
            os.environ.pop("WIKIMIX_DATA")
        else:
            os.environ["WIKIMIX_DATA"] = previous
    assert state.is_completed(), state
    paths = state.result()
    summary = json.loads(Path(paths["summary"]).read_text())
    arms = {(c["variant"], c["arm"]) for c in summary["cells"]}
    for variant in ("ar", "mdlm"):
        for arm in ("mono", "parallel", "cs", "cs-fixed", "cs+ft", "mono+ft"):
            assert (variant, arm) in arms
    assert summary["counts"]["heldout_items"] == 2 * 6  # one held-out language per fact
    assert {(d["a"], d["b"]) for d in summary["differences"]} >= {("cs", "mono"), ("parallel", "mono")}

    table = artifact(prefect_client, "cs-knowledge-smoke-evaluation")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {r["arm"] for r in rows} >= {"mono", "parallel", "cs", "cs-fixed"}
    assert all(r["chance"] is None or 0 < r["chance"] < 0.2 for r in rows)
    plot = artifact(prefect_client, "cs-knowledge-smoke-plot")
    assert plot.type == "image" and plot.data.startswith("data:image/png;base64,")
