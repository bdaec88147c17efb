"""end-to-end: the whole DAG: build-corpus -> train-all -> evaluate, as three subflows of one run.

    wikimix demo                                                 # on the sample wiki, smoke budget
    prefect deployment run 'end-to-end/end-to-end' -p budget=bench-cpu

Each subflow is the same flow a deployment runs on its own, so every stage keeps its cache: a rerun with
unchanged input reuses the corpus, the checkpoints and the evaluation.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from flows.corpus import SAMPLE_WIKI, build_corpus
from flows.evaluate import evaluate
from flows.train import train_all


@flow(name="end-to-end", flow_run_name="end-to-end/{name}-{budget}", log_prints=True)
def end_to_end(
    name: str = "sample",
    source: Literal["dumps", "wiki"] = "dumps",
    dumps: str = str(SAMPLE_WIKI),
    concepts: str = str(SAMPLE_WIKI / "concepts.tsv"),
    api_urls: dict[str, str] | None = None,
    langs: list[str] | None = None,
    shards: int = 2,
    policy: Literal["uniform", "weighted", "curriculum"] = "uniform",
    max_chars: int = 2000,
    rankers: list[str] = ["loo"],  # noqa: B006 - Prefect parameters are copied per run
    variants: list[str] = ["ar", "mdlm"],  # noqa: B006
    budget: str = "smoke",
    train_overrides: dict[str, Any] | None = None,
    eval_overrides: dict[str, Any] | None = None,
    task_runner: str = "threads",
) -> dict[str, Any]:
    """Build the corpus, train every variant, evaluate; returns the version paths, runs and reports."""
    corpus = build_corpus(
        name=name,
        source=source,
        dumps=dumps,
        concepts=concepts,
        api_urls=api_urls,
        langs=langs,
        shards=shards,
        policy=policy,
        max_chars=max_chars,
        rankers=rankers,
        task_runner=task_runner,
    )
    runs = train_all(corpus=name, variants=variants, budget=budget, overrides=train_overrides)
    report = evaluate(corpus=name, runs=list(runs.values()), budget=budget, overrides=eval_overrides)
    return {"corpus": corpus, "runs": runs, "report": report}
