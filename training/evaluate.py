"""The evaluator: every checkpoint scored on the same fixed test split; one comparison table and plots.

    wikimix evaluate --ckpt runs/ar --ckpt runs/mdlm --data NAME-docs --out reports/bench-cpu
    wikimix evaluate --ckpt runs/sdd --ckpt 'runs/sdd::sampler=original,steps=16' ...   # options per row
    paths = evaluate(["runs/ar", "runs/mdlm"], "NAME-docs@latest", "reports/bench-cpu", lid=my_lid)

Per checkpoint, on the test split of `data` (training/data.py: fixed by a hash of the document id, never
trained on), with (prompt of 100-200 tokens, 50-token continuation) pairs in the checkpoint's own tokens:
- likelihood: NLL per continuation token and its perplexity; exact for `ar`, the ELBO bound for diffusion
  variants, a proxy where a variant says so (column `Likelihood`); bits per byte of the continuation, the
  one figure comparable across tokenizers (byte-level vs BPE);
- completions of the first `n_generate` pairs at every sampler step count (the steps-quality frontier; `ar`
  has one point: 50 tokens take 50 forward passes on its KV cache), batch 1:
  token accuracy against the reference continuation; generative perplexity under the judge (the given
  `ar` checkpoint with the lowest bits per byte); unigram entropy, distinct-2 and repeated-4-gram rate
  counted in the judge's tokens (so rows with different tokenizers count the same units; the model's own
  tokens when no judge); latency per completion and tokens/s; and, when a LID callable is given, the
  language-mix distance of completion vs prompt (total variation between the languages of their
  sentences; 0 = the completion keeps the prompt's mix).
- a `reference` row scores the true continuations the same way: what real text looks like to the judge.

Writes, under `out`: comparison.md / comparison.parquet (one row per checkpoint at its default step count,
plus `reference`), frontier.md / frontier.parquet (one row per checkpoint and step count),
completions.jsonl (every completion, for reading), evaluation.json (settings, rows, test document ids),
loss_curves.png (training loss and validation NLL against tokens seen and against wall time) and
frontier.png (quality against latency). Returns {name: path} of what it wrote.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from storage.store import VersionRef
from training import metrics
from training.checkpoint import load_checkpoint
from training.data import DataOptions, MarkovData, ShardData, collate_pairs, open_data, parse_data_spec
from training.tokenizers import ByteTokenizer, Tokenizer
from wikimix.errors import ConfigError, WikimixError

Lid = Callable[[list[str]], list[str]]  # texts -> one language label per text


@dataclass
class EvalConfig:
    prompt_min: int = 100
    prompt_max: int = 200
    cont_len: int = 50
    val_frac: float = 0.05
    test_frac: float = 0.05  # <= every checkpoint's own test_frac (the split is by hash): checked
    max_examples: int = 256  # test pairs scored for likelihood
    n_generate: int = 32  # test pairs completed at each step count
    steps: tuple[int, ...] = (8, 16, 32, 64)  # diffusion sampler steps on the frontier
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 16
    seed: int = 0
    device: str = "cpu"
    table: str | None = None  # 'documents' | 'sections' (None: whichever the version has)
    distinct_n: int = 2
    rep_n: int = 4

    def __post_init__(self) -> None:
        if self.n_generate < 1 or self.max_examples < 1 or self.batch_size < 1:
            raise ConfigError("n_generate, max_examples and batch_size must be >= 1")
        if not self.steps or min(self.steps) < 1:
            raise ConfigError(f"sampler steps must be >= 1, got {self.steps}")
        self.steps = tuple(sorted(set(int(s) for s in self.steps)))


@dataclass
class Model:
    """A loaded checkpoint and what we know about how it was trained."""

    name: str
    path: Path
    variant: nn.Module
    tok: Tokenizer
    train: Any  # TrainConfig
    likelihood: str  # 'exact' | 'bound' | 'proxy'
    params: int
    tokens_seen: int
    train_seconds: float | None
    pairs: list[tuple[str, list[int], int]] = field(default_factory=list)  # (doc_id, ids, prompt_len)
    options: dict[str, Any] = field(default_factory=dict)  # generate() options from the spec ('steps' aside)
    steps: tuple[int, ...] = ()  # the spec's sampler steps; () = EvalConfig.steps and the variant's default
    sizes: dict[str, int] = field(default_factory=dict)  # spec's max_examples / n_generate


# ---- loading ---------------------------------------------------------------------------------------------


def likelihood_kind(variant: nn.Module) -> str:
    """'exact' for the autoregressive baseline, 'bound' for ELBOs, 'proxy' for anything else."""
    kind = getattr(variant, "nll_kind", None)
    if kind:
        return str(kind)
    if getattr(variant, "nll_is_bound", False):
        return "bound"
    return "exact" if getattr(variant, "name", "") == "ar" else "proxy"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl records (an absent file is no records)."""
    file = path / "metrics.jsonl"
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def train_seconds(records: list[dict[str, Any]]) -> float | None:
    """Wall time of training, from the last logged cumulative throughput (exact for an unresumed run)."""
    logged = [r for r in records if r.get("tok_per_s")]
    if not logged:
        return None
    return logged[-1]["tokens"] / logged[-1]["tok_per_s"]


PER_MODEL_SIZES = ("max_examples", "n_generate")  # EvalConfig sizes a spec may lower for one slow model


def parse_spec(spec: str | Path) -> tuple[Path, dict[str, Any]]:
    """`DIR` or `DIR::key=value,key=value`: the run directory and options, values parsed as JSON where they
    can: `steps` (the sampler steps to try), `max_examples` / `n_generate` (fewer test pairs for a slow
    model), anything else goes to generate() (e.g. `runs/sdd::sampler=original,steps=[16]`)."""
    path, _, opts = str(spec).partition("::")
    options: dict[str, Any] = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", opts)):  # commas inside [..] stay
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad checkpoint option {item!r} in {spec!r}: expected key=value")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return Path(path), options


def load_model(spec: str | Path, device: str, names: set[str]) -> Model:
    path, options = parse_spec(spec)
    variant, tok, train = load_checkpoint(path, device=device)
    state = json.loads((path / "state.json").read_text())
    steps = options.pop("steps", ())
    sizes = {k: int(options.pop(k)) for k in PER_MODEL_SIZES if k in options}
    name = (path.name or str(path)) + "".join(f"[{k}={v}]" for k, v in options.items())
    while name in names:  # two runs with the same directory name
        name = f"{name}'"
    names.add(name)
    return Model(
        name=name,
        path=path,
        variant=variant,
        tok=tok,
        train=train,
        likelihood=likelihood_kind(variant),
        params=sum(p.numel() for p in variant.parameters()),
        tokens_seen=int(state.get("tokens_seen", 0)),
        train_seconds=train_seconds(read_metrics(path)),
        options=options,
        steps=tuple(steps) if isinstance(steps, list | tuple) else (int(steps),),
        sizes=sizes,
    )


def open_test_data(
    model: Model, data: str | VersionRef, cfg: EvalConfig, significance: str | None = None
) -> ShardData | MarkovData:
    """The test pairs' source in the model's tokens; refuses a checkpoint whose own test split is smaller
    than the one evaluated (some evaluated documents would then have been trained on)."""
    max_len = getattr(getattr(model.variant, "cfg", None), "max_len", None)
    if max_len is not None and cfg.prompt_max + cfg.cont_len > max_len:
        raise ConfigError(
            f"{model.path}: prompts of up to {cfg.prompt_max} + {cfg.cont_len} tokens exceed the model's "
            f"max_len {max_len}"
        )
    if model.train.test_frac < cfg.test_frac:
        raise ConfigError(
            f"{model.path} was trained with test_frac {model.train.test_frac}; evaluating test_frac "
            f"{cfg.test_frac} would score documents it was trained on"
        )
    # a variant trained on significance ranks (semantic-insert) is scored with the table it trained on
    significance = significance or getattr(model.train, "significance", "") or None
    options = DataOptions(
        seq_len=max(2, cfg.prompt_max + cfg.cont_len),
        batch_size=cfg.batch_size,
        val_frac=cfg.val_frac,
        test_frac=cfg.test_frac,
        prompt_min=cfg.prompt_min,
        prompt_max=cfg.prompt_max,
        cont_len=cfg.cont_len,
    )
    if isinstance(data, VersionRef):
        sig = parse_data_spec(significance) if significance else None
        return ShardData(data, model.tok, options, significance=sig, table=cfg.table)
    return open_data(data, model.tok, options, significance=significance, table=cfg.table)


def num_bytes(tok: Tokenizer, ids: Sequence[int]) -> int:
    """UTF-8 bytes the tokens stand for (exact for bytes; decoded text for BPE)."""
    if isinstance(tok, ByteTokenizer):
        return sum(1 for i in ids if 0 <= i < 256)
    return len(tok.decode(ids).encode("utf-8"))


# ---- likelihood ------------------------------------------------------------------------------------------


@torch.no_grad()
def score_likelihood(model: Model, source, cfg: EvalConfig) -> dict[str, Any]:
    """NLL (nats), tokens and bytes over the test pairs' continuations; keeps the pairs for generation."""
    torch.manual_seed(cfg.seed)  # diffusion bounds draw noise: the same draws on every run
    device = torch.device(cfg.device)
    total = tokens = n_bytes = cont_tokens = 0.0
    for batch in source.eval_batches("test", batch_size=cfg.batch_size, max_examples=cfg.max_examples):
        nll, n = model.variant.nll(batch.to(device))
        total, tokens = total + float(nll), tokens + float(n)
        ends = batch.pad_mask.sum(1).tolist()
        for b, (plen, end) in enumerate(zip(batch.prompt_len.tolist(), ends, strict=True)):
            ids = batch.tokens[b, :end].tolist()
            n_bytes += num_bytes(model.tok, ids[plen:])
            cont_tokens += end - plen
            doc_id = batch.doc_ids[b] if batch.doc_ids else f"synthetic-{len(model.pairs)}"
            model.pairs.append((doc_id, ids, plen))
    if not tokens:
        raise WikimixError(
            f"no test pair of {cfg.prompt_min}+{cfg.cont_len} tokens in the data for {model.name} "
            "(too few or too short test documents)"
        )
    return {
        "nll": total / tokens,
        "perplexity": math.exp(min(total / tokens, 50)),
        # per scored token, times the continuation's tokens: the same as total / bytes when every
        # continuation token is scored (exact, bound); a proxy may score a subset of them
        "bits_per_byte": metrics.bits_per_byte(total / tokens * cont_tokens, int(n_bytes))
        if n_bytes
        else None,
        "test_pairs": len(model.pairs),
        "test_tokens": int(tokens),
    }


def sized(cfg: EvalConfig, model: Model) -> EvalConfig:
    """The evaluation sizes for `model`: its spec's max_examples / n_generate where given."""
    return replace(cfg, **model.sizes) if model.sizes else cfg


def pick_judge(models: list[Model], scores: dict[str, dict[str, Any]]) -> Model | None:
    """The `ar` checkpoint with the lowest bits per byte (exact likelihoods only), or None."""
    ars = [m for m in models if m.likelihood == "exact" and scores[m.name]["bits_per_byte"] is not None]
    return min(ars, key=lambda m: scores[m.name]["bits_per_byte"]) if ars else None


@torch.no_grad()
def judge_nll(judge: Model, prompts: list[str], completions: list[str], cfg: EvalConfig) -> tuple[float, int]:
    """Judge's NLL (nats) summed over the completions' tokens given their prompts, and the token count."""
    max_len = getattr(getattr(judge.variant, "cfg", None), "max_len", 1024)
    rows = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        c_ids = judge.tok.encode(completion)[: max_len - 1]
        if not c_ids:
            continue
        p_ids = judge.tok.encode(prompt)[-(max_len - len(c_ids)) :] or [judge.tok.special.bos_id]
        rows.append((str(i), p_ids + c_ids, None, len(p_ids)))
    total, count = 0.0, 0
    device = torch.device(cfg.device)
    for start in range(0, len(rows), cfg.batch_size):
        batch = collate_pairs(rows[start : start + cfg.batch_size], judge.tok.special.pad_id)
        nll, n = judge.variant.nll(batch.to(device))
        total, count = total + float(nll), count + int(n)
    return total, count


# ---- generation ------------------------------------------------------------------------------------------


def sentence_pieces(text: str) -> list[str]:
    """Sentence-like pieces of a text (split after . ! ? and their CJK / Devanagari forms, and at
    newlines); pieces without a letter are dropped."""
    pieces = re.split(r"(?<=[.!?。！？।])\s*|\n+", text)
    return [p.strip() for p in pieces if any(ch.isalpha() for ch in p)]


def language_mix(lid: Lid, prompts: list[str], completions: list[str]) -> float | None:
    """Mean total-variation distance between the languages of each prompt's and completion's pieces."""
    split = [(sentence_pieces(p), sentence_pieces(c)) for p, c in zip(prompts, completions, strict=True)]
    flat = [piece for p, c in split for piece in p + c]
    if not flat:
        return None
    labels = iter(lid(flat))
    distances = []
    for p, c in split:
        p_langs = Counter(next(labels) for _ in p)
        c_langs = Counter(next(labels) for _ in c)
        if p_langs:
            distances.append(metrics.language_mix_distance(p_langs, c_langs))
    return sum(distances) / len(distances) if distances else None


def text_quality(
    texts: list[str], units: Tokenizer, cfg: EvalConfig, lid: Lid | None, prompts: list[str]
) -> dict[str, Any]:
    """Entropy, distinct-n, repeated-n-gram rate (in `units` tokens) and language mix of texts."""
    seqs = [units.encode(t) for t in texts]
    return {
        "entropy": metrics.unigram_entropy(seqs),
        "distinct": metrics.distinct_n(seqs, cfg.distinct_n),
        "repetition": metrics.repeated_ngram_rate(seqs, cfg.rep_n),
        "lang_mix": language_mix(lid, prompts, texts) if lid is not None else None,
    }


def step_counts(model: Model, cfg: EvalConfig) -> list[int]:
    """Sampler step counts to try: one for `ar` (its steps are its tokens), else cfg.steps plus the
    variant's own default."""
    if model.likelihood == "exact":
        return [cfg.cont_len]
    if model.steps:
        return sorted(set(model.steps))
    mcfg = getattr(model.variant, "cfg", None)
    default = getattr(mcfg, "steps", None) or getattr(mcfg, "sample_steps", None)
    return sorted(set(cfg.steps) | ({int(default)} if default else set()))


def default_steps(model: Model, cfg: EvalConfig) -> int:
    if model.likelihood == "exact":
        return cfg.cont_len
    if model.steps:
        return max(model.steps)
    mcfg = getattr(model.variant, "cfg", None)
    default = getattr(mcfg, "steps", None) or getattr(mcfg, "sample_steps", None)
    return int(default) if default else max(cfg.steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def complete(model: Model, steps: int, cfg: EvalConfig) -> tuple[list[list[int]], list[float]]:
    """Completions (cont_len new ids each) of the first n_generate pairs at `steps`, and each one's
    latency in seconds (batch 1, after one warm-up call)."""
    device = torch.device(cfg.device)
    pairs = model.pairs[: cfg.n_generate]
    generator = torch.Generator(device).manual_seed(cfg.seed)
    options = {
        "steps": steps,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "generator": generator,
        **model.options,
    }
    first = torch.tensor([pairs[0][1][: pairs[0][2]]], device=device)
    model.variant.generate(first, cfg.cont_len, **options)  # warm-up: allocation, lazy init
    outs, seconds = [], []
    for _, ids, plen in pairs:
        prompt = torch.tensor([ids[:plen]], device=device)
        _sync(device)
        t0 = time.perf_counter()
        out = model.variant.generate(prompt, cfg.cont_len, **options)
        _sync(device)
        seconds.append(time.perf_counter() - t0)
        if not torch.equal(out[0, :plen], prompt[0]):
            raise WikimixError(f"{model.name}: generate() changed the prompt")
        # a variable-length variant (semantic-insert) pads a completion that stopped early
        outs.append([t for t in out[0, plen : plen + cfg.cont_len].tolist() if t != model.tok.special.pad_id])
    return outs, seconds


def frontier_point(
    model: Model, steps: int, judge: Model | None, cfg: EvalConfig, lid: Lid | None, log: list[dict]
) -> dict[str, Any]:
    """One (model, steps) point: accuracy, judged quality and cost of its completions."""
    outs, seconds = complete(model, steps, cfg)
    pairs = model.pairs[: cfg.n_generate]
    references = [ids[plen : plen + cfg.cont_len] for _, ids, plen in pairs]
    prompts = [model.tok.decode(ids[:plen]) for _, ids, plen in pairs]
    texts = [model.tok.decode(o) for o in outs]
    point: dict[str, Any] = {
        "model": model.name,
        "steps": steps,
        "accuracy": metrics.token_accuracy(outs, references),
        "gen_seconds": sum(seconds) / len(seconds),
        "tok_per_s": cfg.cont_len * len(seconds) / sum(seconds),
        "gen_ppl": None,
        "length": metrics.median_iqr([len(o) for o in outs]),
        **text_quality(texts, judge.tok if judge else model.tok, cfg, lid, prompts),
    }
    if judge is not None:
        nll, n = judge_nll(judge, prompts, texts, cfg)
        point["gen_ppl"] = metrics.perplexity(nll, n) if n else None
    for (doc_id, _, _), prompt, text, ref in zip(pairs, prompts, texts, references, strict=True):
        log.append(
            {
                "model": model.name,
                "steps": steps,
                "doc_id": doc_id,
                "prompt_tail": prompt[-200:],
                "completion": text,
                "reference": model.tok.decode(ref),
            }
        )
    return point


def reference_row(
    base: Model, judge: Model | None, cfg: EvalConfig, lid: Lid | None, log: list[dict]
) -> dict[str, Any]:
    """The true continuations scored like completions (in `base`'s pairs: the judge's when there is one)."""
    pairs = base.pairs[: cfg.n_generate]
    prompts = [base.tok.decode(ids[:plen]) for _, ids, plen in pairs]
    texts = [base.tok.decode(ids[plen : plen + cfg.cont_len]) for _, ids, plen in pairs]
    lengths = [len(ids[plen : plen + cfg.cont_len]) for _, ids, plen in pairs]
    row: dict[str, Any] = {"model": "reference", "gen_ppl": None, "length": metrics.median_iqr(lengths)}
    row.update(text_quality(texts, judge.tok if judge else base.tok, cfg, lid, prompts))
    if judge is not None:
        nll, n = judge_nll(judge, prompts, texts, cfg)
        row["gen_ppl"] = metrics.perplexity(nll, n) if n else None
    return row


# ---- tables and plots ------------------------------------------------------------------------------------

COLUMNS = [  # (parquet column, markdown header, format)
    ("model", "Model", "{}"),
    ("variant", "Variant", "{}"),
    ("params", "Params", "{:,}"),
    ("tokens_seen", "Tokens", "{:,}"),
    ("train_seconds", "Train time (s)", "{:.0f}"),
    ("likelihood", "Likelihood", "{}"),
    ("perplexity", "Perplexity", "{:.2f}"),
    ("bits_per_byte", "Bits/byte", "{:.3f}"),
    ("accuracy", "Accuracy", "{:.3f}"),
    ("gen_ppl", "Gen PPL", "{:.1f}"),
    ("entropy", "Entropy", "{:.2f}"),
    ("distinct", "Distinct-n", "{:.3f}"),
    ("repetition", "Rep-n", "{:.3f}"),
    ("lang_mix", "Lang mix", "{:.3f}"),
    ("length", "Length (median [IQR])", "{}"),
    ("steps", "Steps", "{}"),
    ("gen_seconds", "Gen time (s)", "{:.3f}"),
    ("tok_per_s", "Tok/s", "{:.1f}"),
    ("test_pairs", "Test pairs", "{}"),
]


def markdown_table(rows: list[dict[str, Any]], columns=COLUMNS) -> str:
    """A markdown table; a bound's perplexity is shown as '<= x', missing values as '-'."""
    present = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    lines = ["| " + " | ".join(h for _, h, _ in present) + " |", "|" + "---|" * len(present)]
    for r in rows:
        cells = []
        for key, _, fmt in present:
            value = r.get(key)
            if value is None:
                cell = "-"
            elif isinstance(value, float) and abs(value) >= 1e6:  # an untrained bound can be astronomical
                cell = f"{value:.3g}"
            else:
                cell = fmt.format(value)
            if key == "perplexity" and value is not None and r.get("likelihood") == "bound":
                cell = "<= " + cell
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = list(dict.fromkeys(k for r in rows for k in r))
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), path)


def plot_loss_curves(models: list[Model], path: Path) -> None:
    """Training loss and validation NLL against tokens seen, and validation NLL against wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for m in models:
        records = read_metrics(m.path)
        train = [r for r in records if "loss" in r and "tokens" in r]
        val = [r for r in records if r.get("split") == "val" and "val_nll" in r]
        tokens_at = {r["step"]: r["tokens"] for r in train}
        seconds_at = {r["step"]: r["tokens"] / r["tok_per_s"] for r in train if r.get("tok_per_s")}
        label = f"{m.name} ({m.likelihood})"
        if train:
            axes[0].plot([r["tokens"] for r in train], [r["loss"] for r in train], label=label)
        val_t = [(tokens_at[r["step"]], r["val_nll"]) for r in val if r["step"] in tokens_at]
        if val_t:
            axes[1].plot(*zip(*val_t, strict=True), marker="o", label=label)
        val_s = [(seconds_at[r["step"]], r["val_nll"]) for r in val if r["step"] in seconds_at]
        if val_s:
            axes[2].plot(*zip(*val_s, strict=True), marker="o", label=label)
    titles = ("training loss (bound for diffusion)", "validation NLL / token", "validation NLL / token")
    for ax, title, xlabel in zip(axes, titles, ("tokens seen", "tokens seen", "wall time (s)"), strict=True):
        if ax.lines:
            ax.set_yscale("log")  # an untrained continuous-diffusion bound can sit orders of magnitude above
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_frontier(
    points: list[dict[str, Any]], path: Path, judged: bool, reference: float | None = None
) -> None:
    """Quality (judge perplexity, or token accuracy without a judge) against completion latency; the
    judge's perplexity of the true continuations as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = ("gen_ppl", "generative perplexity (judge)") if judged else ("accuracy", "token accuracy")
    fig, ax = plt.subplots(figsize=(7, 5))
    for name in dict.fromkeys(p["model"] for p in points):
        mine = [p for p in points if p["model"] == name and p.get(key) is not None]
        if not mine:
            continue
        ax.plot([p["gen_seconds"] for p in mine], [p[key] for p in mine], marker="o", label=name)
        for p in mine:
            ax.annotate(str(p["steps"]), (p["gen_seconds"], p[key]), fontsize=7)
    if judged and reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", label="reference text")
    ax.set_xscale("log")
    if judged:
        ax.set_yscale("log")
    ax.set_xlabel("seconds per completion (batch 1)")
    ax.set_ylabel(label)
    ax.set_title("steps-quality frontier (labels: sampler steps)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    """Score every checkpoint on the test split of `data` (DATASET[@VERSION] under the data root, a
    VersionRef, or 'synthetic:markov'; `significance`: a version with its significance table, for
    variants that use removal ranks; `judge`: an `ar` run directory to judge generations instead of the
    best `ar` among `ckpts`, e.g. a stronger one trained longer); write the table and plots under `out`;
    return {name: path}."""
    cfg = cfg or EvalConfig()
    if not ckpts:
        raise ConfigError("no checkpoint given: pass at least one --ckpt DIR")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    names: set[str] = set()
    models = [load_model(p, cfg.device, names) for p in ckpts]

    scores: dict[str, dict[str, Any]] = {}
    scored: dict[Path, Model] = {}  # one checkpoint under several sampler options is scored once
    for m in models:
        if m.path in scored:
            m.pairs, scores[m.name] = scored[m.path].pairs, scores[scored[m.path].name]
            continue
        scores[m.name] = score_likelihood(m, open_test_data(m, data, cfg, significance), sized(cfg, m))
        scored[m.path] = m
    if judge is not None:
        judge_model = load_model(judge, cfg.device, {m.name for m in models})
        if judge_model.likelihood != "exact":
            raise ConfigError(f"the judge {judge} is not an exact-likelihood (ar) model")
        # its own test pairs: the reference row is judged on them
        scores[judge_model.name] = score_likelihood(
            judge_model, open_test_data(judge_model, data, cfg, significance), cfg
        )
    else:
        judge_model = pick_judge(models, scores)
    judge = judge_model
    log: list[dict[str, Any]] = []
    frontier: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for m in models:
        points = [frontier_point(m, s, judge, sized(cfg, m), lid, log) for s in step_counts(m, cfg)]
        frontier += points
        main = next(p for p in points if p["steps"] == default_steps(m, cfg))
        rows.append(
            {
                "model": m.name,
                "variant": getattr(m.variant, "name", "?"),
                "params": m.params,
                "tokens_seen": m.tokens_seen,
                "train_seconds": m.train_seconds,
                "likelihood": m.likelihood,
                **scores[m.name],
                **main,
                "judge": judge.name if judge else None,
                "checkpoint": str(m.path),
            }
        )
    rows.append(reference_row(judge or models[0], judge, cfg, lid, log))

    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    paths = {
        "comparison_md": out / "comparison.md",
        "comparison_parquet": out / "comparison.parquet",
        "frontier_md": out / "frontier.md",
        "frontier_parquet": out / "frontier.parquet",
        "completions": out / "completions.jsonl",
        "summary": out / "evaluation.json",
        "loss_curves": out / "loss_curves.png",
        "frontier_png": out / "frontier.png",
    }
    header = (
        f"Test split of `{data}`: prompts {cfg.prompt_min}-{cfg.prompt_max} tokens, {cfg.cont_len}-token "
        f"completions, temperature {cfg.temperature}, top-p {cfg.top_p}. Perplexity marked `<=` is an ELBO "
        f"bound. Generative perplexity judge: {judge.name if judge else 'none (no ar checkpoint)'}.\n\n"
    )
    paths["comparison_md"].write_text(header + markdown_table(rows))
    write_parquet(rows, paths["comparison_parquet"])
    paths["frontier_md"].write_text(markdown_table(frontier))
    write_parquet(frontier, paths["frontier_parquet"])
    paths["completions"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in log))
    summary = {
        "data": str(data),
        "significance": significance,
        "config": asdict(cfg),
        "judge": judge.name if judge else None,
        "judge_likelihood": scores[judge.name] if judge else None,
        "rows": rows,
        "frontier": frontier,
        "test_doc_ids": {m.name: sorted({d for d, _, _ in m.pairs}) for m in models},
    }
    paths["summary"].write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    plot_loss_curves(list(scored.values()), paths["loss_curves"])
    plot_frontier(frontier, paths["frontier_png"], judged=judge is not None, reference=rows[-1]["gen_ppl"])
    return {k: str(v) for k, v in paths.items()}
