"""The knowledge experiment's summary (training/knowledge_experiment.py runs it): accuracy cells per
variant x arm x cell with 95% bootstrap intervals over entities (seeds pooled per entity) and chance, the
paired differences on held-out facts with their minimum detectable difference, the markdown report, the
plot, and the files written."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training import knowledge as cloze

if TYPE_CHECKING:
    from training.knowledge_experiment import KnowledgeConfig, Prepared

COMPARISONS = (("cs", "mono"), ("parallel", "mono"), ("cs-fixed", "mono"), ("cs", "cs-fixed"))
CELLS = ("heldout", "seen", "unseen", "seen-train-frame")
# Issue 18's power bar: the parallel arm (each fact spread over every language but its held-out one: the
# fewest renderings per language) must answer >= 0.8 of its seen facts asked with a training frame, or the
# models did not store the facts and a held-out comparison says nothing about transfer.
POWER_ARM = "parallel"
POWER_BAR = 0.8


def _cell_items(items: list[dict], hits: list[bool], cell: str, arm: str) -> tuple[list[dict], list[bool]]:
    base = arm.removesuffix("+ft")
    keep = {
        "heldout": lambda it: it["heldout"],
        "seen": lambda it: it["seen"][base],
        "unseen": lambda it: not it["seen"][base],
        "seen-train-frame": lambda it: it["seen"][base],
    }[cell]
    pairs = [(it, h) for it, h in zip(items, hits, strict=True) if keep(it)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def power(cfg: KnowledgeConfig, prepared: Prepared, results: dict[tuple[int, str, str], dict]) -> list[dict]:
    """Per variant and seed: did the parallel arm store the facts (seen facts, training frame, >= the bar)?
    Empty when the parallel arm was not run."""
    rows = []
    for variant in cfg.variants:
        for seed in cfg.seeds:
            r = results.get((seed, variant, POWER_ARM))
            if r is None:
                continue
            _, hits = _cell_items(prepared.train_frame_items, r["probe_hits"], "seen-train-frame", POWER_ARM)
            accuracy = sum(hits) / len(hits) if hits else None
            rows.append(
                {"variant": variant, "seed": seed, "arm": POWER_ARM, "accuracy": accuracy, "items": len(hits),
                 "bar": POWER_BAR, "stored": accuracy is not None and accuracy >= POWER_BAR}
            )  # fmt: skip
    return rows


def powered(power_rows: list[dict], variant: str) -> bool | None:
    """True when every seed of `variant` stored the facts, False when one did not, None when unchecked."""
    rows = [r for r in power_rows if r["variant"] == variant]
    return all(r["stored"] for r in rows) if rows else None


def summarize(
    cfg: KnowledgeConfig, prepared: Prepared, results: dict[tuple[int, str, str], dict]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Cells (variant x arm x cell: accuracy, interval, chance), paired differences on held-out facts (each
    marked `powered`: whether that variant passed the power check), and the power check's rows."""
    checked = power(cfg, prepared, results)
    cells, diffs = [], []
    grouped: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for variant in cfg.variants:
        arms = list(dict.fromkeys(arm for (_, v, arm) in results if v == variant))  # in training order
        for arm in arms:
            for cell in CELLS:
                if cell == "seen-train-frame" and arm.endswith("+ft"):
                    continue
                pooled: dict[str, list[float]] = {}
                chosen: list[dict] = []
                for seed in cfg.seeds:
                    r = results[(seed, variant, arm)]
                    items = prepared.train_frame_items if cell == "seen-train-frame" else prepared.items
                    hits = r["probe_hits"] if cell == "seen-train-frame" else r["hits"]
                    if arm.endswith("+ft"):
                        items = [it for it in items if it["lang"] == cfg.finetune_lang]
                    chosen, kept = _cell_items(items, hits, cell, arm)
                    for e, h in cloze.by_entity(chosen, kept).items():
                        pooled.setdefault(e, []).extend(h)
                grouped[(variant, arm, cell)] = pooled
                acc = cloze.bootstrap_accuracy(pooled)
                cells.append(
                    {"variant": variant, "arm": arm, "cell": cell, "chance": cloze.chance(chosen), **acc}
                )
        for a, b in COMPARISONS:
            if a in arms and b in arms:
                d = cloze.paired_difference(
                    grouped[(variant, a, "heldout")], grouped[(variant, b, "heldout")]
                )
                diffs.append(
                    {"variant": variant, "a": a, "b": b, "cell": "heldout",
                     "powered": powered(checked, variant), **d}
                )  # fmt: skip
    return cells, diffs, checked


def headline(diffs: list[dict]) -> tuple[str, float | None]:
    """xling_cloze_gain: cs minus mono accuracy on held-out facts, for mdlm when it ran (else ar)."""
    rows = {d["variant"]: d for d in diffs if (d["a"], d["b"]) == ("cs", "mono")}
    variant = "mdlm" if "mdlm" in rows else next(iter(rows), None)
    return (variant or "-"), (rows[variant]["mean"] if variant else None)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def power_lines(power_rows: list[dict], variants: tuple[str, ...]) -> list[str]:
    """The report's power section: per variant and seed, parallel's seen-fact accuracy with a training frame
    against the bar, and what that means for the comparison."""
    if not power_rows:
        return [f"Power: not checked (the `{POWER_ARM}` arm was not run).", ""]
    lines = [
        f"## Power: did the models store the facts? (`{POWER_ARM}`, seen facts, training frame, bar "
        f"{POWER_BAR})",
        "",
        "| variant | seed | accuracy | items | stored |",
        "|---|---|---|---|---|",
    ]
    for r in power_rows:
        lines.append(
            f"| {r['variant']} | {r['seed']} | {_fmt(r['accuracy'])} | {r['items']} | "
            f"{'yes' if r['stored'] else 'NO'} |"
        )
    lines.append("")
    for variant in variants:
        failed = [str(r["seed"]) for r in power_rows if r["variant"] == variant and not r["stored"]]
        if failed:
            lines.append(
                f"**{variant}: the models did not store the facts** (seed {', '.join(failed)} below "
                f"{POWER_BAR}): its held-out comparison is not reported, because a difference between arms "
                "that never stored the facts says nothing about transfer (the numbers stay in knowledge.json)."
            )
    return lines + [""] if lines[-1] else lines


def report_markdown(
    cfg: KnowledgeConfig, prepared: Prepared, cells: list[dict], diffs: list[dict], power_rows: list[dict]
) -> str:
    variant, gain = headline(diffs)
    stored = powered(power_rows, variant)
    caveat = " (not powered: the models did not store the facts)" if stored is False else ""
    lines = [
        f"# Knowledge experiment `{cfg.name}` (budget `{cfg.budget}`)",
        "",
        f"Variants {list(cfg.variants)}, arms {list(cfg.arms)}, seeds {list(cfg.seeds)}, "
        f"{'Latin names (shared-string control)' if cfg.latin_names else 'names in each script'}. "
        f"Data: {json.dumps(prepared.counts)}. Intervals: 95% bootstrap over entities (seeds pooled). "
        f"Headline: xling_cloze_gain ({variant}, cs - mono on held-out facts) = {_fmt(gain)}{caveat}.",
        "",
        *power_lines(power_rows, cfg.variants),
        "| variant | arm | cell | accuracy | 95% interval | chance | items | entities |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        ci = "-" if c["low"] is None else f"[{c['low']:.3f}, {c['high']:.3f}]"
        lines.append(
            f"| {c['variant']} | {c['arm']} | {c['cell']} | {_fmt(c['mean'])} | {ci} | {_fmt(c['chance'])} | "
            f"{c['n_items']} | {c['n_entities']} |"
        )
    compared = [d for d in diffs if d["powered"] is not False]
    if compared:
        lines += [
            "",
            "| variant | a - b (held-out facts) | difference | 95% interval | MDD (80% power) |",
            "|---|---|---|---|---|",
        ]
    for d in compared:
        ci = "-" if d["low"] is None else f"[{d['low']:.3f}, {d['high']:.3f}]"
        lines.append(
            f"| {d['variant']} | {d['a']} - {d['b']} | {_fmt(d['mean'])} | {ci} | {_fmt(d['mdd'])} |"
        )
    return "\n".join(lines) + "\n"


def plot(cells: list[dict], path: Path) -> None:
    """Accuracy by arm x cell, one panel per variant, with intervals and chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(c["variant"] for c in cells))
    fig, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = [c for c in cells if c["variant"] == variant and c["mean"] is not None]
        arms = list(dict.fromkeys(c["arm"] for c in rows))
        width = 0.8 / len(CELLS)
        for k, cell in enumerate(CELLS):
            xs, ys, errs = [], [], [[], []]
            for i, arm in enumerate(arms):
                c = next((c for c in rows if c["arm"] == arm and c["cell"] == cell), None)
                if c:
                    xs.append(i + k * width)
                    ys.append(c["mean"])
                    bounded = c["low"] is not None  # one entity: no interval to draw
                    errs[0].append(c["mean"] - c["low"] if bounded else 0.0)
                    errs[1].append(c["high"] - c["mean"] if bounded else 0.0)
            ax.bar(xs, ys, width, yerr=errs, label=cell, capsize=2)
        chances = [c["chance"] for c in rows if c["chance"]]
        if chances:
            ax.axhline(sum(chances) / len(chances), color="k", linestyle=":", label="chance")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(arms))], arms)
        ax.set_ylim(0, 1)
        ax.set_title(variant)
        ax.set_ylabel("cloze accuracy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(
    cfg: KnowledgeConfig,
    prepared: Prepared,
    cells: list[dict],
    diffs: list[dict],
    power_rows: list[dict],
    out: Path,
) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    variant, gain = headline(diffs)
    paths = {
        "report": out / "knowledge.md",
        "summary": out / "knowledge.json",
        "cells": out / "cells.parquet",
        "plot": out / "knowledge.png",
    }
    paths["report"].write_text(report_markdown(cfg, prepared, cells, diffs, power_rows))
    summary = {
        "config": asdict(cfg),
        "data": prepared.data,
        "counts": prepared.counts,
        "cells": cells,
        "differences": diffs,
        "power": power_rows,
        "xling_cloze_gain": {"variant": variant, "value": gain, "powered": powered(power_rows, variant)},
    }
    paths["summary"].write_text(json.dumps(summary, indent=2, default=str))
    pq.write_table(pa.Table.from_pylist(cells), paths["cells"])
    plot(cells, paths["plot"])
    return {k: str(v) for k, v in paths.items()}
