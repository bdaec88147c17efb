"""The variant registry: a name -> the module that defines it.

Each module defines `Config` (a dataclass of model hyper-parameters) and
`build(cfg: Config, vocab_size: int, special: SpecialIds) -> Variant`.

    module = load_variant("mdlm"); variant = module.build(module.Config(d_model=64), 260, special)
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

from wikimix.errors import ConfigError

VARIANTS: dict[str, str] = {
    "ar": "training.models.ar",
    "mdlm": "training.models.mdlm",
    "llada-byte": "training.models.llada_byte",
    "sdd": "training.models.sdd",
    "embed": "training.models.embed",
    "semantic-insert": "training.models.semantic_insert",
}


def load_variant(name: str) -> ModuleType:
    """The module of variant `name`, imported on first use; a one-line ConfigError otherwise."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r} (known: {', '.join(sorted(VARIANTS))})")
    try:
        module = importlib.import_module(VARIANTS[name])
    except ModuleNotFoundError as exc:
        if exc.name == VARIANTS[name]:
            raise ConfigError(
                f"variant {name!r} is not available yet ({VARIANTS[name]} does not exist)"
            ) from None
        raise
    if not hasattr(module, "Config") or not hasattr(module, "build"):
        raise ConfigError(f"variant module {VARIANTS[name]} lacks Config or build()")
    return module


def make_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The variant's Config with `overrides` applied; unknown keys are a one-line ConfigError."""
    module = load_variant(name)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = sorted(set(overrides or {}) - fields)
    if unknown:
        raise ConfigError(
            f"variant {name!r} has no model option(s) {', '.join(unknown)} (has: {', '.join(sorted(fields))})"
        )
    try:
        return module.Config(**(overrides or {}))
    except TypeError as exc:
        raise ConfigError(f"bad model config for {name!r}: {exc}") from None
