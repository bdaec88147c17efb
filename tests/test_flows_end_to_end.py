"""The end-to-end flow on the sample wiki against a real Prefect server: every stage lands a dataset version,
the artifacts read back through the client, and a second run with unchanged input is served from the cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SPLIT = {"val_frac": 0.2, "test_frac": 0.2}  # the sample corpus is small: enough test documents
VARIANTS = ["ar", "mdlm", "semantic-insert"]  # semantic-insert: significance flows into train and eval
SCORES = ("nll", "perplexity", "bits_per_byte", "accuracy", "gen_ppl", "tok_per_s")


@pytest.fixture(scope="module")
def two_runs(prefect_server, tmp_path_factory):
    """Run end-to-end twice on the same data root; returns both final states."""
    import os

    import torch

    from flows.end_to_end import end_to_end

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("e2e") / "data"
    previous = os.environ.get("WIKIMIX_DATA")
    os.environ["WIKIMIX_DATA"] = str(root)
    params = dict(
        name="e2e",
        max_chars=500,
        rankers=["stat"],
        train_overrides=SPLIT,
        eval_overrides=SPLIT,
        budget="smoke",
        variants=VARIANTS,
    )
    try:
        first = end_to_end(**params, return_state=True)
        second = end_to_end(**params, return_state=True)
    finally:
        if previous is None:
            os.environ.pop("WIKIMIX_DATA")
        else:
            os.environ["WIKIMIX_DATA"] = previous
    return root, first, second


def artifact(client, key: str):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key!r}"
    return found[0]  # newest first


def task_states(client, flow_run_id) -> dict[str, list[str]]:
    """State names of every task run under a flow run and its subflows, by task name."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    runs = [flow_run_id] + [
        r.id
        for r in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
    ]
    out: dict[str, list[str]] = {}
    for t in client.read_task_runs(
        task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=runs))
    ):
        out.setdefault(t.name.rsplit("-", 1)[0], []).append(t.state.name)
    return out


def test_end_to_end_builds_trains_and_evaluates(two_runs):
    root, first, _ = two_runs
    assert first.is_completed(), first
    result = first.result()
    for stage in ("wiki", "align", "docs", "sig"):
        assert (Path(result["corpus"][stage]) / "manifest.json").is_file()
    manifest = json.loads((Path(result["corpus"]["sig"]) / "manifest.json").read_text())
    assert manifest["parents"] == [{"dataset": "e2e-docs", "version": Path(result["corpus"]["docs"]).name}]
    assert set(result["runs"]) == set(VARIANTS)
    for run in result["runs"].values():
        assert (Path(run) / "model.safetensors").is_file()
    # the comparison: one row per trained variant (named by its run directory) and the reference, every
    # variant scored with finite numbers, in the parquet table and the markdown one alike
    report = result["report"]
    rows = {r["model"]: r for r in pq.read_table(report["comparison_parquet"]).to_pylist()}
    assert set(rows) == {Path(run).name for run in result["runs"].values()} | {"reference"}
    table = Path(report["comparison_md"]).read_text().splitlines()
    for variant, run in result["runs"].items():
        row = rows[Path(run).name]
        for key in SCORES:
            assert isinstance(row[key], float) and math.isfinite(row[key]), (variant, key, row[key])
        assert row["bits_per_byte"] > 0 and row["test_pairs"] > 0
        assert Path(row["checkpoint"]).resolve() == Path(run).resolve()
        lines = [line for line in table if line.startswith(f"| {Path(run).name} |")]
        assert len(lines) == 1 and f"| {row['bits_per_byte']:.3f} |" in lines[0], (variant, lines)


def test_artifacts_read_back_through_the_client(two_runs, prefect_client):
    card = artifact(prefect_client, "e2e-dataset-card")
    rows = json.loads(card.data) if isinstance(card.data, str) else card.data
    by_lang = {r["lang"]: r for r in rows}
    assert set(by_lang) == {"de", "en", "es", "ja", "ru", "all"}
    assert all(by_lang[lang]["pages"] == 8 for lang in ("de", "en", "es", "ja", "ru"))
    assert by_lang["all"]["words"] == sum(by_lang[lang]["words"] for lang in by_lang if lang != "all") > 1000

    metrics = artifact(prefect_client, "e2e-codeswitch-metrics")
    rows = json.loads(metrics.data) if isinstance(metrics.data, str) else metrics.data
    overall = next(r for r in rows if r["policy"] == "all")
    assert overall["documents"] > 5 and overall["n_langs"] >= 3 and 0 < overall["cmi"] <= 100

    assert artifact(prefect_client, "e2e-example-documents").type == "markdown"
    assert "75% removed" in artifact(prefect_client, "e2e-significance-examples").data
    link = artifact(prefect_client, "e2e-docs-location")
    assert "e2e-docs@" in link.data and "file:///" in link.data  # Prefect stores a link as markdown
    curves = artifact(prefect_client, "e2e-training-curves")
    assert curves.type == "image" and curves.data.startswith("data:image/png;base64,")
    comparison = artifact(prefect_client, "e2e-evaluation")
    rows = json.loads(comparison.data) if isinstance(comparison.data, str) else comparison.data
    assert {"ar-smoke", "mdlm-smoke", "semantic-insert-smoke"} <= {
        r["model"].rsplit("-", 1)[0] for r in rows if r.get("model")
    }
    progress = artifact(prefect_client, "e2e-significance-progress")
    assert progress.type == "progress" and float(progress.data) == 100.0


def test_second_run_with_unchanged_input_hits_the_cache(two_runs, prefect_client):
    root, first, second = two_runs
    assert second.is_completed()
    assert second.result() == first.result()
    states = task_states(prefect_client, second.state_details.flow_run_id)
    cached = ("ingest_dumps", "plan_version", "align_shard", "documents_shard", "significance_shard",
              "commit_version", "train_run", "evaluate_runs")  # fmt: skip
    for name in cached:
        assert states[name] and set(states[name]) == {"Cached"}, (name, states[name])
    first_states = task_states(prefect_client, first.state_details.flow_run_id)
    assert set(first_states["train_run"]) == {"Completed"}
