"""The end-to-end flow on the sample wiki against a real Prefect server: every stage lands a dataset version,
the artifacts read back through the client, and a second run with unchanged input is served from the cache."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SPLIT = {"val_frac": 0.2, "test_frac": 0.2}  # the sample corpus is small: enough test documents
VARIANTS = ["ar", "mdlm", "semantic-insert"]  # semantic-insert: significance flows into train and eval
SCORES = ("bits_per_byte", "accuracy", "entropy", "ngram_judge_bpb")


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
    from prefect.client.schemas.sorting import ArtifactSort

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
    )
    assert found, f"no artifact {key!r}"
    return found[0]  # newest first


def subflow_runs(client, flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
    )


def task_states(client, flow_run_id) -> dict[str, list[str]]:
    """State names of every task run under a flow run and its subflows, by task name."""
    from prefect.client.schemas.filters import (
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    runs = [flow_run_id] + [r.id for r in subflow_runs(client, flow_run_id)]
    out: dict[str, list[str]] = {}
    for t in client.read_task_runs(
        task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=runs))
    ):
        out.setdefault(t.task_key.rsplit("-", 1)[0], []).append(t.state.name)  # run names are readable
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
    # the comparison: rows per trained variant (named by its run directory, one per decoding), the baselines
    # and the reference; every variant scored with finite numbers, in the parquet table and the markdown
    report = result["report"]
    rows: dict[str, list[dict]] = {}
    for r in pq.read_table(report["comparison_parquet"]).to_pylist():
        rows.setdefault(r["model"], []).append(r)
    assert {Path(run).name for run in result["runs"].values()} | {"reference"} <= set(rows)
    table = Path(report["comparison_md"]).read_text().splitlines()
    for variant, run in result["runs"].items():
        lines = [line for line in table if line.startswith(f"| {Path(run).name} |")]
        assert len(lines) == len(rows[Path(run).name]), (variant, lines)
        for row, line in zip(rows[Path(run).name], lines, strict=True):
            for key in SCORES:
                assert isinstance(row[key], float) and math.isfinite(row[key]), (variant, key, row[key])
            assert row["bits_per_byte"] > 0 and row["test_pairs"] > 0
            assert Path(row["checkpoint"]).resolve() == Path(run).resolve()
            assert f"{row['bits_per_byte']:.3f} |" in line, (variant, line)


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
    for variant in VARIANTS:  # updated live during training; at the end, every step done
        progress = artifact(prefect_client, f"e2e-{variant}-training-progress")
        assert progress.type == "progress" and float(progress.data) == 100.0


def test_training_logs_progress_lines_and_curves_while_it_runs(two_runs, prefect_client):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from flows.server import flush_to_server

    flush_to_server()  # logs are sent in batches
    root, first, _ = two_runs
    train_runs = [
        r
        for r in subflow_runs(prefect_client, first.state_details.flow_run_id)
        if r.name.startswith("train-all/")
    ]
    [train_all_run] = train_runs
    assert train_all_run.name == "train-all/e2e-smoke"
    logs = prefect_client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[train_all_run.id]))
    )
    lines = [log.message for log in logs if " step " in log.message and "tokens/s, ETA " in log.message]
    for variant in VARIANTS:
        assert any(line.startswith(f"{variant} step ") for line in lines), (variant, lines[:5])
    # at each evaluation the run's live curve is redrawn and published
    for run in first.result()["runs"].values():
        assert Path(f"{run}-live-loss.png").stat().st_size > 1000


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


def chromium() -> str:
    """Debian's Chromium (scripts/system-deps.sh installs it); no browser build can be downloaded here."""
    found = os.environ.get("WIKIMIX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip(
            "Chromium is not installed (Debian package `chromium`: run scripts/system-deps.sh as root)"
        )
    return found


def open_page(page, url: str, ready: str, shot: Path) -> None:
    """Go to `url`, wait until the selector `ready` is visible (the UI renders client-side), screenshot."""
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector(ready, timeout=60_000)
    page.screenshot(path=str(shot), full_page=True)


def test_the_prefect_ui_shows_the_named_runs_the_comparison_and_the_curves(
    two_runs, prefect_server, prefect_client, tmp_path
):
    """Headless Chromium on the server's UI: screenshots land in tmp_path (pytest keeps the last runs)."""
    from playwright.sync_api import sync_playwright

    from flows.server import flush_to_server

    executable = chromium()
    flush_to_server()
    _, first, _ = two_runs
    names = ["end-to-end/e2e-smoke", "build-corpus/e2e", "train-all/e2e-smoke", "evaluate/e2e-smoke"]
    comparison = artifact(prefect_client, "e2e-evaluation")
    curves = artifact(prefect_client, "e2e-training-curves")
    written = [r["model"] for r in pq.read_table(first.result()["report"]["comparison_parquet"]).to_pylist()]
    assert {Path(run).name for run in first.result()["runs"].values()} <= set(written)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            open_page(page, f"{prefect_server.url}/runs", f"text={names[0]}", tmp_path / "runs.png")
            for name in names:
                assert page.get_by_text(name, exact=True).count() >= 1, name

            url = f"{prefect_server.url}/artifacts/artifact/{comparison.id}"
            open_page(page, url, "table tbody tr", tmp_path / "evaluation.png")
            header = page.locator("table thead th").all_inner_texts()
            model_column = [h.strip() for h in header].index("model")
            cells = [
                row.locator("td").nth(model_column).inner_text().strip()
                for row in page.locator("table tbody tr").all()
            ]
            assert sorted(cells) == sorted(written), cells  # every row the evaluation wrote: each variant

            url = f"{prefect_server.url}/artifacts/artifact/{curves.id}"
            open_page(page, url, "img[src^='data:image/png']", tmp_path / "training-curves.png")
            page.wait_for_function(
                "() => Array.from(document.images).some(i => i.src.startsWith('data:image/png') && i.complete)"
            )
            widths = page.evaluate(
                "Array.from(document.images).filter(i => i.src.startsWith('data:image/png'))"
                ".map(i => i.naturalWidth)"
            )
            assert widths and all(w > 0 for w in widths), widths
        finally:
            browser.close()
    print(f"screenshots: {tmp_path}")
