"""The code-switching experiment's summary: per-effect means, paired differences with t-intervals over
seeds, a verdict per comparison, and the markdown report (training/experiment.py runs the experiment)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from training.intervals import interval

if TYPE_CHECKING:
    from training.experiment import ExperimentConfig, Prepared


def verdict(diff: dict[str, Any], lower_is_better: bool, a: str, b: str) -> str:
    if diff["low"] is None:
        return "one seed: no interval"
    if diff["low"] <= 0 <= diff["high"]:
        return "no detectable difference"
    a_lower = diff["high"] < 0
    return f"{a if a_lower == lower_is_better else b} better"


EFFECTS = [  # (name, how to read it from a measurement, lower is better)
    ("held-out bits/byte (mean over languages)", lambda m: m["heldout_bpb_mean"], True),
    ("cross-lingual cloze accuracy", lambda m: m["cloze"]["accuracy"], False),
]
MEM_EFFECTS = [
    ("verbatim memorisation rate", lambda m: m["memorisation"]["exact"], True),
    ("memorisation token accuracy", lambda m: m["memorisation"]["token_accuracy"], True),
]


def summarize(per_seed: dict[int, dict[str, dict]], prepared: Prepared) -> list[dict[str, Any]]:
    """One row per (effect, comparison): each side's mean and interval, the paired difference's."""
    rows = []
    lang = prepared.finetune_lang
    comparisons = [("cs", "mono", EFFECTS + MEM_EFFECTS)]
    ft_effect = [(f"held-out bits/byte in {lang}", lambda m: m["heldout_bpb"].get(lang), True)]
    comparisons += [("cs+ft", "mono", EFFECTS + ft_effect), ("cs+ft", "mono+ft", EFFECTS + ft_effect)]
    langs = sorted(prepared.heldout)
    per_lang = [(f"held-out bits/byte in {x}", (lambda m, x=x: m["heldout_bpb"].get(x)), True) for x in langs]
    comparisons.append(("cs", "mono", per_lang))
    for a, b, effects in comparisons:
        for name, get, lower in effects:
            va = [get(per_seed[s][a]) for s in sorted(per_seed)]
            vb = [get(per_seed[s][b]) for s in sorted(per_seed)]
            diffs = [x - y for x, y in zip(va, vb, strict=True) if x is not None and y is not None]
            d = interval(diffs)
            rows.append(
                {
                    "effect": name,
                    "a": a,
                    "b": b,
                    "a_mean": interval(va)["mean"],
                    "b_mean": interval(vb)["mean"],
                    "diff_mean": d["mean"],
                    "diff_low": d["low"],
                    "diff_high": d["high"],
                    "seeds": d["n"],
                    "verdict": verdict(d, lower, a, b) if d["n"] else "not measured",
                }
            )
    return rows


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def report_markdown(rows: list[dict[str, Any]], cfg: ExperimentConfig, prepared: Prepared) -> str:
    chance = 1 / (1 + cfg.cloze_distractors)
    lines = [
        f"# Code-switching experiment `{cfg.name}`",
        "",
        f"Variant `{cfg.variant}`, budget `{cfg.budget}`"
        + (f", {cfg.max_steps} steps" if cfg.max_steps else "")
        + f", seeds {list(cfg.seeds)}; fine-tuning language `{prepared.finetune_lang}` "
        f"({cfg.finetune_steps} steps). Data: {json.dumps(prepared.counts)}. Cloze chance = {chance:.2f}. "
        "Intervals: 95% t over seeds of the paired difference (a - b).",
        "",
        "| Effect | a | b | a mean | b mean | a - b | 95% interval | seeds | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = "-" if r["diff_low"] is None else f"[{r['diff_low']:.4f}, {r['diff_high']:.4f}]"
        lines.append(
            f"| {r['effect']} | {r['a']} | {r['b']} | {_fmt(r['a_mean'])} | {_fmt(r['b_mean'])} | "
            f"{_fmt(r['diff_mean'])} | {ci} | {r['seeds']} | {r['verdict']} |"
        )
    return "\n".join(lines) + "\n"
