"""The code-switching hypothesis, as an experiment anyone can rerun.

    wikimix experiment --cs NAME-docs --out runs/cs-exp --variant mdlm --budget bench-cpu --seeds 0,1,2
    paths = run_experiment(ExperimentConfig(cs_data="NAME-docs", out="runs/cs-exp"))

Question: does a model trained on extremely code-switched text learn meaning rather than one language's
wording? Arms, per seed, same variant, budget (steps x batch x seq_len tokens), tokenizer and seed:
  (a) `cs`   : the code-switched documents (granularity sentence / clause) of the training concepts;
  (b) `mono` : the monolingual documents of the same concepts (a `curriculum` build holds both; or pass
               a second version with --mono).
Then the seed's second step: (a) fine-tuned on one language's monolingual documents (`cs+ft`), against
(b), and against (b) given the same fine-tuning (`mono+ft`, so extra steps are not the difference).

Measured on each model:
- held-out bits per byte per language: monolingual documents of concepts held out of both arms (concepts,
  not documents, are held out, so no fact of theirs was seen in any language); windows of seq_len tokens,
  the first token unscored; an ELBO bound for diffusion variants (the same kind in every arm).
- cross-lingual cloze. Design: a *fact* is a 3-4 digit number (mostly years) stated in one concept's
  sentences in at least two languages. For each fact we pick a question language Y (seeded) and REMOVE
  from both arms' training documents every Y-language segment of that concept that states the number,
  so both arms see the fact only in other languages. The question is the removed Y sentence cut just
  before the number; the model must prefer the true number over `cloze_distractors` other numbers of the
  same length drawn from the corpus (scored by the likelihood of the number's tokens given the prefix:
  exact for ar, the bound for diffusion, with the same noise draws for every candidate). An item is kept
  only if the number survives in both arms' training text of that concept. Chance = 1 / (1 + distractors).
- verbatim memorisation: for `mem_passages` training documents of the arm itself, the first `mem_prefix`
  tokens prompt a (near-)greedy completion of `mem_suffix` tokens; the rate of exact reproductions and
  the token accuracy.
Each effect is reported per arm as the mean over seeds with a 95% t-interval, and as the paired
difference (a - b) with its interval; an interval covering 0 is reported as no detectable difference.

Writes under `out`: data versions under the data root (`<name>-cs`, `<name>-mono`, `<name>-heldout`,
`<name>-ft-<lang>`, parents recorded), tokenizer.json (shared by every run), seed<k>/<arm>/ run
directories with their measurements.json (training/experiment_runner.py trains and caches them), cloze.jsonl,
per_seed.parquet, experiment.json and experiment.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from storage.store import VersionRef, data_root, open_version, write_version
from training import metrics
from training.checkpoint import load_checkpoint
from training.config import make_config
from training.data import collate_pairs, parse_data_spec
from training.experiment_report import report_markdown, summarize
from training.experiment_runner import Grid, measured, shared_tokenizer
from training.models import load_variant
from training.split import split_of, split_unit
from training.tokenizers import Tokenizer, load_tokenizer
from wikimix.errors import ConfigError, WikimixError

NUMBER = re.compile(r"(?<![\d.,])\d{3,4}(?![\d]|[.,]\d)")  # 3-4 digit numbers, not part of a longer one
ARMS = ("cs", "mono", "cs+ft", "mono+ft")  # per seed; training/experiment_runner.py trains them
DOC_COLUMNS = ["doc_id", "concept", "policy", "granularity", "seed", "langs", "text", "segments"]


@dataclass
class ExperimentConfig:
    cs_data: str  # DATASET[@VERSION]: code-switched documents (granularity != 'monolingual' are used)
    out: str
    mono_data: str = ""  # DATASET[@VERSION] of the monolingual documents ('' = the cs_data version)
    name: str = "csexp"  # prefix of the data versions written
    variant: str = "mdlm"
    budget: str = "bench-cpu"
    max_steps: int | None = None  # None = the budget's
    seeds: tuple[int, ...] = (0, 1, 2)
    train_overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (model.X: dict)
    heldout_frac: float = 0.1  # share of concepts held out of both arms
    finetune_lang: str = ""  # '' = the language with the most monolingual training text
    finetune_steps: int = 100
    cloze_items: int = 200
    cloze_distractors: int = 4
    min_prefix_chars: int = 20
    cloze_context: int = 200  # prefix tokens kept before the number
    mem_passages: int = 64
    mem_prefix: int = 32
    mem_suffix: int = 16
    eval_windows: int = 64  # held-out windows per language
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("the experiment needs at least one seed")
        if not 0 < self.heldout_frac < 1:
            raise ConfigError(f"heldout_frac must be in (0, 1), got {self.heldout_frac}")
        if (
            self.cloze_distractors < 1
            or self.finetune_steps < 1
            or self.mem_prefix < 1
            or self.mem_suffix < 1
        ):
            raise ConfigError("cloze_distractors, finetune_steps, mem_prefix and mem_suffix must be >= 1")
        self.seeds = tuple(int(s) for s in self.seeds)


def _hash(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "big")


# ---- data: arms, held-out concepts, cloze items ----------------------------------------------------------


def segment_texts(doc: dict) -> list[tuple[str, str]]:
    """(lang, text) of every segment of a document row."""
    return [(s["lang"], doc["text"][s["start"] : s["end"]]) for s in doc["segments"] or []]


def without_segments(doc: dict, drop) -> dict | None:
    """The document with the segments `drop(lang, text)` selects removed (text re-joined by spaces, spans
    recomputed); None when nothing is left."""
    parts, spans, pos = [], [], 0
    for seg, (lang, text) in zip(doc["segments"] or [], segment_texts(doc), strict=True):
        if drop(lang, text):
            continue
        parts.append(text)
        spans.append({**seg, "start": pos, "end": pos + len(text)})
        pos += len(text) + 1
    if not parts:
        return None
    return {
        **doc,
        "text": " ".join(parts),
        "segments": spans,
        "langs": list(dict.fromkeys(s["lang"] for s in spans)),
    }


def doc_lang(doc: dict) -> str:
    """The language of a monolingual document (its most frequent segment language)."""
    langs = Counter(s["lang"] for s in doc["segments"] or [])
    return langs.most_common(1)[0][0] if langs else (doc.get("langs") or ["und"])[0]


@dataclass
class Prepared:
    cs: str  # data specs DATASET@VERSION
    mono: str
    finetune: str
    finetune_lang: str
    heldout: dict[str, list[str]]  # lang -> texts of held-out concepts
    cloze: list[dict[str, Any]]
    train_texts: dict[str, list[str]]  # arm -> its training texts (train split)
    counts: dict[str, Any]


def choose_cloze(docs: list[dict], train_concepts: set[str], cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """Cloze items from the training concepts (see the module docstring): concept, number, question
    language, prefix, distractors. Deterministic."""
    langs_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    questions: dict[tuple[str, str, str], str] = {}
    pool: dict[int, set[str]] = defaultdict(set)
    for doc in docs:
        concept = doc["concept"]
        for lang, text in segment_texts(doc):
            for m in NUMBER.finditer(text):
                pool[len(m.group())].add(m.group())
                if concept not in train_concepts:
                    continue
                langs_of[(concept, m.group())].add(lang)
                prefix = text[: m.start()]
                key = (concept, m.group(), lang)
                if m.group() not in prefix and len(prefix) >= cfg.min_prefix_chars and key not in questions:
                    questions[key] = prefix
    items = []
    for (concept, number), langs in sorted(langs_of.items()):
        askable = sorted(lang for lang in langs if (concept, number, lang) in questions)
        if len(langs) < 2 or not askable:
            continue
        lang = askable[_hash(concept, number) % len(askable)]
        others = sorted(pool[len(number)] - {number})
        if len(others) < cfg.cloze_distractors:
            continue
        rng = random.Random(_hash("distractors", concept, number))
        items.append(
            {
                "concept": concept,
                "number": number,
                "lang": lang,
                "prefix": questions[(concept, number, lang)],
                "distractors": rng.sample(others, cfg.cloze_distractors),
            }
        )
    items.sort(key=lambda it: _hash(it["concept"], it["number"]))
    return items[: cfg.cloze_items * 2]  # some fail the survival check below


def prepare(cfg: ExperimentConfig, val_frac: float) -> Prepared:
    """Build the arms' data versions from the stored documents; choose the cloze items."""
    cs_ref = parse_data_spec(cfg.cs_data)
    mono_ref = parse_data_spec(cfg.mono_data) if cfg.mono_data else cs_ref
    cs_docs = [d for d in read_docs(cs_ref) if d["granularity"] != "monolingual"]
    mono_docs = [d for d in read_docs(mono_ref) if d["granularity"] == "monolingual"]
    if not cs_docs or not mono_docs:
        raise WikimixError(
            f"need code-switched documents in {cs_ref} and monolingual ones in {mono_ref} "
            f"(found {len(cs_docs)} and {len(mono_docs)}): build with --policy curriculum or pass --mono"
        )
    concepts = sorted({d["concept"] for d in cs_docs} & {d["concept"] for d in mono_docs})
    heldout_concepts = {c for c in concepts if split_of(c, 0.0, cfg.heldout_frac) == "test"}
    train_concepts = set(concepts) - heldout_concepts
    if not heldout_concepts or not train_concepts:
        raise WikimixError(f"{len(concepts)} shared concepts are too few to hold {cfg.heldout_frac:.0%} out")

    candidates = choose_cloze(cs_docs + mono_docs, train_concepts, cfg)
    hidden = {(it["concept"], it["lang"], it["number"]) for it in candidates}

    def strip(docs: list[dict]) -> list[dict]:
        """Training-concept documents without the held-out question-language statements of each fact."""
        kept = []
        for doc in docs:
            if doc["concept"] not in train_concepts:
                continue
            facts = {(lang, n) for c, lang, n in hidden if c == doc["concept"]}
            new = without_segments(
                doc, lambda lang, text, facts=facts: any(x == lang and n in text for x, n in facts)
            )
            if new is not None:
                kept.append(new)
        return kept

    arms = {"cs": strip(cs_docs), "mono": strip(mono_docs)}
    trained = {
        arm: [d for d in docs if split_of(split_unit(d["doc_id"], d["concept"]), val_frac, 0.0) == "train"]
        for arm, docs in arms.items()
    }
    cloze = []
    for it in candidates:  # the fact must survive, in another language, in both arms' training text
        seen = {}
        for arm, docs in trained.items():
            seen[arm] = sorted(
                {
                    lang
                    for d in docs
                    if d["concept"] == it["concept"]
                    for lang, t in segment_texts(d)
                    if it["number"] in t
                }
            )
        if all(seen.values()):
            cloze.append({**it, "seen_cs": seen["cs"], "seen_mono": seen["mono"]})
    cloze = cloze[: cfg.cloze_items]

    mono_text = Counter()
    for d in arms["mono"]:
        mono_text[doc_lang(d)] += len(d["text"])
    lang = cfg.finetune_lang or mono_text.most_common(1)[0][0]
    if lang not in mono_text:
        raise ConfigError(f"no monolingual training text in {lang!r} (have: {', '.join(sorted(mono_text))})")
    finetune_docs = [d for d in arms["mono"] if doc_lang(d) == lang]
    heldout: dict[str, list[str]] = defaultdict(list)
    for d in mono_docs:
        if d["concept"] in heldout_concepts:
            heldout[doc_lang(d)].append(d["text"])

    root = data_root()
    parents = [cs_ref] + ([mono_ref] if mono_ref != cs_ref else [])
    params = {
        "sources": [str(r) for r in parents],
        "val_frac": val_frac,
        **{
            k: getattr(cfg, k)
            for k in ("heldout_frac", "cloze_items", "cloze_distractors", "min_prefix_chars")
        },
    }
    # content-addressed versions: a rerun of the same experiment finds (and reuses) what it wrote
    version = "x" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    specs = {}
    for suffix, docs in (("cs", arms["cs"]), ("mono", arms["mono"]), (f"ft-{lang}", finetune_docs)):
        dataset = f"{cfg.name}-{suffix}"
        try:
            ref = open_version(root, dataset, version)
        except WikimixError:
            ref = write_version(
                root, dataset, {"documents": docs}, version=version, params=params, parents=parents
            )
        specs[suffix] = str(ref)
    return Prepared(
        cs=specs["cs"],
        mono=specs["mono"],
        finetune=specs[f"ft-{lang}"],
        finetune_lang=lang,
        heldout=dict(heldout),
        cloze=cloze,
        train_texts={arm: [d["text"] for d in docs] for arm, docs in trained.items()},
        counts={
            "concepts": len(concepts),
            "heldout_concepts": len(heldout_concepts),
            "cs_docs": len(arms["cs"]),
            "mono_docs": len(arms["mono"]),
            "cs_chars": sum(len(d["text"]) for d in arms["cs"]),
            "mono_chars": sum(len(d["text"]) for d in arms["mono"]),
            "finetune_docs": len(finetune_docs),
            "cloze_items": len(cloze),
        },
    )


def read_docs(ref: VersionRef) -> list[dict]:
    table = ref.read("documents", verify=True)
    return table.select([c for c in DOC_COLUMNS if c in table.column_names]).to_pylist()


# ---- measurements ----------------------------------------------------------------------------------------


@torch.no_grad()
def heldout_bpb(
    variant, tok: Tokenizer, texts: list[str], seq_len: int, n_windows: int, device: str
) -> float | None:
    """Bits per byte over up to n_windows windows of seq_len tokens (first token of each unscored)."""
    windows = []
    for text in texts:
        ids = tok.encode(text)
        for start in range(0, len(ids) - 1, seq_len):
            if len(ids[start : start + seq_len]) >= 2:
                windows.append(ids[start : start + seq_len])
        if len(windows) >= n_windows:
            break
    windows = windows[:n_windows]
    if not windows:
        return None
    torch.manual_seed(0)
    total, n_bytes = 0.0, 0
    for i in range(0, len(windows), 16):
        rows = [(str(j), w, None, 1) for j, w in enumerate(windows[i : i + 16])]
        nll, _ = variant.nll(collate_pairs(rows, tok.special.pad_id).to(device))
        total += float(nll)
        n_bytes += sum(len(tok.decode(w[1:]).encode("utf-8")) for _, w, _, _ in rows)
    return metrics.bits_per_byte(total, n_bytes) if n_bytes else None


@torch.no_grad()
def cloze_scores(
    variant, tok: Tokenizer, items: list[dict], max_len: int, context: int, device: str
) -> dict[str, Any]:
    """Accuracy of preferring the true number, and the per-item choices."""
    hits, choices = 0, []
    for k, it in enumerate(items):
        p_text = it["prefix"].rstrip()
        sep = it["prefix"][len(p_text) :]
        p_ids = tok.encode(p_text)
        rows = []
        for cand in [it["number"], *it["distractors"]]:
            full = tok.encode(p_text + sep + cand)
            c_ids = full[len(p_ids) :] if full[: len(p_ids)] == p_ids else tok.encode(sep + cand)
            keep = p_ids[-(min(context, max_len - len(c_ids))) :]
            rows.append((cand, keep + c_ids, None, len(keep)))
        nlls = []
        for row in rows:  # the same noise for every candidate (common random numbers)
            torch.manual_seed(k)
            nll, _ = variant.nll(collate_pairs([row], tok.special.pad_id).to(device))
            nlls.append(float(nll))
        best = min(range(len(nlls)), key=nlls.__getitem__)
        hits += best == 0
        choices.append(
            {"concept": it["concept"], "number": it["number"], "chose": rows[best][0], "nll": nlls}
        )
    return {"accuracy": hits / len(items) if items else None, "choices": choices}


@torch.no_grad()
def memorisation(variant, tok: Tokenizer, texts: list[str], cfg: ExperimentConfig) -> dict[str, float | None]:
    """Exact-reproduction rate and token accuracy of training passages' continuations."""
    need = cfg.mem_prefix + cfg.mem_suffix
    passages = [ids[:need] for ids in (tok.encode(t) for t in texts) if len(ids) >= need]
    rng = random.Random(0)
    passages = rng.sample(passages, min(cfg.mem_passages, len(passages)))
    if not passages:
        return {"exact": None, "token_accuracy": None}
    outs, refs = [], []
    generator = torch.Generator(cfg.device).manual_seed(0)
    for ids in passages:
        prompt = torch.tensor([ids[: cfg.mem_prefix]], device=cfg.device)
        # near-greedy: some samplers refuse temperature 0
        out = variant.generate(
            prompt, cfg.mem_suffix, steps=cfg.mem_suffix, temperature=1e-4, generator=generator
        )
        outs.append(out[0, cfg.mem_prefix :].tolist())
        refs.append(ids[cfg.mem_prefix :])
    exact = sum(o == r for o, r in zip(outs, refs, strict=True)) / len(refs)
    return {"exact": exact, "token_accuracy": metrics.token_accuracy(outs, refs)}


def measure(
    run_dir: Path, prepared: Prepared, cfg: ExperimentConfig, mem_texts: list[str] | None
) -> dict[str, Any]:
    variant, tok, tcfg = load_checkpoint(run_dir, device=cfg.device)
    max_len = getattr(getattr(variant, "cfg", None), "max_len", 1024)
    seq_len = min(tcfg.seq_len, max_len)
    bpb = {
        lang: heldout_bpb(variant, tok, texts, seq_len, cfg.eval_windows, cfg.device)
        for lang, texts in sorted(prepared.heldout.items())
    }
    known = [v for v in bpb.values() if v is not None]
    result: dict[str, Any] = {
        "heldout_bpb": bpb,
        "heldout_bpb_mean": sum(known) / len(known) if known else None,
        "cloze": cloze_scores(variant, tok, prepared.cloze, max_len, cfg.cloze_context, cfg.device),
    }
    if mem_texts is not None:
        result["memorisation"] = memorisation(variant, tok, mem_texts, cfg)
    return result


# ---- the experiment --------------------------------------------------------------------------------------


def run_experiment(cfg: ExperimentConfig) -> dict[str, str]:
    """Prepare the arms, train and measure every (seed, arm), summarise; returns {name: path} written.
    Re-running the same command resumes: finished runs are not retrained."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    load_variant(cfg.variant)  # an unknown variant fails before any work
    base = make_config(cfg.variant, budget=cfg.budget, overrides=cfg.train_overrides, data="-", out="-")
    prepared = prepare(cfg, base.val_frac)
    out.mkdir(parents=True, exist_ok=True)  # after the inputs are known to be good
    tokenizer = shared_tokenizer(out, base, lambda: prepared.train_texts["cs"] + prepared.train_texts["mono"])
    load_tokenizer(tokenizer)  # fails early on a bad path
    grid = Grid(
        out=out,
        seeds=cfg.seeds,
        variants=(cfg.variant,),
        arms=ARMS[:2],
        data={"cs": prepared.cs, "mono": prepared.mono, "ft": prepared.finetune},
        tokenizer=tokenizer,
        budget=cfg.budget,
        overrides=cfg.train_overrides,
        max_steps=cfg.max_steps,
        finetune_steps=cfg.finetune_steps,
        variant_dirs=False,
    )
    settings = [
        prepared.cs,
        cfg.eval_windows,
        cfg.cloze_context,
        cfg.mem_passages,
        cfg.mem_prefix,
        cfg.mem_suffix,
    ]

    def measure_run(run_dir: Path, arm: str) -> dict[str, Any]:
        mem_texts = prepared.train_texts.get(arm)  # memorisation of the arm's own text: base arms only
        return measured(run_dir, settings, lambda: measure(run_dir, prepared, cfg, mem_texts))

    results = grid.run(measure_run)
    per_seed: dict[int, dict[str, dict]] = {seed: {} for seed in cfg.seeds}
    for (seed, _, arm), result in results.items():
        per_seed[seed][arm] = result

    rows = summarize(per_seed, prepared)
    paths = {
        "report": out / "experiment.md",
        "summary": out / "experiment.json",
        "per_seed": out / "per_seed.parquet",
        "cloze": out / "cloze.jsonl",
    }
    paths["report"].write_text(report_markdown(rows, cfg, prepared))
    paths["summary"].write_text(
        json.dumps(
            {
                "config": asdict(cfg),
                "data": {"cs": prepared.cs, "mono": prepared.mono, "finetune": prepared.finetune},
                "counts": prepared.counts,
                "finetune_lang": prepared.finetune_lang,
                "effects": rows,
                "per_seed": per_seed,
            },
            indent=2,
            default=str,
        )
    )
    flat = []
    for seed, arms in per_seed.items():
        for arm, m in arms.items():
            row = {
                "seed": seed,
                "arm": arm,
                "heldout_bpb_mean": m["heldout_bpb_mean"],
                "cloze_accuracy": m["cloze"]["accuracy"],
            }
            row.update({f"bpb_{lang}": v for lang, v in m["heldout_bpb"].items()})
            if "memorisation" in m:
                row.update({f"mem_{k}": v for k, v in m["memorisation"].items()})
            flat.append(row)
    keys = list(dict.fromkeys(k for r in flat for k in r))
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in flat]), paths["per_seed"])
    paths["cloze"].write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in prepared.cloze))
    return {k: str(v) for k, v in paths.items()}
