"""Training configuration: one typed dataclass, named budgets as presets, `key=value` overrides.

    cfg = make_config("mdlm", budget="bench-cpu", data="x-docs", out="runs/mdlm", max_steps=450)
    cfg = make_config("ar", budget="smoke", overrides=parse_overrides(["lr=1e-3", "model.d_model=64"]))

Precedence: TrainConfig defaults < budget preset < budget's per-entry model settings (the entry is the
variant, or `embed-<head>`: see ENTRIES) < explicit arguments < `key=value` overrides. Every bad value is a one-line ConfigError.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from wikimix.errors import ConfigError

COMPILE_ALIASES = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}


@dataclass
class TrainConfig:
    variant: str = "ar"
    data: str = ""  # DATASET[@VERSION] under the data root, or 'synthetic:markov'
    out: str = ""  # run directory: checkpoint files + metrics.jsonl
    significance: str = ""  # DATASET[@VERSION] holding a significance table ('' = none)
    table: str = ""  # 'documents' | 'sections' ('' = whichever the version has)
    tokenizer: str = "bpe"  # 'bpe' (trained on the train split) | 'byte' | path to a tokenizer.json
    vocab_size: int = 8192  # BPE vocabulary when the tokenizer is trained here
    tokenizer_train_chars: int = 20_000_000
    seq_len: int = 256
    batch_size: int = 16  # sequences per rank per micro-step
    grad_accum: int = 1
    max_steps: int = 1000
    # wall-clock budget (0 = none): after the first steps, the schedule's horizon becomes the steps that
    # fit in this many minutes (at most max_steps), fixed in the checkpoint so a resume keeps it
    max_minutes: float = 0.0
    stop_at: int = 0  # stop (with a checkpoint) after this step, schedule unchanged; 0 = run to max_steps
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 = off
    # 'auto': bf16 autocast where the device computes bf16 natively (CUDA, CPUs with AVX512-BF16/AMX),
    # else fp32 -- on an AVX2-only CPU bf16 autocast runs ~60x slower than fp32 | 'bf16' | 'fp32'
    precision: str = "auto"
    ema: float = 0.0  # EMA decay of the weights (0 = off); evaluation and generation use the EMA
    eval_every: int = 200  # steps (0 = only at the end)
    eval_examples: int = 64
    save_every: int = 200  # steps (0 = only at the end)
    log_every: int = 10
    seed: int = 0
    device: str = "auto"  # 'auto' | 'cpu' | 'cuda' | 'cuda:N'
    # torch.compile of the variant's backbone, in place (parameter names, so checkpoints, unchanged):
    # 'auto' compiles on CUDA, not on CPU, where compiling costs what it saves (trainer.compiles) | 'on' | 'off'
    compile: str = "auto"
    tf32: bool = True  # CUDA only: fp32 matmuls on TF32 tensor cores (CPU arithmetic is never changed)
    threads: int = 0  # torch CPU threads per rank (0 = torch's default)
    progress: bool = True
    val_frac: float = 0.05
    test_frac: float = 0.05
    prompt_min: int = 100
    prompt_max: int = 200
    cont_len: int = 50
    model: dict[str, Any] = field(default_factory=dict)  # the variant's Config overrides

    def __post_init__(self) -> None:
        # compile was a bool before 'auto': a saved true/false (or a CLI yes/no) still means on/off
        if isinstance(self.compile, bool):
            self.compile = "on" if self.compile else "off"
        self.compile = COMPILE_ALIASES.get(self.compile.lower(), self.compile)

    def validate(self) -> TrainConfig:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}")
        positive = (
            "seq_len",
            "batch_size",
            "grad_accum",
            "max_steps",
            "vocab_size",
            "log_every",
            "eval_examples",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "stop_at",
            "warmup_steps",
            "eval_every",
            "save_every",
            "threads",
            "grad_clip",
            "weight_decay",
            "max_minutes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError(f"betas must be in [0, 1), got {self.beta1}, {self.beta2}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}")
        if self.compile not in ("auto", "on", "off"):
            raise ConfigError(f"compile must be 'auto', 'on' or 'off', got {self.compile!r}")
        if self.table not in ("", "documents", "sections"):
            raise ConfigError(f"table must be 'documents' or 'sections', got {self.table!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not self.data:
            raise ConfigError("no data given: pass --data DATASET[@VERSION] (or synthetic:markov)")
        if not self.out:
            raise ConfigError("no output directory given: pass --out DIR")
        return self

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Budgets: shared settings, then per-variant model settings so every variant lands at about the same
# parameter count (+-10%) as `ar` under the same data, tokens, tokenizer and seed.
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "train": dict(
            tokenizer="byte",
            seq_len=32,
            batch_size=4,
            max_steps=20,
            warmup_steps=2,
            lr=1e-3,
            eval_every=10,
            eval_examples=4,
            save_every=10,
            log_every=1,
            prompt_min=8,
            prompt_max=16,
            cont_len=8,
            model=dict(d_model=32, n_layers=1, n_heads=2, max_len=256),
        ),
        "variants": {},
    },
    # Budgets are token budgets: every entry trains max_steps x batch_size x seq_len tokens (bench-cpu:
    # 1.84M), so a comparison's rows have seen the same tokens; wall time is recorded, never used to cut
    # (max_minutes stays available for one-off runs).
    "bench-cpu": {  # ~6M parameters, 450 steps x 16 x 256 tokens
        "train": dict(
            tokenizer="bpe",
            vocab_size=8192,
            seq_len=256,
            batch_size=16,
            max_steps=450,
            warmup_steps=40,
            lr=1e-3,
            eval_every=150,
            eval_examples=64,
            save_every=150,
            log_every=10,
            model=dict(d_model=256, n_layers=5, n_heads=4, max_len=512),
        ),
        # bytes: a 260-token embedding instead of 8192, so 2 more layers carry the same parameters; the
        # embed function heads lack plaid's d x V output layer (2.1M), so 2 more layers carry it
        "variants": {
            "llada-byte": dict(n_layers=7),
            "embed-hyper": dict(n_layers=7),
            "embed-fourier": dict(n_layers=7),
            "embed-window": dict(n_layers=7),
        },
    },
    "bench-gpu": {  # ~17M parameters, 10k steps
        "train": dict(
            tokenizer="bpe",
            vocab_size=8192,
            seq_len=256,
            batch_size=64,
            max_steps=10_000,
            warmup_steps=500,
            lr=6e-4,
            eval_every=1000,
            eval_examples=256,
            save_every=1000,
            log_every=50,
            model=dict(d_model=384, n_layers=8, n_heads=6, max_len=512),
        ),
        "variants": {
            "llada-byte": dict(n_layers=10),
            "embed-hyper": dict(n_layers=9),
            "embed-fourier": dict(n_layers=9),
            "embed-window": dict(n_layers=9),
        },
    },
}

# The comparison's rows: entry name -> (variant, model settings). A budget's "variants" sizes each entry
# (by entry name), so every row lands within 10% of ar's parameters.
ENTRIES: dict[str, tuple[str, dict[str, Any]]] = {
    "ar": ("ar", {}),
    "mdlm": ("mdlm", {}),
    "llada-byte": ("llada-byte", {}),
    "sdd": ("sdd", {}),
    "sdd-pooled": ("sdd", {"pooled": True}),  # ablation: sum_j p_j E[c_j] into an L-token transformer
    "embed-plaid": ("embed", {"head": "plaid"}),
    "embed-hyper": ("embed", {"head": "hyper"}),
    "embed-fourier": ("embed", {"head": "fourier"}),
    "embed-window": ("embed", {"head": "window"}),
    "semantic-insert": ("semantic-insert", {}),
}


def entry_name(variant: str, model: dict[str, Any]) -> str:
    """The entry a run is sized as: `variant`, or `variant-head` for a variant with denoiser heads."""
    from training.models import load_variant

    head = model.get("head", getattr(load_variant(variant).Config, "head", None))
    return f"{variant}-{head}" if head else variant


def _coerce(name: str, value: Any, type_hint: Any) -> Any:
    """`value` (often a CLI string) as the field's type; ConfigError when it does not parse."""
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(type_hint)
    try:
        if type_hint is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if type_hint is int:
            return int(value)
        if type_hint is float:
            return float(value)
        if type_hint is str or origin in (types.UnionType, typing.Union):
            return value
        return json.loads(value)
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(
            f"bad value for {name}: {value!r} is not a {getattr(type_hint, '__name__', type_hint)}"
        ) from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['lr=1e-3', 'model.d_model=64'] -> {'lr': '1e-3', 'model': {'d_model': 64}} (model values via JSON
    when they parse, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad override {item!r}: expected key=value")
        if key.startswith("model."):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            out.setdefault("model", {})[key[len("model.") :]] = parsed
        else:
            out[key] = value
    return out


def make_config(
    variant: str, budget: str | None = None, overrides: dict[str, Any] | None = None, **explicit: Any
) -> TrainConfig:
    """A validated TrainConfig for `variant` (see the module docstring for precedence)."""
    hints = typing.get_type_hints(TrainConfig)
    values: dict[str, Any] = {"variant": variant, "model": {}}
    if budget is not None:
        if budget not in BUDGETS:
            raise ConfigError(f"unknown budget {budget!r} (known: {', '.join(BUDGETS)})")
        preset = BUDGETS[budget]
        values.update({k: v for k, v in preset["train"].items() if k != "model"})
        given = {**(explicit.get("model") or {}), **(overrides or {}).get("model", {})}
        sizing = preset["variants"].get(entry_name(variant, given), {})
        values["model"] = {**preset["train"].get("model", {}), **sizing}
    for source in (explicit, overrides or {}):
        for key, value in source.items():
            if value is None:
                continue
            if key not in hints:
                raise ConfigError(f"unknown training option {key!r}")
            if key == "model":
                values["model"] = {**values["model"], **value}
            else:
                values[key] = _coerce(key, value, hints[key])
    return TrainConfig(**values).validate()


def from_json(data: dict[str, Any]) -> TrainConfig:
    """A validated TrainConfig from its saved JSON form (config.json's 'train'); a value of the wrong type
    is a one-line ConfigError naming the field. Keys this version does not know are ignored."""
    hints = typing.get_type_hints(TrainConfig)
    values = {}
    for key, value in data.items():
        if key not in hints:
            continue
        if key == "compile" and isinstance(value, bool):  # saved before compile=auto
            value = "on" if value else "off"
        if not _is_json_of(value, hints[key]):
            name = getattr(typing.get_origin(hints[key]) or hints[key], "__name__", hints[key])
            raise ConfigError(f"{key} must be of type {name}, got {value!r}")
        values[key] = value
    return TrainConfig(**values).validate()


def _is_json_of(value: Any, type_hint: Any) -> bool:
    """Whether a JSON value has a TrainConfig field's type (an int is a float; a bool is neither)."""
    if type_hint is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if type_hint is int:
        return isinstance(value, int)
    if type_hint is float:
        return isinstance(value, int | float)
    if type_hint is str:
        return isinstance(value, str)
    return isinstance(value, typing.get_origin(type_hint) or type_hint)


def make_entry_config(
    entry: str, budget: str | None = None, overrides: dict[str, Any] | None = None, **explicit: Any
) -> TrainConfig:
    """make_config for a comparison entry (ENTRIES: `embed-hyper` is embed with head=hyper) or a plain
    variant name; the entry's model settings sit under `overrides`' model settings."""
    variant, model = ENTRIES.get(entry, (entry, {}))
    overrides = overrides or {}
    merged = {**overrides, "model": {**model, **overrides.get("model", {})}}
    return make_config(variant, budget=budget, overrides=merged, **explicit)
