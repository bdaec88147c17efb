"""`wikimix experiment knowledge`: the controlled multilingual knowledge experiment (its options are parsed by
the `experiment` verb in wikimix/commands/evaluate.py; this runs it and prints the report).

wikimix experiment knowledge --budget smoke --seeds 0 --out runs/cs-knowledge
wikimix experiment knowledge --budget bench-cpu --seeds 0,1,2 --latin-names --out runs/cs-knowledge-latin
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def run_knowledge_command(
    out: str,
    budget: str,
    seeds: tuple[int, ...],
    variants: str,
    latin_names: bool,
    finetune_lang: str,
    max_steps: int | None,
    overrides: dict[str, Any],
    device: str,
    name: str,
) -> None:
    from training.knowledge_experiment import KnowledgeConfig, run_knowledge

    cfg = KnowledgeConfig(
        out=out,
        name="kbexp" if name == "csexp" else name,  # the Wikipedia experiment's default prefix is not ours
        budget=budget,
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
        seeds=seeds,
        latin_names=latin_names,
        finetune_lang=finetune_lang,
        max_steps=max_steps,
        train_overrides=overrides,
        device=device,
    )
    paths = run_knowledge(cfg)
    typer.echo(Path(paths["report"]).read_text())
    for key, path in paths.items():
        typer.echo(f"{key}: {path}")
    gain = json.loads(Path(paths["summary"]).read_text())["xling_cloze_gain"]
    variant, value = gain["variant"], gain["value"]
    typer.echo(f"xling_cloze_gain[{variant}]={'-' if value is None else f'{value:.4f}'}")
