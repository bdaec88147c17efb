"""CLI verbs: `wikimix train VARIANT ...` and `wikimix generate --ckpt DIR --prompt TEXT`.

wikimix train mdlm --data NAME-docs@latest --out runs/mdlm --budget bench-cpu --max-steps 450
wikimix train ar --data synthetic:markov --out runs/ar --budget smoke --set lr=1e-3 --set model.d_model=64
torchrun --nproc-per-node 2 -m wikimix.cli train ar --data NAME-docs --out runs/ar2 --budget smoke
wikimix generate --ckpt runs/mdlm --prompt "Kyiv ist die Hauptstadt" --max-new-tokens 50 --steps 64
"""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer


def train(
    variant: Annotated[str, typer.Argument(help="ar | mdlm | llada-byte | sdd | embed | semantic-insert")],
    data: Annotated[
        str, typer.Option(help="DATASET[@VERSION] with a documents or sections table, or synthetic:markov")
    ],
    out: Annotated[str, typer.Option(help="run directory (re-run the same command to resume)")],
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps")] = None,
    budget: Annotated[str | None, typer.Option(help="preset: smoke | bench-cpu | bench-gpu")] = None,
    significance: Annotated[
        str | None, typer.Option(help="DATASET[@VERSION] with a significance table")
    ] = None,
    tokenizer: Annotated[str | None, typer.Option(help="bpe | byte | path to tokenizer.json")] = None,
    batch_size: Annotated[int | None, typer.Option(help="sequences per rank per micro-step")] = None,
    seq_len: Annotated[int | None, typer.Option(help="training window in tokens")] = None,
    lr: Annotated[float | None, typer.Option(help="peak learning rate")] = None,
    precision: Annotated[str | None, typer.Option(help="bf16 | fp32")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of weights, noise and data order")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="any TrainConfig field as key=value; model.X=V for the variant's Config"),
    ] = None,
):
    """Train (or resume) a variant; metrics go to OUT/metrics.jsonl, checkpoints to OUT/."""
    from training.config import make_config, parse_overrides
    from training.trainer import train as run_training

    cfg = make_config(
        variant,
        budget=budget,
        overrides=parse_overrides(set_ or []),
        data=data,
        out=out,
        max_steps=max_steps,
        significance=significance,
        tokenizer=tokenizer,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        precision=precision,
        device=device,
        seed=seed,
    )
    result = run_training(cfg)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}
    typer.echo(f"done: {cfg.out} " + " ".join(f"{k}={v}" for k, v in shown.items()))


def generate(
    ckpt: Annotated[str, typer.Option(help="run directory written by `wikimix train`")],
    prompt: Annotated[str, typer.Option(help="text to continue")],
    max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 50,
    sampler: Annotated[
        str | None, typer.Option(help="diffusion: ancestral | low_confidence | semi_ar | remdm")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="diffusion denoising steps")] = None,
    block_len: Annotated[int | None, typer.Option(help="semi-autoregressive block length")] = None,
    temperature: Annotated[float, typer.Option(help="0 = greedy")] = 1.0,
    top_p: Annotated[float, typer.Option(help="nucleus sampling mass")] = 1.0,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
):
    """Continue PROMPT with a trained checkpoint and print the completion."""
    import torch

    from training.checkpoint import load_checkpoint
    from wikimix.errors import ConfigError

    if max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if block_len is not None and block_len < 1:
        raise ConfigError(f"--block-len must be >= 1, got {block_len}")
    if not temperature >= 0 or temperature == float("inf"):
        raise ConfigError(f"--temperature must be finite and >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"--top-p must be in (0, 1], got {top_p}")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    variant, tok, _ = load_checkpoint(ckpt, device=device)
    ids = tok.encode(prompt)
    if not ids:
        raise ConfigError("empty prompt")
    max_len = getattr(getattr(variant, "cfg", None), "max_len", None)
    if max_len is not None and len(ids) + max_new_tokens > max_len:
        raise ConfigError(
            f"prompt ({len(ids)} tokens) + --max-new-tokens {max_new_tokens} exceed the model's "
            f"max_len {max_len}"
        )
    options = {
        "temperature": temperature,
        "top_p": top_p,
        "generator": torch.Generator(device).manual_seed(seed),
    }
    for key, value in (("method", sampler), ("steps", steps), ("block_len", block_len)):
        if value is not None:
            options[key] = value
    x = torch.tensor([ids], dtype=torch.long, device=device)
    out = variant.generate(x, max_new_tokens, **options)
    typer.echo(tok.decode(out[0, len(ids) :].tolist()))


def register(app: typer.Typer) -> None:
    """Add this module's verbs to the top-level app."""
    app.command("train")(train)
    app.command("generate")(generate)
