"""What every experiment protocol here shares: a grid of runs (seed x variant x arm), each a resumable run
directory, trained with one shared tokenizer and one way of making its config; fine-tuned arms continue
their base arm's weights; each run's measurements are cached with the checkpoint step they were taken at.

A protocol (training/experiment.py: the Wikipedia experiment; training/knowledge_experiment.py: the
controlled knowledge one) prepares its data versions, builds a `Grid`, and passes its own measurement:

    grid = Grid(out, seeds, variants, arms=("cs", "mono"), data={"cs": ..., "mono": ..., "ft": ...}, ...)
    results = grid.run(lambda run_dir, arm: measured(run_dir, settings, lambda: measure(run_dir, arm)))

Arm names: a base arm trains from scratch on `data[arm]`; `<arm>+ft` (only with `finetune_steps`) continues
`<arm>`'s model on `data["ft"]` for `finetune_steps` steps. Run directories: `seed<k>/<variant>/<arm>`
(`seed<k>/<arm>` with `variant_dirs=False`), '+' written as '-'. Re-running finds finished runs finished.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training import checkpoint
from training.checkpoint import load_checkpoint
from training.config import TrainConfig, make_config
from training.models import load_variant
from training.models import make_config as make_model_config
from training.tokenizers import BPETokenizer
from training.trainer import make_optimizer, train
from wikimix.errors import ConfigError

FT = "+ft"


def run_config(
    variant: str,
    budget: str,
    overrides: dict[str, Any],
    data: str,
    out: Path | str,
    seed: int,
    tokenizer: str,
    max_steps: int | None,
) -> TrainConfig:
    """One run's training config. No document is held back as a test split: each protocol holds out its
    own test set (concepts, triples, frames) from every arm's data."""
    return make_config(
        variant,
        budget=budget,
        overrides=overrides,
        data=data,
        out=str(out),
        seed=seed,
        tokenizer=tokenizer,
        max_steps=max_steps,
        test_frac=0.0,
        progress=False,
    )


def shared_tokenizer(out: Path, base: TrainConfig, texts: Callable[[], list[str]]) -> str:
    """One tokenizer for every run: the variant's own when it forces one (e.g. llada-byte), else the budget's;
    a BPE is trained once on `texts()` and kept as out/tokenizer.json (a rerun reuses it)."""
    forced = getattr(load_variant(base.variant), "TOKENIZER", None)
    if forced or base.tokenizer != "bpe":
        return forced or base.tokenizer
    path = out / "tokenizer.json"
    if not path.exists():
        BPETokenizer.train(texts(), base.vocab_size).save(path)
    return str(path)


def finetune(base_dir: Path, tcfg: TrainConfig) -> None:
    """Continue the model in `base_dir` on new data: a step-0 checkpoint with its weights (fresh optimizer)
    is written into tcfg.out, then the one trainer runs from there (and resumes like any run)."""
    out = Path(tcfg.out)
    if not (out / "state.json").exists():
        variant, tok, base = load_checkpoint(base_dir)
        if base.model != tcfg.model or base.variant != tcfg.variant:
            raise ConfigError(f"fine-tuning config differs in model from {base_dir}")
        model_cfg = make_model_config(tcfg.variant, tcfg.model)
        torch.manual_seed(tcfg.seed)
        variant.train()
        optimizer = make_optimizer(variant, tcfg)
        ema = {n: p.detach().clone().float() for n, p in variant.named_parameters()} if tcfg.ema else None
        out.mkdir(parents=True, exist_ok=True)
        stage = checkpoint.begin(out)
        checkpoint.write_rng(stage, 0)
        state = {"step": 0, "tokens_seen": 0, "batches_consumed": 0, "world_size": 1}
        config = checkpoint.checkpoint_config(tcfg.variant, model_cfg, tcfg, tok.vocab_size)
        checkpoint.write_main(stage, variant, optimizer, ema, state, config, tok)
        checkpoint.commit(out)
    train(tcfg)


def measured(run_dir: Path, settings: Any, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`compute()`'s measurements of one run, cached in run_dir/measurements.json under a key of the
    checkpoint step and the (JSON) settings they depend on: a rerun reuses them, a retrained or
    differently measured run is measured again."""
    digest = hashlib.sha256(json.dumps(settings).encode()).hexdigest()
    key = json.dumps([checkpoint.read_state(run_dir)["step"], digest])
    cache = run_dir / "measurements.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached
    result = {"key": key, **compute()}
    cache.write_text(json.dumps(result))
    return result


@dataclass
class Grid:
    """Every (seed, variant, arm) run of one protocol (see the module docstring)."""

    out: Path
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    arms: tuple[str, ...]  # the base arms, trained from scratch
    data: dict[str, str]  # base arm -> DATASET@VERSION; "ft" -> the fine-tuning data
    tokenizer: str
    budget: str
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (model: a dict)
    max_steps: int | None = None  # None = the budget's
    finetune_steps: int = 0  # 0 = no fine-tuned arms
    variant_dirs: bool = True

    def run_dirs(self, seed: int, variant: str) -> dict[str, Path]:
        """arm -> run directory, base arms first (a fine-tuned arm needs its base arm's model)."""
        base = self.out / f"seed{seed}" / (variant if self.variant_dirs else "")
        names = list(self.arms) + ([arm + FT for arm in self.arms] if self.finetune_steps else [])
        return {arm: base / arm.replace("+", "-") for arm in names}

    def config(self, seed: int, variant: str, arm: str) -> TrainConfig:
        dirs = self.run_dirs(seed, variant)
        if not arm.endswith(FT):
            return run_config(
                variant, self.budget, self.overrides, self.data[arm], dirs[arm], seed, self.tokenizer,
                self.max_steps,
            )  # fmt: skip
        # fine-tuning is bounded by its steps, not by the budget's clock
        steps = self.finetune_steps
        extra = {"max_steps": steps, "warmup_steps": max(1, steps // 10), "max_minutes": 0.0}
        overrides = {**self.overrides, **extra}
        return run_config(
            variant, self.budget, overrides, self.data["ft"], dirs[arm], seed, self.tokenizer, steps
        )

    def train(self, seed: int, variant: str, arm: str) -> Path:
        """Train (or resume; a finished run returns at once) one run; returns its directory."""
        tcfg = self.config(seed, variant, arm)
        if arm.endswith(FT):
            finetune(self.run_dirs(seed, variant)[arm.removesuffix(FT)], tcfg)
        else:
            train(tcfg)
        return Path(tcfg.out)

    def run(self, measure: Callable[[Path, str], dict[str, Any]]) -> dict[tuple[int, str, str], dict]:
        """Train and measure every run in order; {(seed, variant, arm): measure(run_dir, arm)}."""
        results = {}
        for seed in self.seeds:
            for variant in self.variants:
                for arm in self.run_dirs(seed, variant):
                    results[(seed, variant, arm)] = measure(self.train(seed, variant, arm), arm)
        return results
