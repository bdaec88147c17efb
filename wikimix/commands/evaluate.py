"""CLI verbs: `wikimix evaluate` (one comparison of checkpoints) and `wikimix experiment` (the
code-switching hypothesis).

wikimix evaluate --ckpt runs/ar --ckpt runs/mdlm --data NAME-docs --out reports/bench-cpu
wikimix evaluate --ckpt runs/ar --data NAME-docs --out reports/quick --n-generate 8 --temperatures 0.5,1 --no-lid
wikimix experiment --cs NAME-docs --out runs/cs-exp --variant mdlm --budget bench-cpu --seeds 0,1,2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _int_list(text: str, what: str) -> tuple[int, ...]:
    from wikimix.errors import ConfigError

    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{what} is empty")
    return values


def _float_list(text: str, what: str) -> tuple[float, ...]:
    from wikimix.errors import ConfigError

    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values or min(values) < 0:
        raise ConfigError(f"{what} must hold numbers >= 0, got {text!r}")
    return values


def fasttext_lid(texts: list[str]) -> list[str]:
    """The pipeline's fastText language identifier as the evaluator's LID callable."""
    from pipeline.lid import default_identifier

    return [label for label, _ in default_identifier().predict(texts)]


def evaluate(
    ckpt: Annotated[list[str], typer.Option(help="run directory written by `wikimix train` (repeatable)")],
    data: Annotated[str, typer.Option(help="DATASET or DATASET@VERSION whose fixed test split is scored")],
    out: Annotated[str, typer.Option(help="directory for the table, plots and completions")],
    significance: Annotated[
        str | None, typer.Option(help="DATASET or DATASET@VERSION with a significance table")
    ] = None,
    judge: Annotated[
        str | None, typer.Option(help="independent ar run directory judging generations (never a row)")
    ] = None,
    prompt_min: Annotated[int, typer.Option(help="shortest prompt in reference-BPE tokens")] = 100,
    prompt_max: Annotated[int, typer.Option(help="longest prompt in reference-BPE tokens")] = 200,
    cont_len: Annotated[int, typer.Option(help="continuation length in reference-BPE tokens")] = 50,
    max_examples: Annotated[int, typer.Option(help="test pairs scored for likelihood")] = 256,
    n_generate: Annotated[int, typer.Option(help="test pairs completed per decoding")] = 64,
    t_samples: Annotated[int, typer.Option(help="noise draws per pair for diffusion bounds")] = 64,
    temperatures: Annotated[str, typer.Option(help="diffusion rows' frontier temperatures")] = "0.5,0.8,1",
    temperature: Annotated[float, typer.Option(help="the matched temperature every row also gets")] = 1.0,
    top_p: Annotated[float, typer.Option(help="nucleus sampling mass")] = 1.0,
    test_frac: Annotated[float, typer.Option(help="test split fraction (<= the runs' own)")] = 0.05,
    lid: Annotated[bool, typer.Option(help="language mix of completion vs prompt (fastText LID)")] = True,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    seed: Annotated[int, typer.Option(help="seed of likelihood noise and sampling")] = 0,
):
    """Score checkpoints on the fixed test split: likelihood, completions, cost; write table and plots."""
    from training.evaluate import EvalConfig
    from training.evaluate import evaluate as run_evaluation

    cfg = EvalConfig(
        prompt_min=prompt_min,
        prompt_max=prompt_max,
        cont_len=cont_len,
        max_examples=max_examples,
        n_generate=n_generate,
        t_samples=t_samples,
        temperatures=_float_list(temperatures, "--temperatures"),
        temperature=temperature,
        top_p=top_p,
        test_frac=test_frac,
        device=device,
        seed=seed,
    )
    paths = run_evaluation(
        ckpt, data, out, cfg, lid=fasttext_lid if lid else None, significance=significance, judge=judge
    )
    typer.echo(Path(paths["comparison_md"]).read_text())
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def experiment(
    cs: Annotated[str, typer.Option(help="DATASET or DATASET@VERSION with code-switched documents")],
    out: Annotated[str, typer.Option(help="directory for runs and the report (rerun to resume)")],
    mono: Annotated[
        str,
        typer.Option(
            help="DATASET or DATASET@VERSION with the monolingual documents ('' = the --cs version)"
        ),
    ] = "",
    name: Annotated[str, typer.Option(help="prefix of the data versions the experiment writes")] = "csexp",
    variant: Annotated[str, typer.Option(help="the model trained in every arm")] = "mdlm",
    budget: Annotated[str, typer.Option(help="smoke | bench-cpu | bench-gpu")] = "bench-cpu",
    max_steps: Annotated[
        int | None, typer.Option(help="optimizer steps per arm (default: the budget's)")
    ] = None,
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
    finetune_lang: Annotated[str, typer.Option(help="fine-tuning language ('' = the most text)")] = "",
    finetune_steps: Annotated[int, typer.Option(help="fine-tuning steps")] = 100,
    cloze_items: Annotated[int, typer.Option(help="cross-lingual cloze items")] = 200,
    heldout_frac: Annotated[float, typer.Option(help="share of concepts held out of both arms")] = 0.1,
    device: Annotated[str, typer.Option(help="device for the measurements")] = "cpu",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="TrainConfig field as key=value; model.X=V for the variant's Config"),
    ] = None,
):
    """Train the same model on code-switched vs monolingual text; compare held-out perplexity per language,
    a cross-lingual cloze and memorisation over seeds; then fine-tune the code-switched model on one language."""
    from training.config import parse_overrides
    from training.experiment import ExperimentConfig, run_experiment

    cfg = ExperimentConfig(
        cs_data=cs,
        out=out,
        mono_data=mono,
        name=name,
        variant=variant,
        budget=budget,
        max_steps=max_steps,
        seeds=_int_list(seeds, "--seeds"),
        train_overrides=parse_overrides(set_ or []),
        heldout_frac=heldout_frac,
        finetune_lang=finetune_lang,
        finetune_steps=finetune_steps,
        cloze_items=cloze_items,
        device=device,
    )
    paths = run_experiment(cfg)
    typer.echo(Path(paths["report"]).read_text())
    for key, path in paths.items():
        typer.echo(f"{key}: {path}")


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
    app.command("evaluate")(evaluate)
    app.command("experiment")(experiment)
