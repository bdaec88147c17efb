"""A run directory's lifecycle: what may change on resume, the data versions pinned at the first start, and
undoing a first start that failed on bad input. The trainer calls these; the marker file itself is
training/checkpoint.py's."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
from pathlib import Path

from storage.store import StorageError
from training import checkpoint
from training.config import TrainConfig
from training.data import SYNTHETIC_MARKOV, parse_data_spec
from wikimix.errors import ConfigError

# Settings that may change between a run and its resumption without changing what it computes.
RESUMABLE_CHANGES = {
    "stop_at",
    "max_steps",
    "max_minutes",
    "eval_every",
    "save_every",
    "log_every",
    "progress",
    "eval_examples",
    "device",
    "threads",
    "compile",
    "tf32",
    "out",
}
# Data options checked against the run's pins (see pin) rather than compared as written.
PINNED_OPTIONS = ("data", "significance")


def check_resumable(out: Path, cfg: TrainConfig) -> None:
    saved = checkpoint.read_config(out)
    if saved["variant"] != cfg.variant:
        raise ConfigError(f"{out} holds a {saved['variant']!r} run, not {cfg.variant!r}: use a fresh --out")
    old, new = saved["train"], cfg.to_json()
    skip = RESUMABLE_CHANGES | set(PINNED_OPTIONS)
    changed = sorted(k for k in new if k not in skip and old.get(k) != new[k])
    if changed:
        raise ConfigError(
            f"{out} holds a run with different settings ({', '.join(changed)}): use a fresh --out"
        )


def resolve_spec(spec: str) -> str:
    """'' and synthetic:markov as they are; DATASET[@VERSION|@latest] as DATASET@<committed version>."""
    return spec if spec in ("", SYNTHETIC_MARKOV) else str(parse_data_spec(spec))


def pin(option: str, spec: str, pinned: str | None, out: Path) -> str:
    """What --`option` (data | significance) reads: `spec` resolved at the first start (pinned None);
    on a resume the run's pin, which an unpinned `spec` keeps (warning when latest moved) and one naming
    another version or dataset contradicts (ConfigError naming both)."""
    if pinned is None:
        return resolve_spec(spec)
    if pinned and pinned != SYNTHETIC_MARKOV and pinned.partition("@")[2] in ("", "latest"):
        # a run from before pinning: pin it now to what its own spec resolves to
        pinned = resolve_spec(pinned)
        print(f"warning: {out} predates data pinning; --{option} now pinned to {pinned}", file=sys.stderr)
    if spec == pinned:
        return pinned
    dataset, _, version = spec.partition("@")
    pinned_dataset = pinned.partition("@")[0]
    if not spec or not pinned or SYNTHETIC_MARKOV in (spec, pinned) or dataset != pinned_dataset:
        raise ConfigError(
            f"{out} holds a run on --{option} {pinned or '(none)'}, not {spec or '(none)'}: use a fresh --out"
        )
    if version and version != "latest":
        raise ConfigError(
            f"{out} was started on --{option} {pinned}, not {spec}: resume with {pinned} "
            f"(or {pinned_dataset} unversioned), or use a fresh --out"
        )
    try:
        latest = resolve_spec(spec)
    except StorageError:
        latest = pinned  # the pinned version is opened (or refused) by the data reader itself
    if latest != pinned:
        print(
            f"warning: {out} resumes on its pinned --{option} {pinned}, not the newer {latest}",
            file=sys.stderr,
        )
    return pinned


def write_pins(cfg: TrainConfig, out: Path, marker: dict | None) -> None:
    """Rank 0: resolve --data and --significance against the run's pins and write the marker at the first
    start (or to a run from before the marker). Every rank then reads them back with `pinned_config`."""
    pins = {k: pin(k, getattr(cfg, k), marker[k] if marker else None, out) for k in PINNED_OPTIONS}
    updated = checkpoint.run_marker(**pins)
    if marker != updated or not (out / checkpoint.RUN_MARKER).exists():
        checkpoint.write_run_marker(out, updated)


def pinned_config(cfg: TrainConfig, out: Path) -> TrainConfig:
    """cfg with --data and --significance replaced by the pins in the run's marker."""
    marker = checkpoint.read_run_marker(out)
    return dataclasses.replace(cfg, **{k: marker[k] for k in PINNED_OPTIONS})


def remove_unstarted_run(out: Path, keep_dir: bool) -> None:
    """Undo what a first start that failed before its first checkpoint made: `out` was missing or empty
    before this run, so everything in it is this run's own (an empty directory the user made stays)."""
    if not out.is_dir():
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    if not keep_dir:
        with contextlib.suppress(OSError):
            out.rmdir()
