"""The code-switching hypothesis on controlled knowledge: does a model that meets each fact in a different
mix of languages know it in a language it never saw the fact in?

    wikimix experiment knowledge --budget smoke --seeds 0 --out runs/cs-knowledge
    paths = run_knowledge(KnowledgeConfig(out="runs/cs-knowledge", budget="smoke"))

Protocol (pipeline/knowledge.py builds the data): fictional people with six attributes in six languages;
the arms mono / parallel / cs / cs-fixed hold the same facts at the same token count, with the same
held-out (entity, attribute, language) triples and the same held-out sentence frames. Per seed, variant
(ar, mdlm) and arm, one model (same size, steps, tokenizer) is trained; then every fact of `eval_entities`
people is queried in every language with a held-out frame, and the true value is ranked among all values of
its attribute by the model's likelihood of the value span (training/knowledge.py). Reported per variant x
arm, with 95% bootstrap intervals over entities (seeds pooled per entity) and chance:
  heldout  : facts never rendered in the query language in any arm: the comparison that answers the seed;
  seen     : facts the arm rendered in the query language (test frame);
  unseen   : facts the arm never rendered in the query language (heldout included);
  seen-train-frame: seen facts asked with a training frame (power: do the models store the facts at all?);
and the paired differences cs - mono, parallel - mono, cs-fixed - mono, cs - cs-fixed on held-out facts,
with the minimum detectable difference (2.8 x the bootstrap SE). The power check, per variant and seed: did
parallel answer >= 0.8 of its seen facts with a training frame? A variant that did not gets no comparison in
the report (training/knowledge_report.py). Training runs through training/experiment_runner.py (the grid of
resumable runs shared with the Wikipedia experiment). With `finetune_steps`, each arm's model is
then fine-tuned on monolingual biographies of other people in `finetune_lang` (`<arm>+ft`), and its held-out
and unseen facts in that language are asked again.

Writes under `out`: the data versions `<name>-<arm>` and `<name>-ft-<lang>` (under the data root),
tokenizer.json, kb.json (every entity and fact), seed<k>/<variant>/<arm>/ runs with measurements.json,
knowledge.json, knowledge.md, cells.parquet and knowledge.png.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import knowledge as kbm
from storage.store import data_root, open_version, write_version
from training import knowledge as cloze
from training.checkpoint import load_checkpoint
from training.experiment_runner import Grid, measured, run_config, shared_tokenizer
from training.knowledge_report import summarize, write_outputs
from training.split import split_of, split_unit
from training.tokenizers import load_tokenizer
from wikimix.errors import ConfigError, WikimixError

VARIANTS = ("ar", "mdlm")

# Protocol sizes per budget. smoke: minutes, for tests and the bench's quick run (stores nothing). bench-gpu:
# sized by reasoning only. bench-cpu, sized so parallel stores its facts (issue 18: >= 0.8 on seen facts, training
# frame) and the whole experiment (3 seeds x ar, mdlm x 4 arms + 4 fine-tuned) fits 60 min on 2 cores:
# - storing a fact takes exposures. Pilot (BENCHMARKS.md; bytes, d=64x2, 614k tokens, 12 people): mono, ~130
#   renderings of each fact in its language, 0.81; parallel, ~26 per (fact, language), 0.28. parallel spreads a
#   fact over 5 languages, so it needs ~5x mono's tokens per fact: fewer people, more passes per fact.
# - BPE 2048 on 12 people: 286 tokens per person per parallel round (bytes: ~1,970), so one round (every
#   fact once in each seen language) is 3,429 tokens; d=64x2 (the pilot's size) memorised, and at d=64 the
#   2048-way head (131k MACs/token) is the largest cost, but 6.9x fewer tokens than bytes more than pays it.
# - 400 steps x 16 x 128 = 819k tokens = 239 rounds = ~239 exposures per (fact, language) in parallel.
#   Probe (BENCHMARKS.md): 300 steps (179 rounds) gave parallel 0.800 [0.764, 0.831] for ar, seed 0: at the
#   bar, so 400 for margin (more exposures helping is extrapolation, not measured; mdlm is not probed).
# - time, from the probe's rates (1 thread, load ~8: 7.1k tok/s wall, 19.8k tok per CPU-second): 24 base runs
#   x 116 s = 46 min, 24 fine-tunings of 30 steps x 9 s = 3.5 min, cloze 12 x 7 s (ar) + 12 x 20 s (mdlm) +
#   fine-tuned arms 0.5 min = 6 min: ~56 min wall at that load; ~20 min by CPU seconds on a quiet core
#   (mdlm's training speed taken as ar's: not measured).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        n_entities=24, n_finetune_entities=6, passes=2, eval_entities=2, max_steps=40, finetune_steps=10,
        mc_samples=2,
        train={"seq_len": 64, "batch_size": 8, "eval_every": 0, "save_every": 0, "lr": 3e-3},
    ),
    "bench-cpu": dict(  # sized in the comment above PRESETS; probed in BENCHMARKS.md
        n_entities=12, n_finetune_entities=12, passes=8, eval_entities=12, max_steps=400, finetune_steps=30,
        mc_samples=4,
        train={"tokenizer": "bpe", "vocab_size": 2048, "seq_len": 128, "batch_size": 16, "lr": 3e-3,
               "warmup_steps": 20, "val_frac": 0.0, "eval_every": 0, "save_every": 100,
               "model": {"d_model": 64, "n_layers": 2, "n_heads": 2, "max_len": 256}},
    ),
    "bench-gpu": dict(
        n_entities=2000, n_finetune_entities=200, passes=8, eval_entities=400, max_steps=5000, mc_samples=16,
        finetune_steps=300, train={"vocab_size": 4096, "eval_every": 0},
    ),
}  # fmt: skip


@dataclass
class KnowledgeConfig:
    out: str
    name: str = "kbexp"  # prefix of the data versions written
    budget: str = "smoke"  # a PRESETS entry, and the training budget (training.config.BUDGETS)
    variants: tuple[str, ...] = VARIANTS
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = kbm.ARMS
    kb_seed: int = 0
    latin_names: bool = False  # the shared-string control
    n_entities: int | None = None  # None = the preset's (likewise below)
    n_finetune_entities: int | None = None
    passes: int | None = None
    eval_entities: int | None = None
    max_steps: int | None = None
    finetune_lang: str = "en"
    finetune_steps: int | None = None  # 0 = no fine-tuning step
    mc_samples: int | None = None  # mdlm: t draws for value spans too long for the exact bound
    train_overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.budget not in PRESETS:
            raise ConfigError(f"unknown budget {self.budget!r} (known: {', '.join(PRESETS)})")
        if not self.seeds:
            raise ConfigError("the experiment needs at least one seed")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ConfigError(f"variants must be among {', '.join(VARIANTS)}, got {list(self.variants)}")
        bad = [a for a in self.arms if a not in kbm.ARMS]
        if bad or "mono" not in self.arms or "cs" not in self.arms:
            raise ConfigError(
                f"arms must include mono and cs, from {', '.join(kbm.ARMS)}; got {list(self.arms)}"
            )
        for key, value in PRESETS[self.budget].items():
            if key != "train" and getattr(self, key) is None:
                setattr(self, key, value)
        self.seeds = tuple(int(s) for s in self.seeds)
        if self.eval_entities < 1 or self.eval_entities > self.n_entities:
            raise ConfigError(f"eval_entities must be in [1, n_entities={self.n_entities}]")
        if self.finetune_lang not in kbm.lex.LANGS:
            raise ConfigError(f"finetune_lang must be one of {', '.join(kbm.lex.LANGS)}")

    def kb_config(self) -> kbm.KBConfig:
        return kbm.KBConfig(
            n_entities=self.n_entities,
            n_finetune_entities=self.n_finetune_entities,
            seed=self.kb_seed,
            latin_names=self.latin_names,
            passes=self.passes,
        )

    def train_overrides_merged(self) -> dict[str, Any]:
        """The preset's training options under this config's overrides (model options merged key by key)."""
        preset = PRESETS[self.budget]["train"]
        overrides = {**preset, **self.train_overrides}
        overrides["model"] = {**preset.get("model", {}), **self.train_overrides.get("model", {})}
        return overrides


@dataclass
class Prepared:
    data: dict[str, str]  # arm (and 'ft') -> DATASET@VERSION
    tokenizer: str
    items: list[dict]  # held-out-frame queries of the eval entities
    train_frame_items: list[dict]  # the same facts asked with a training frame (seen facts only)
    counts: dict[str, Any]


def _version(params: dict) -> str:
    return "k" + hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _store(name: str, docs: list[dict], version: str, params: dict) -> str:
    root = data_root()
    try:
        return str(open_version(root, name, version))
    except WikimixError:
        return str(write_version(root, name, {"documents": docs}, version=version, params=params))


def prepare(cfg: KnowledgeConfig, out: Path) -> Prepared:
    """Build the KB, the tokenizer (BPE on one parallel pass when the budget uses BPE), every arm's documents
    at equal tokens of that tokenizer, the fine-tuning documents and the cloze items."""
    kb = kbm.make_kb(cfg.kb_config())
    overrides = cfg.train_overrides_merged()  # bytes unless the preset or the caller asks for BPE
    base = run_config(cfg.variants[0], cfg.budget, overrides, "-", out, 0, "byte", cfg.max_steps)
    tok_spec = shared_tokenizer(
        out,
        base,
        lambda: (
            [d["text"] for d in next(kbm.arm_rounds(kb, "parallel"))]
            + [d["text"] for d in kbm.finetune_docs(kb, cfg.finetune_lang, 1)]
        ),
    )
    tok = load_tokenizer(tok_spec)
    count = kbm.utf8_bytes if tok_spec == "byte" else (lambda text: len(tok.encode(text)))
    target = kbm.token_target(kb, count)
    docs = {arm: kbm.render_arm(kb, arm, target, count) for arm in cfg.arms}
    ft_docs = kbm.finetune_docs(kb, cfg.finetune_lang, rounds=max(1, cfg.passes * len(kb.config.langs)))
    params = {
        "kb": asdict(kb.config),
        "tokenizer": tok_spec if tok_spec == "byte" else "bpe",
        "target": target,
    }
    version = _version(params)
    data = {arm: _store(f"{cfg.name}-{arm}", d, version, params) for arm, d in docs.items()}
    data["ft"] = _store(f"{cfg.name}-ft-{cfg.finetune_lang}", ft_docs, version, params)
    # seen = rendered in the documents the trainer trains on. The one split is by concept (training/split.py),
    # so the trainer's validation people are never trained in any arm: the cloze asks only training people.
    trained = {
        arm: [x for x in d if split_of(split_unit(x["doc_id"], x["concept"]), base.val_frac, 0.0) == "train"]
        for arm, d in docs.items()
    }
    people = [e for e in kb.entities if split_of(e.id, base.val_frac, 0.0) == "train"][: cfg.eval_entities]
    items = kbm.cloze_items(kb, people, arms=trained)
    train_frame = [
        it
        for it in kbm.cloze_items(kb, people, arms=trained, frame_split="train")
        if any(it["seen"].values())
    ]
    (out / "kb.json").write_text(
        json.dumps(
            {
                "config": asdict(kb.config),
                "entities": [asdict(e) for e in kb.entities + kb.finetune_entities],
            },
            ensure_ascii=False,
        )
    )
    counts = {
        "entities": len(kb.entities),
        "finetune_entities": len(kb.finetune_entities),
        "token_target": target,
        **{f"{arm}_docs": len(d) for arm, d in docs.items()},
        **{f"{arm}_tokens": sum(count(x["text"]) for x in d) for arm, d in docs.items()},
        "cloze_items": len(items),
        "heldout_items": sum(it["heldout"] for it in items),
    }
    return Prepared(data, tok_spec, items, train_frame, counts)


def grid(cfg: KnowledgeConfig, prepared: Prepared) -> Grid:
    """Every (seed, variant, arm) run: `<arm>+ft` fine-tunes `<arm>` on the fine-tuning biographies."""
    return Grid(
        out=Path(cfg.out),
        seeds=cfg.seeds,
        variants=cfg.variants,
        arms=cfg.arms,
        data=prepared.data,
        tokenizer=prepared.tokenizer,
        budget=cfg.budget,
        overrides=cfg.train_overrides_merged(),
        max_steps=cfg.max_steps,
        finetune_steps=cfg.finetune_steps,
    )


def measure(cfg: KnowledgeConfig, prepared: Prepared, run_dir: Path, arm: str) -> dict[str, Any]:
    """Per-item hits of one run, cached with the checkpoint step and the items they were taken on."""
    items = prepared.items
    probe = prepared.train_frame_items
    if arm.endswith("+ft"):  # after fine-tuning, ask in the fine-tuning language only
        items = [it for it in items if it["lang"] == cfg.finetune_lang]
        probe = []

    def compute() -> dict[str, Any]:
        variant, tok, _ = load_checkpoint(run_dir, device=cfg.device)
        return {
            "hits": [r["hit"] for r in cloze.score_items(variant, tok, items, cfg.device, cfg.mc_samples)],
            "probe_hits": [
                r["hit"] for r in cloze.score_items(variant, tok, probe, cfg.device, cfg.mc_samples)
            ],
        }

    return measured(run_dir, [items, probe, cfg.mc_samples], compute)


def run_knowledge(cfg: KnowledgeConfig) -> dict[str, str]:
    """Prepare, train and measure every (seed, variant, arm), summarise; returns {name: path} written.
    Re-running the same command resumes: finished runs and measurements are reused."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(cfg, out)
    results = grid(cfg, prepared).run(lambda run_dir, arm: measure(cfg, prepared, run_dir, arm))
    cells, diffs, power_rows = summarize(cfg, prepared, results)
    return write_outputs(cfg, prepared, cells, diffs, power_rows, out)
