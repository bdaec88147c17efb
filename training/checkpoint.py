"""Checkpoints: safetensors for tensors, JSON for the rest, committed all-or-nothing.

A run directory holds
    wikimix-run.json       the run marker, written at the first start: what makes a directory a wikimix
                           run (no other directory is written into, recovered or loaded), and the exact
                           DATASET@VERSION of --data / --significance the run is pinned to
    model.safetensors      weights (tied weights stored once)
    ema.safetensors        EMA weights, when the run keeps an EMA
    optimizer.safetensors  AdamW moments and step counts (param groups live in state.json)
    rng-rank<r>.safetensors  each rank's torch/CUDA RNG state; python and numpy states in its metadata
    state.json             step, tokens seen, data position, optimizer param groups
    config.json            variant name, model Config, TrainConfig
    tokenizer.json         the tokenizer
    metrics.jsonl          appended by the trainer (not part of a checkpoint)

Runs written before the marker existed (config.json + state.json, no marker) are still recognised.
Every file read here is checked for its shape: a corrupt or odd one is a one-line CheckpointError.

Saving writes every file into <out>/.next/, marks it COMPLETE, then moves the files into place.
`recover(out)` finishes an interrupted move (COMPLETE present) or drops a half-written stage, so a kill
at any moment leaves either the previous checkpoint or the new one, never a mix.

    variant, tokenizer, cfg = load_checkpoint("runs/mdlm")     # EMA weights when present
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from training.config import TrainConfig, from_json
from training.models import load_variant, make_config
from training.tokenizers import Tokenizer, load_tokenizer
from wikimix.errors import WikimixError

STAGE = ".next"
COMPLETE = "COMPLETE"
RUN_MARKER = "wikimix-run.json"
RUN_FORMAT = "wikimix-run"


class CheckpointError(WikimixError):
    """A run directory without a usable checkpoint."""


def check_run_dir(out: str | Path) -> dict[str, Any] | None:
    """The run marker of `out`: None for a fresh directory (absent or empty), else {format, data,
    significance}. A directory from before markers with a checkpoint in it gets one built from its
    config.json (its `data` may then lack a version). CheckpointError when `out` is a file or holds
    anything else: wikimix neither writes into such a directory nor cleans it up."""
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        raise CheckpointError(f"{out} is a file, not a wikimix run directory")
    if (out / RUN_MARKER).exists():
        return read_run_marker(out)
    if not any(out.iterdir()):
        return None
    if (out / "state.json").is_file() and (out / "config.json").is_file():
        try:
            train = read_config(out)["train"]
        except CheckpointError:
            train = None
        if train is not None and isinstance(train.get("data"), str):
            return run_marker(train["data"], train.get("significance") or "")
    raise CheckpointError(
        f"{out} holds files but is not a wikimix run directory (no {RUN_MARKER}): "
        "give a new or empty directory"
    )


def run_marker(data: str, significance: str) -> dict[str, Any]:
    return {"format": RUN_FORMAT, "version": 1, "data": data, "significance": significance}


def read_run_marker(out: str | Path) -> dict[str, Any]:
    path = Path(out) / RUN_MARKER
    try:
        marker = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"unreadable run marker {path}: {exc}") from None
    if not (
        isinstance(marker, dict)
        and marker.get("format") == RUN_FORMAT
        and isinstance(marker.get("data"), str)
        and isinstance(marker.get("significance"), str)
    ):
        raise CheckpointError(f"malformed run marker {path}: expected {{format, data, significance}}")
    return marker


def write_run_marker(out: Path, marker: dict[str, Any]) -> None:
    """Write the marker atomically (temp file + rename): a half-written one must not lock a run out."""
    tmp = out / f".{RUN_MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=2, sort_keys=True))
    os.replace(tmp, out / RUN_MARKER)


def recover(out: str | Path) -> None:
    """Finish or undo a checkpoint interrupted while it was being written."""
    stage = Path(out) / STAGE
    if not stage.is_dir():
        return
    if (stage / COMPLETE).exists():
        _move_into_place(Path(out), stage)
    else:
        shutil.rmtree(stage)


def _move_into_place(out: Path, stage: Path) -> None:
    names = {p.name for p in stage.iterdir() if p.name != COMPLETE}
    for name in sorted(names - {"state.json"}) + ["state.json"]:  # state.json last: the step it names
        if (stage / name).exists():
            os.replace(stage / name, out / name)
    for stale in out.glob("rng-rank*.safetensors"):  # from an earlier run with more ranks
        if stale.name not in names and not (stage / stale.name).exists():
            stale.unlink()
    shutil.rmtree(stage)


def begin(out: Path) -> Path:
    """A fresh, empty stage directory (rank 0 calls this before any rank writes into it)."""
    stage = out / STAGE
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


def write_rng(stage: Path, rank: int) -> None:
    """This rank's RNG states: torch (and CUDA) as tensors, python and numpy as JSON metadata."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": json.dumps([py[0], list(py[1]), py[2]]),
        "numpy": json.dumps([np_state[0], np_state[1].tolist(), *map(float, np_state[2:])]),
    }
    save_file(tensors, str(stage / f"rng-rank{rank}.safetensors"), metadata=meta)


def restore_rng(out: Path, rank: int) -> None:
    path = out / f"rng-rank{rank}.safetensors"
    if not path.exists():
        raise CheckpointError(
            f"{out}: no RNG state for rank {rank} (resumed with more ranks than it was saved with?)"
        )
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, state, gauss = json.loads(meta["python"])
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = json.loads(meta["numpy"])
    np.random.set_state((name, np.array(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))


def write_main(
    stage: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: dict[str, torch.Tensor] | None,
    state: dict[str, Any],
    config: dict[str, Any],
    tokenizer: Tokenizer,
) -> None:
    """Rank 0's part: weights, EMA, optimizer, tokenizer, config, state; then the COMPLETE mark."""
    save_model(model, str(stage / "model.safetensors"), metadata={"step": str(state["step"])})
    if ema is not None:
        save_file({k: v.contiguous() for k, v in ema.items()}, str(stage / "ema.safetensors"))
    opt = optimizer.state_dict()
    tensors = {
        f"{idx}.{key}": value
        for idx, s in opt["state"].items()
        for key, value in s.items()
        if torch.is_tensor(value)
    }
    scalars = {
        f"{idx}.{key}": value
        for idx, s in opt["state"].items()
        for key, value in s.items()
        if not torch.is_tensor(value)
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(stage / "optimizer.safetensors"))
    state = {**state, "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars}}
    tokenizer.save(stage / "tokenizer.json")
    (stage / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    (stage / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    for f in stage.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    (stage / COMPLETE).write_text("")


def commit(out: Path) -> None:
    _move_into_place(out, out / STAGE)


def read_state(out: str | Path) -> dict[str, Any] | None:
    """state.json of the run in `out`, or None when it holds no checkpoint."""
    path = Path(out) / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt {path}: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"malformed {path}: expected a JSON object, got {type(state).__name__}")
    for key in ("step", "tokens_seen"):
        value = state.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"malformed {path}: {key!r} is missing or not a count")
    return state


def read_config(out: str | Path) -> dict[str, Any]:
    """config.json of the run in `out`, checked for the shape checkpoint_config writes."""
    path = Path(out) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{out} holds no checkpoint (no config.json)")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt {path}: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"malformed {path}: expected a JSON object, got {type(config).__name__}")
    if not isinstance(config.get("variant"), str):
        raise CheckpointError(f"malformed {path}: 'variant' is missing or not a name")
    for key in ("model", "train"):
        if not isinstance(config.get(key), dict):
            raise CheckpointError(f"malformed {path}: {key!r} is missing or not an object")
    vocab = config.get("vocab_size")
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 1:
        raise CheckpointError(f"malformed {path}: 'vocab_size' is missing or not a positive integer")
    return config


def load_training_state(
    out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, ema: dict[str, torch.Tensor] | None, device
) -> dict[str, Any]:
    """Restore weights, optimizer and EMA in place from `out`; returns state.json."""
    state = read_state(out)
    if state is None:
        raise CheckpointError(f"{out} holds no checkpoint")
    try:
        load_model(model, str(out / "model.safetensors"), device=str(device))
        tensors = load_file(str(out / "optimizer.safetensors"), device=str(device))
        if ema is not None:
            saved = load_file(str(out / "ema.safetensors"), device=str(device))
            for k in ema:
                ema[k].copy_(saved[k])
    except (SafetensorError, OSError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{out}: unreadable checkpoint ({exc})") from None
    try:
        opt_state: dict[int, dict[str, Any]] = {}
        for key, value in {**tensors, **state["optimizer"]["scalars"]}.items():
            idx, name = key.split(".", 1)
            opt_state.setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict({"state": opt_state, "param_groups": state["optimizer"]["param_groups"]})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{out}: unreadable optimizer state in state.json ({exc!r})") from None
    return state


def checkpoint_config(
    variant_name: str, model_cfg: Any, train_cfg: TrainConfig, vocab_size: int
) -> dict[str, Any]:
    return {
        "variant": variant_name,
        "model": asdict(model_cfg),
        "vocab_size": vocab_size,
        "train": train_cfg.to_json(),
    }


def load_checkpoint(
    out: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> tuple[nn.Module, Tokenizer, TrainConfig]:
    """(variant in eval mode, tokenizer, TrainConfig) of the run in `out`; EMA weights when kept."""
    out = Path(out)
    if check_run_dir(out) is None:
        raise CheckpointError(f"{out} holds no checkpoint (no such directory, or empty)")
    recover(out)
    if not (out / "config.json").exists() or read_state(out) is None:
        raise CheckpointError(f"{out} holds no checkpoint (no config.json / state.json)")
    config = read_config(out)
    tokenizer = load_tokenizer(out / "tokenizer.json")
    try:
        train = from_json(config["train"])
        module = load_variant(config["variant"])
        variant = module.build(
            make_config(config["variant"], config["model"]), tokenizer.vocab_size, tokenizer.special
        )
    except WikimixError as exc:
        raise CheckpointError(f"{out / 'config.json'}: {exc}") from None
    except (TypeError, ValueError) as exc:  # a model setting of the wrong type, met deep in build()
        raise CheckpointError(f"{out / 'config.json'}: cannot build the model from it ({exc})") from None
    try:
        load_model(variant, str(out / "model.safetensors"), device=str(device))
        if use_ema and (out / "ema.safetensors").exists():
            ema = load_file(str(out / "ema.safetensors"))
            with torch.no_grad():
                for name, p in variant.named_parameters():
                    p.copy_(ema[name])
    except (SafetensorError, OSError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{out}: unreadable checkpoint ({exc})") from None
    return variant.to(device).eval(), tokenizer, train
