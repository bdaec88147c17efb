"""The evaluation's outputs: the markdown table, Parquet / JSON rows, and the two figures.

- `plot_training`: validation bits per byte against training tokens and against estimated training FLOPs
  (6 x parameters x tokens, the dense-transformer rule; a diffusion step costs the same forward and
  backward), one line per entry. Validation NLL is logged per token; bits per byte = NLL / ln 2 / (bytes
  per token of that run's tokenizer on the validation split), measured, not assumed.
- `plot_frontier`: generative perplexity against unigram entropy over sampling temperature, per row
  (the MDLM-family way of showing quality and diversity together), the reference text as a point.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

COLUMNS = [  # (key, markdown header, format)
    ("model", "Model", "{}"),
    ("kind", "Kind", "{}"),
    ("decoding", "Decoding", "{}"),
    ("params", "Params", "{:,}"),
    ("tokens_seen", "Tokens", "{:,}"),
    ("train_seconds", "Train time (s)", "{:.0f}"),
    ("likelihood", "Likelihood", "{}"),
    ("bits_per_byte", "Bits/byte", "{:.3f}"),
    ("bits_per_byte_ci95", "95% CI", "{}"),
    ("bound_se", "Bound SE", "{:.3f}"),
    ("accuracy", "Byte acc.", "{:.3f}"),
    ("gen_ppl", "Gen PPL", "{:.1f}"),
    ("gen_ppl_ci95", "95% CI", "{}"),
    ("ngram_judge_bpb", "n-gram judge b/B", "{:.3f}"),
    ("mauve", "MAUVE", "{:.3f}"),
    ("mauve_ci95", "95% CI", "{}"),
    ("entropy", "Char entropy", "{:.2f}"),
    ("entropy_ci95", "95% CI", "{}"),
    ("distinct", "Distinct-2", "{:.3f}"),
    ("repetition", "Rep-4", "{:.3f}"),
    ("invalid_utf8", "Invalid UTF-8", "{:.3f}"),
    ("lang_mix", "Lang mix", "{:.3f}"),
    ("gen_seconds", "Gen time (s)", "{:.3f}"),
]


def _cell(key: str, value: Any, fmt: str, row: dict[str, Any]) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f"{v:.3g}" for v in value) + "]"
    if isinstance(value, float) and abs(value) >= 1e6:  # an untrained bound can be astronomical
        return f"{value:.3g}"
    cell = fmt.format(value)
    if key == "bits_per_byte" and row.get("likelihood") == "bound":
        cell = "<= " + cell
    return cell


def markdown_table(rows: list[dict[str, Any]], columns=COLUMNS) -> str:
    """A markdown table; a bound is shown as '<= x', missing values as '-'."""
    present = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    lines = ["| " + " | ".join(h for _, h, _ in present) + " |", "|" + "---|" * len(present)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(k, r.get(k), f, r) for k, _, f in present) + " |")
    return "\n".join(lines) + "\n"


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = list(dict.fromkeys(k for r in rows for k in r))
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(curves: list[dict[str, Any]], path: Path) -> None:
    """curves: {name, params, bytes_per_token, records (metrics.jsonl)} per entry."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for c in curves:
        records = c["records"]
        tokens_at = {r["step"]: r["tokens"] for r in records if "loss" in r and "tokens" in r}
        val = [
            (tokens_at[r["step"]], r["val_nll"]) for r in records if "val_nll" in r and r["step"] in tokens_at
        ]
        if not val or not c["bytes_per_token"]:
            continue
        tokens = [t for t, _ in val]
        bpb = [nll / math.log(2) / c["bytes_per_token"] for _, nll in val]
        axes[0].plot(tokens, bpb, marker="o", label=c["name"])
        axes[1].plot([6 * c["params"] * t for t in tokens], bpb, marker="o", label=c["name"])
    for ax, xlabel in zip(axes, ("training tokens", "estimated training FLOPs (6 N D)"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation bits / byte (bound for diffusion)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.set_xscale("log")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_frontier(points: list[dict[str, Any]], path: Path, reference: dict[str, Any] | None) -> None:
    """Gen PPL against character entropy, one line per row over temperature (labels: temperature)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name in dict.fromkeys(p["model"] for p in points):
        mine = [p for p in points if p["model"] == name and p.get("gen_ppl") is not None]
        if not mine:
            continue
        ax.plot([p["entropy"] for p in mine], [p["gen_ppl"] for p in mine], marker="o", label=name)
        for p in mine:
            ax.annotate(f"T={p['temperature']:g}", (p["entropy"], p["gen_ppl"]), fontsize=7)
    if reference and reference.get("gen_ppl") is not None:
        ax.plot([reference["entropy"]], [reference["gen_ppl"]], "k*", markersize=12, label="reference text")
    ax.set_yscale("log")
    ax.set_xlabel("character unigram entropy of completions (bits)")
    ax.set_ylabel("generative perplexity (independent judge)")
    ax.set_title("quality-diversity frontier over temperature")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
