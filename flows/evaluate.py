"""evaluate: score every trained variant on the fixed test split and publish the comparison.

    prefect deployment run 'evaluate/evaluate' -p corpus=sample -p budget=smoke
    python -c "from flows.evaluate import evaluate; evaluate(corpus='sample', budget='smoke')"

Runs training.evaluate on the checkpoints (prompt, completion, likelihood, generation quality, cost,
language mix of completions judged by fastText LID) and publishes the comparison table, the loss curves
and the steps/quality frontier as artifacts, with a link to the report directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task

from flows import artifacts
from flows.policy import TRAINING_CACHE_POLICY, persisted, resolve_root, retry_policy
from flows.train import corpus_versions
from storage.store import params_hash

# Evaluation sizes per training budget: smoke models see 8-16 token prompts and 8-token completions.
EVAL_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        prompt_min=8,
        prompt_max=16,
        cont_len=8,
        max_examples=16,
        n_generate=4,
        t_samples=4,
        t_chunk=2,
        temperatures=(1.0,),
        n_boot=50,
        reference_vocab=512,
    ),
    "bench-cpu": {},
    "bench-gpu": dict(device="cuda", max_examples=1024, n_generate=128),
}


def eval_config(budget: str, overrides: dict[str, Any]):
    from training.evaluate import EvalConfig

    return EvalConfig(**{**EVAL_BUDGETS.get(budget, {}), **overrides})


@task(cache_policy=TRAINING_CACHE_POLICY, **retry_policy(retries=1))
def evaluate_runs(root: str, runs: list[str], data: str, out: str, config: dict) -> dict[str, str]:
    """Score the checkpoints; returns {name: path} of the report files training.evaluate wrote."""
    from pipeline.lid import default_identifier
    from training.evaluate import EvalConfig
    from training.evaluate import evaluate as score

    identifier = default_identifier()

    def lid(texts: list[str]) -> list[str]:
        return [lang for lang, _ in identifier.predict(texts)]

    return score(runs, data, out, EvalConfig(**config), lid=lid)


@flow(name="evaluate", flow_run_name="evaluate/{corpus}-{budget}", log_prints=True)
def evaluate(
    corpus: str = "sample",
    runs: list[str] | None = None,
    budget: str = "smoke",
    version: str = "latest",
    overrides: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Evaluate `runs` (default: every run trained on this corpus) on the corpus's test split."""
    root = resolve_root(None)
    data, _ = corpus_versions(root, corpus, version)
    if runs is None:
        runs = sorted(str(p.parent) for p in (Path(root) / "runs" / corpus).glob("*/state.json"))
    cfg = eval_config(budget, overrides or {})
    from dataclasses import asdict

    config = asdict(cfg)
    out = str(
        Path(root) / "reports" / corpus / f"{budget}-{params_hash({'runs': runs, 'data': data, **config})}"
    )
    paths = persisted(evaluate_runs, root)(root, runs, data, out, config)
    publish_evaluation(corpus, data, paths)
    return paths


def publish_evaluation(corpus: str, data: str, paths: dict[str, str]) -> list[str]:
    rows = pl.read_parquet(paths["comparison_parquet"]).to_dicts()
    return [
        artifacts.comparison_table(
            corpus, rows, f"Comparison on the test split of {data}; {paths['comparison_md']}"
        ),
        artifacts.image(
            artifacts.artifact_key(corpus, "training-curves"),
            paths["loss_curves"],
            "Validation bits/byte vs tokens and FLOPs",
        ),
        artifacts.image(
            artifacts.artifact_key(corpus, "frontier"),
            paths["frontier_png"],
            "Quality-diversity frontier over temperature",
        ),
        artifacts.report_link(corpus, Path(paths["comparison_md"]).parent),
    ]


@flow(name="publish-comparison", log_prints=True)
def publish_report(name: str, data: str, paths: dict[str, str]) -> list[str]:
    """Publish a report written by training.evaluate (e.g. by bench/compare.py) as artifacts `name-...`."""
    return publish_evaluation(name, data, paths)
