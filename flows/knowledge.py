"""cs-knowledge: the controlled multilingual knowledge experiment as a flow (training/knowledge_experiment.py
holds the protocol; this only wires it and publishes the results).

    prefect deployment run 'cs-knowledge/cs-knowledge' -p budget=smoke -p seeds='[0]'
    python -c "from flows.knowledge import cs_knowledge; cs_knowledge(budget='smoke', seeds=[0])"

Build the KB corpus (every arm's documents as data versions), train every (seed, variant, arm) as one task
each (the trainer resumes on its own; a finished run returns at once), measure the cloze, then publish the
table of accuracy by variant x arm x cell and its plot as artifacts `cs-knowledge-<budget>-...`. Runs land in
`<data root>/runs/cs-knowledge/<budget>-<config hash>`.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows import artifacts
from flows.policy import TRAINING_CACHE_POLICY, persisted, resolve_root, retry_policy
from storage.store import params_hash
from wikimix.errors import ConfigError


def _config(
    root: str, budget: str, seeds: list[int], variants: list[str], latin_names: bool, overrides: dict
):
    from training.knowledge_experiment import KnowledgeConfig

    params = {"budget": budget, "seeds": seeds, "variants": variants, "latin": latin_names, **overrides}
    out = Path(root) / "runs" / "cs-knowledge" / f"{budget}-{params_hash(params)}"
    return KnowledgeConfig(
        out=str(out), budget=budget, seeds=tuple(seeds), variants=tuple(variants), latin_names=latin_names,
        **overrides,
    )  # fmt: skip


@task(cache_policy=TRAINING_CACHE_POLICY, **retry_policy(retries=1))
def train_and_measure(root: str, config: dict, seed: int, variant: str, arm: str) -> dict:
    """One arm's model trained (or resumed) and its cloze answers measured."""
    from training.knowledge_experiment import KnowledgeConfig, grid, measure, prepare

    os.environ["WIKIMIX_DATA"] = root  # the arms' data versions resolve under this flow's root
    cfg = KnowledgeConfig(**config)
    prepared = prepare(cfg, Path(cfg.out))  # content-addressed: rebuilding finds the versions already written
    run_dir = grid(cfg, prepared).train(seed, variant, arm)
    return measure(cfg, prepared, run_dir, arm)


@task(**retry_policy(retries=1))
def publish(name: str, paths: dict[str, str], cells: list[dict], description: str) -> list[str]:
    table = [
        {k: c[k] for k in ("variant", "arm", "cell", "mean", "low", "high", "chance", "n_items")}
        for c in cells
    ]
    return [
        artifacts.comparison_table(name, table, description),
        artifacts.image(artifacts.artifact_key(name, "plot"), paths["plot"], "Cloze accuracy by arm x cell"),
        artifacts.report_link(name, Path(paths["report"]).parent),
    ]


@flow(name="cs-knowledge", log_prints=True)
def cs_knowledge(
    budget: str = "smoke",
    seeds: list[int] = [0, 1, 2],  # noqa: B006 - Prefect parameters are copied per run
    variants: list[str] = ["ar", "mdlm"],  # noqa: B006
    latin_names: bool = False,
    overrides: dict | None = None,
) -> dict[str, str]:
    """Build the KB corpus, train and measure every arm, publish the table and plot; returns the paths."""
    from training.knowledge_experiment import grid, prepare
    from training.knowledge_report import summarize, write_outputs

    root = resolve_root(None)
    if "://" in root:
        raise ConfigError(f"the knowledge experiment trains models: it needs a local data root, got {root!r}")
    os.environ["WIKIMIX_DATA"] = root
    cfg = _config(root, budget, list(seeds), list(variants), latin_names, overrides or {})
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(cfg, out)
    get_run_logger().info("knowledge corpus: %s", prepared.counts)
    step = persisted(train_and_measure, root)
    runs = grid(cfg, prepared)
    results = {}
    for seed in cfg.seeds:
        for variant in cfg.variants:
            for arm in runs.run_dirs(seed, variant):  # fine-tuned arms after their base arm
                results[(seed, variant, arm)] = step(root, asdict(cfg), seed, variant, arm)
    cells, diffs, power_rows = summarize(cfg, prepared, results)
    paths = write_outputs(cfg, prepared, cells, diffs, power_rows, out)
    name = artifacts.artifact_key("cs-knowledge", budget, "latin" if latin_names else "")
    gain = next((d for d in diffs if (d["a"], d["b"]) == ("cs", "mono")), None)
    unstored = sorted({f"{r['variant']} seed {r['seed']}" for r in power_rows if not r["stored"]})
    caveat = f" NOT POWERED: the models did not store the facts ({', '.join(unstored)})" if unstored else ""
    publish(name, paths, cells, f"Knowledge cloze, budget {budget}, seeds {list(seeds)}; cs - mono on held-out "
            f"facts: {gain and gain['mean']};{caveat} {paths['report']}")  # fmt: skip
    return paths
