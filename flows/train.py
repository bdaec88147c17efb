"""train-variant and train-all: train diffusion variants and the AR baseline on a stored corpus version.

    prefect deployment run 'train-all/after-rebuild' -p corpus=sample -p budget=smoke
    python -c "from flows.train import train_all; train_all(corpus='sample', budget='smoke')"

A training run is one task (the trainer checkpoints and resumes on its own); its cache key is the full
training config (data version, budget, overrides) plus the source of training/, so re-running an
unchanged configuration returns the finished checkpoint at once. Runs land in
`<data root>/runs/<corpus>/<variant>-<budget>-<config hash>` (the data root must be a local path for training).
With `task_runner="dask:tcp://scheduler:8786"`, train-all runs the variants in parallel on Dask workers
(one GPU each); the default runs them one after another.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import task_run

from flows import artifacts, events
from flows.policy import TRAINING_CACHE_POLICY, make_task_runner, persisted, resolve_root, retry_policy
from storage.store import list_versions, open_version, params_hash
from wikimix.errors import ConfigError


def corpus_versions(root: str, corpus: str, version: str = "latest") -> tuple[str, str | None]:
    """`DATASET@VERSION` specs of the corpus's documents and of the newest significance table computed
    from exactly those documents (None when there is none)."""
    docs = open_version(root, f"{corpus}-docs", version)
    for sig in reversed(list_versions(root, f"{corpus}-sig")):
        if {"dataset": docs.dataset, "version": docs.version} in sig.manifest()["parents"]:
            return str(docs), str(sig)
    return str(docs), None


def run_dir(
    root: str, corpus: str, variant: str, budget: str, data: str, sig: str | None, overrides: dict
) -> str:
    """One directory per distinct training config, so a new data version never resumes an old run."""
    tag = params_hash({"data": data, "significance": sig, "overrides": overrides})
    return str(Path(root) / "runs" / corpus / f"{variant}-{budget}-{tag}")


def training_run_name() -> str:
    """`train/<variant>-<budget>-seed<seed>`, e.g. train/mdlm-bench-cpu-seed0."""
    params = task_run.parameters
    seed = (params.get("overrides") or {}).get("seed", 0)
    return f"train/{params['variant']}-{params['budget']}-seed{seed}"


class LiveTraining:
    """What a training task shows while it runs: a progress artifact and a log line every `every` steps
    (loss, tokens/s, ETA), and the loss-curve image artifact at each evaluation."""

    def __init__(self, name: str, variant: str, out: str, max_steps: int, every: int):
        self.name, self.variant, self.out, self.total, self.every = name, variant, out, max_steps, every
        self.first: tuple[int, float] | None = None  # (step, seconds) of the first line reported
        self.progress = artifacts.Progress(
            f"{name}-{variant}-training-progress", f"training {variant}: {out}"
        )
        self.logger = get_run_logger()

    def __call__(self, record: dict[str, Any]) -> None:
        if "horizon" in record:  # a time budget fixed the number of steps
            self.total = int(record["horizon"])
        elif record.get("split") == "val":
            self.logger.info("%s step %d: %s", self.variant, record["step"], _numbers(record))
            self.publish_curve()
        elif "loss" in record and (record["step"] % self.every == 0 or record["step"] >= self.total):
            step, rate, elapsed = record["step"], record["tok_per_s"], record["elapsed_s"]
            if self.first is None:  # elapsed_s counts from this process's start: a resume starts mid-run
                self.first = (step, elapsed)
            first_step, first_elapsed = self.first
            if step > first_step:
                seconds_per_step = (elapsed - first_elapsed) / (step - first_step)
            else:
                seconds_per_step = elapsed / max(step, 1)
            eta = seconds_per_step * max(self.total - step, 0)
            self.logger.info(
                "%s step %d/%d: loss %.4f, %.0f tokens/s, ETA %s",
                self.variant, step, self.total, record["loss"], rate, _duration(eta),
            )  # fmt: skip
            self.progress.update(step, self.total)
            if step >= self.total:  # the finished curve, also for a run that never evaluated
                self.publish_curve()

    def publish_curve(self) -> None:
        """Draw metrics.jsonl so far (training loss, validation NLL against steps) and publish it."""
        png = (
            Path(self.out).parent / f"{Path(self.out).name}-live-loss.png"
        )  # the run dir holds the checkpoint
        try:
            plot_live_curve(Path(self.out) / "metrics.jsonl", self.variant, png)
        except (OSError, ValueError) as exc:  # a live picture must never stop the training it shows
            self.logger.warning("live loss curve of %s not drawn: %s", self.out, exc)
            return
        artifacts.image(
            artifacts.artifact_key(self.name, "training-curves"),
            png,
            f"Loss curve of {self.out} (in training)",
        )


def plot_live_curve(metrics: Path, variant: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and "step" in r]
    val = [(r["step"], r["val_nll"]) for r in records if r.get("split") == "val" and "val_nll" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if train:
        ax.plot(*zip(*train, strict=True), label=f"{variant} training loss")
    if val:
        ax.plot(*zip(*val, strict=True), marker="o", label=f"{variant} validation NLL / token")
    ax.set_xlabel("step")
    ax.set_title(f"{variant}: training in progress")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _numbers(record: dict[str, Any]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in record.items() if isinstance(v, float)}


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


@task(cache_policy=TRAINING_CACHE_POLICY, task_run_name=training_run_name, **retry_policy(retries=1))
def train_run(
    root: str, variant: str, data: str, significance: str | None, budget: str, out: str, overrides: dict
) -> str:
    """Train (or resume) one variant or comparison entry (training.config.ENTRIES, e.g. embed-hyper);
    returns its checkpoint directory, and announces it (events.checkpoint_committed)."""
    from training.config import make_entry_config
    from training.trainer import train

    # training resolves DATASET@VERSION under $WIKIMIX_DATA: make it this flow's root (e.g. on a Dask worker)
    os.environ["WIKIMIX_DATA"] = root
    cfg = make_entry_config(
        variant, budget=budget, overrides=overrides, data=data, out=out, significance=significance or None
    )
    cfg.progress = False
    corpus = Path(out).parent.name
    every = cfg.log_every * max(1, cfg.max_steps // 20 // cfg.log_every)  # ~20 lines, at logged steps
    live = LiveTraining(corpus, variant, out, cfg.max_steps, every)
    last = train(cfg, on_log=live)
    metrics = {k: v for k, v in last.items() if isinstance(v, int | float)}
    get_run_logger().info("%s: %s", variant, metrics)
    events.checkpoint_committed(out, variant, data, metrics)
    return out


@task(**retry_policy(retries=1))
def publish_training_curves(name: str, run_dirs: list[str]) -> str:
    """Image artifact of the loss curves (training.evaluate draws them from each run's metrics.jsonl)."""
    from training.evaluate import load_model, plot_loss_curves

    names: set[str] = set()
    models = [load_model(d, "cpu", names) for d in run_dirs]
    png = Path(run_dirs[0]).parent / f"loss-curves-{params_hash(sorted(run_dirs))}.png"
    plot_loss_curves(models, png)
    return artifacts.image(
        artifacts.artifact_key(name, "training-curves"), png, "Loss curves of " + ", ".join(names)
    )


def _check_local(root: str) -> None:
    if "://" in root:
        raise ConfigError(f"training needs a local data root, got {root!r}")


@flow(name="train-variant", flow_run_name="train-variant/{corpus}-{variant}-{budget}", log_prints=True)
def train_variant(
    corpus: str = "sample",
    variant: str = "ar",
    budget: str = "smoke",
    version: str = "latest",
    overrides: dict[str, Any] | None = None,
) -> str:
    """Train one variant on the corpus's documents; returns the checkpoint directory."""
    root = resolve_root(None)
    _check_local(root)
    data, sig = corpus_versions(root, corpus, version)
    out = run_dir(root, corpus, variant, budget, data, sig, overrides or {})
    run = persisted(train_run, root)(root, variant, data, sig, budget, out, overrides or {})
    publish_training_curves(f"{corpus}-{variant}", [run])
    return run


@flow(name="train-all", flow_run_name="train-all/{corpus}-{budget}", log_prints=True)
def train_all(
    corpus: str = "sample",
    variants: list[str] = ["ar", "mdlm"],  # noqa: B006 - Prefect parameters are copied per run
    budget: str = "smoke",
    version: str = "latest",
    overrides: dict[str, Any] | None = None,
    task_runner: str = "threads:1",
) -> dict[str, str]:
    """Train every variant on the same data and budget; returns {variant: checkpoint directory}."""
    root = resolve_root(None)
    _check_local(root)
    data, sig = corpus_versions(root, corpus, version)
    get_run_logger().info("training %s on %s (significance: %s), budget %s", variants, data, sig, budget)
    step = persisted(train_run, root)
    with make_task_runner(task_runner) as runner:
        futures = {
            v: runner.submit(
                step,
                {
                    "root": root,
                    "variant": v,
                    "data": data,
                    "significance": sig,
                    "budget": budget,
                    "out": run_dir(root, corpus, v, budget, data, sig, overrides or {}),
                    "overrides": overrides or {},
                },
            )
            for v in variants
        }
        runs = {v: f.result() for v, f in futures.items()}
    publish_training_curves(corpus, list(runs.values()))
    events.training_completed(corpus, data.rpartition("@")[2], budget, runs)
    return runs
