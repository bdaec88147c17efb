"""One trainer for every variant: AdamW, warm-up + cosine, gradient clipping, bf16 autocast, gradient
accumulation, optional EMA, periodic evaluation, metrics.jsonl, a progress bar, exact resume, DDP.

    wikimix train mdlm --data NAME-docs --out runs/mdlm --budget bench-cpu
    torchrun --nproc-per-node 2 -m wikimix.cli train ar --data NAME-docs --out runs/ar --budget smoke

Re-running the same command on the same --out resumes from its last checkpoint: weights, optimizer,
EMA, every rank's RNG states and the data position are restored, so the loss curve continues exactly
as if the run had never stopped. Under torchrun (WORLD_SIZE > 1) gradients are averaged with DDP
(gloo on CPU, nccl on CUDA); each rank reads its own share of the shards.

Documents are tokenised once per (data version, tokenizer) into a stored token table that epochs, resumes
and later runs read (training/token_table.py); a resume seeks in it without tokenising anything.

The first start pins the data: `--data NAME-docs` (or `@latest`) is resolved to `NAME-docs@<version>`,
kept in the run marker and config.json, and a resume always reads that version. A resume whose --data
is unpinned keeps the pinned version, with a one-line warning on stderr when `latest` has moved since;
one naming another version or dataset is refused (error naming both). --significance alike.
--out must be new, empty, or a wikimix run: a file or someone else's directory is refused untouched.
A non-finite loss or gradient norm stops the run with a TrainingError before the optimizer steps on
it; the last checkpoint stays as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from training import checkpoint, run_dir
from training.config import TrainConfig
from training.data import DataOptions, MarkovData, ShardData, open_data
from training.models import load_variant, make_config
from training.tokenizers import BPETokenizer, ByteTokenizer, Tokenizer, load_tokenizer
from training.variant import Batch
from wikimix.errors import ConfigError, WikimixError


class TrainingError(WikimixError):
    """Training cannot go on: a non-finite loss or gradient."""


class LossModule(nn.Module):
    """Wraps a variant so DDP sees `loss(batch)` as the forward pass its hooks sync on."""

    def __init__(self, variant: nn.Module):
        super().__init__()
        self.variant = variant

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self.variant.loss(batch)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over warmup_steps, then cosine decay to lr * min_lr_ratio at max_steps."""
    if cfg.warmup_steps and step <= cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


CALIBRATION_STEPS = 10  # steps timed before a time-budgeted run fixes its schedule's horizon ...
CALIBRATION_SHARE = 0.1  # ... or fewer, once they have taken this share of the budget (a slow variant)


def calibrated(cfg: TrainConfig, timed_steps: int, seconds: float) -> bool:
    """Whether a time-budgeted run has timed enough steps to fix its horizon."""
    return timed_steps >= CALIBRATION_STEPS or seconds >= CALIBRATION_SHARE * cfg.max_minutes * 60


def time_horizon(cfg: TrainConfig, step: int, timed_steps: int, seconds: float) -> int:
    """The last step of a run given `max_minutes` of wall time: the steps that fit at the pace of the
    `timed_steps` just run (which took `seconds`), within max_steps and at least one more. The schedule
    then decays over the steps that will really run, instead of being cut off at a high learning rate."""
    per_step = seconds / max(1, timed_steps)
    fits = step + int((cfg.max_minutes * 60 - seconds) / per_step)
    return max(step + 1, min(cfg.max_steps, fits))


def on_horizon(cfg: TrainConfig, horizon: int) -> TrainConfig:
    """The schedule of a time-budgeted run: it ends at `horizon`, and warms up over at most a quarter of
    it (a slow variant that fits few steps must not spend them all warming up)."""
    return dataclasses.replace(cfg, max_steps=horizon, warmup_steps=min(cfg.warmup_steps, horizon // 4))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; matrices decay, norms / biases / 1-d parameters do not. On CUDA the fused kernel (one launch
    for every parameter); on CPU torch's default implementation, as before."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = True if params and all(p.is_cuda for p in params) else None
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def compiles(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the run compiles its backbone: 'auto' on CUDA only. On the project's CPU machine a compiled
    ar step was 1.30x faster but compiling took ~110 s before the first step, and again for every new
    shape (evaluation batches, variable-length variants): about what a bench-cpu run saves, and most of a
    short run (BENCHMARKS.md, issue 19). 'on' compiles on CPU too."""
    return cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda")


def compile_backbone(variant: nn.Module, cfg: TrainConfig, device: torch.device) -> None:
    """torch.compile the variant's backbone in place when `compiles`: the module tree and so the
    parameter names (state_dict keys, checkpoints) stay the same. A variant without a .backbone is left
    eager under 'auto' and refused under 'on'."""
    if not compiles(cfg, device):
        return
    backbone = getattr(variant, "backbone", None)
    if isinstance(backbone, nn.Module):
        backbone.compile()
    elif cfg.compile == "on":
        raise ConfigError(f"compile needs a variant with a .backbone module; {cfg.variant!r} has none")


def use_tf32(cfg: TrainConfig, device: torch.device) -> None:
    """TF32 matmuls for fp32 work on CUDA when cfg.tf32 (cuDNN convolutions use TF32 by default); on CPU
    nothing is touched."""
    if device.type == "cuda" and cfg.tf32:
        torch.set_float32_matmul_precision("high")


class EMA:
    """Exponential moving average of the weights, swapped in for evaluation."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().clone().float() for n, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for n, p in model.named_parameters():
            self.shadow[n].lerp_(p.detach().float(), 1 - self.decay)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module):
        backup = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(self.shadow[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.copy_(backup[n])


# ---- distributed ---------------------------------------------------------------------------------------


def _init_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device, bool]:
    """(rank, world_size, device, whether we started the process group)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise ConfigError(f"device {cfg.device!r} asked for but CUDA is not available")
    if want_cuda:
        device = torch.device(cfg.device if ":" in cfg.device else f"cuda:{local}")
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    started = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
        started = True
    return rank, world, device, started


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _all_sum(values: list[float], world: int, device: torch.device) -> list[float]:
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ---- setup ---------------------------------------------------------------------------------------------


def _tokenizer(cfg: TrainConfig, out: Path, data, rank: int, world: int, module) -> Tokenizer:
    """The run's tokenizer: a resumed run's own, the variant's required one, 'byte', a file, or BPE
    trained here on the train split (rank 0 trains and saves, the others load)."""
    if isinstance(data, MarkovData):
        return data.tok
    if (out / "tokenizer.json").exists():
        return load_tokenizer(out / "tokenizer.json")
    choice = getattr(module, "TOKENIZER", None) or cfg.tokenizer
    if choice != "bpe":
        return load_tokenizer(choice)
    staged = out / "tokenizer.json"
    if rank == 0:
        tok = BPETokenizer.train(data.texts("train", max_chars=cfg.tokenizer_train_chars), cfg.vocab_size)
        tok.save(staged)
    _barrier(world)
    return load_tokenizer(staged)


def _rewrite_metrics(path: Path, upto_step: int) -> None:
    """Drop records past the checkpoint we resume from: they will be recomputed."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["step"] <= upto_step
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---- evaluation ----------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    variant: nn.Module, data, cfg: TrainConfig, device: torch.device, world: int, split: str = "val"
) -> dict[str, Any]:
    """NLL per scored token over the eval pairs (a bound for diffusion variants), on a fixed seed and
    without touching the training RNG streams."""
    was_training = variant.training
    variant.eval()
    per_rank = math.ceil(cfg.eval_examples / world)
    total, count = 0.0, 0.0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed + 7919)
        for batch in data.eval_batches(split, batch_size=cfg.batch_size, max_examples=per_rank):
            with autocast(cfg, device):
                nll, n = variant.nll(batch.to(device))
            total, count = total + float(nll), count + float(n)
    total, count = _all_sum([total, count], world, device)
    variant.train(was_training)
    if not count:
        return {}
    return {
        f"{split}_nll": total / count,
        f"{split}_ppl": math.exp(min(total / count, 50)),
        f"{split}_tokens": int(count),
        "nll_is_bound": bool(variant.nll_is_bound),
    }


def resolve_precision(precision: str, device: torch.device) -> str:
    """'bf16' or 'fp32': 'auto' picks bf16 only where the device has native bf16 arithmetic."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def autocast(cfg: TrainConfig, device: torch.device):
    if resolve_precision(cfg.precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---- the loop ------------------------------------------------------------------------------------------


def train(cfg: TrainConfig, on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) the run `cfg` describes; returns the last logged metrics.

    `on_log` receives every record written to metrics.jsonl (rank 0), e.g. to report progress live."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world, device, started = _init_distributed(cfg)
    out = Path(cfg.out)
    existed = out.exists()
    fresh = rank == 0 and (not existed or (out.is_dir() and not any(out.iterdir())))
    try:
        return _train(cfg, rank, world, device, on_log)
    except WikimixError:
        if fresh and checkpoint.read_state(out) is None:
            run_dir.remove_unstarted_run(out, keep_dir=existed)  # bad input leaves no half-made run behind
        raise
    finally:
        if started:
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig, rank: int, world: int, device: torch.device, on_log: Callable | None = None
) -> dict[str, Any]:
    out = Path(cfg.out)
    marker = None
    if rank == 0:
        marker = checkpoint.check_run_dir(out)  # before anything touches it: refuses a file or a stranger
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.recover(out)
    _barrier(world)
    state = checkpoint.read_state(out)
    if state is not None:
        run_dir.check_resumable(out, cfg)
        if state.get("world_size", 1) != world:
            raise ConfigError(
                f"{out} was trained on {state.get('world_size', 1)} rank(s), not {world}: resume it on as many"
            )

    module = load_variant(cfg.variant)
    model_cfg = make_config(cfg.variant, cfg.model)
    longest = max(cfg.seq_len, cfg.prompt_max + cfg.cont_len)
    if getattr(model_cfg, "max_len", longest) < longest:
        raise ConfigError(
            f"model max_len {model_cfg.max_len} < {longest} (seq_len, or prompt_max + cont_len)"
        )
    if rank == 0:
        run_dir.write_pins(cfg, out, marker)
    _barrier(world)
    cfg = run_dir.pinned_config(cfg, out)
    options = DataOptions(
        seq_len=cfg.seq_len,
        batch_size=cfg.batch_size,
        val_frac=cfg.val_frac,
        test_frac=cfg.test_frac,
        prompt_min=cfg.prompt_min,
        prompt_max=cfg.prompt_max,
        cont_len=cfg.cont_len,
        seed=cfg.seed,
        rank=rank,
        world_size=world,
    )
    data = open_data(
        cfg.data, ByteTokenizer(), options, significance=cfg.significance or None, table=cfg.table or None
    )
    tok = _tokenizer(cfg, out, data, rank, world, module)
    data.tok = tok
    if isinstance(data, ShardData):  # tokenise once (or find the stored ids): rank 0 first, then the rest
        if rank == 0:
            data.token_table()
        _barrier(world)
        data.token_table()

    use_tf32(cfg, device)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    variant = module.build(model_cfg, tok.vocab_size, tok.special).to(device)
    optimizer = make_optimizer(variant, cfg)
    ema = EMA(variant, cfg.ema) if cfg.ema else None
    step, tokens_seen = 0, 0
    if state is not None:
        state = checkpoint.load_training_state(out, variant, optimizer, ema.shadow if ema else None, device)
        step, tokens_seen = state["step"], state["tokens_seen"]
        checkpoint.restore_rng(out, rank)
        if rank == 0:
            _rewrite_metrics(out / "metrics.jsonl", step)
    else:
        _seed_everything(cfg.seed + 1000 * rank)  # ranks draw different noise

    compile_backbone(variant, cfg, device)
    wrapped: nn.Module = LossModule(variant)
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(
            wrapped, device_ids=[device.index] if device.type == "cuda" else None
        )
    config_json = checkpoint.checkpoint_config(cfg.variant, model_cfg, cfg, tok.vocab_size)
    batches = data.train_batches(start=step * cfg.grad_accum)
    params = [p for p in variant.parameters() if p.requires_grad]
    metrics_file = open(out / "metrics.jsonl", "a") if rank == 0 else None  # noqa: SIM115 (closed below)
    progress = None
    if cfg.progress and rank == 0:
        from tqdm import tqdm

        progress = tqdm(total=cfg.max_steps, initial=step, desc=cfg.variant, unit="step", dynamic_ncols=True)

    def log(record: dict[str, Any]) -> None:
        if metrics_file is not None:
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            if on_log is not None:
                on_log(record)

    def save() -> None:
        stage = checkpoint.begin(out) if rank == 0 else out / checkpoint.STAGE
        _barrier(world)
        checkpoint.write_rng(stage, rank)
        _barrier(world)
        if rank == 0:
            state = {
                "step": step,
                "tokens_seen": tokens_seen,
                "batches_consumed": step * cfg.grad_accum,
                "world_size": world,
                "horizon": horizon,
            }
            checkpoint.write_main(
                stage, variant, optimizer, ema.shadow if ema else None, state, config_json, tok
            )
            checkpoint.commit(out)
        _barrier(world)

    last: dict[str, Any] = {}
    precision = resolve_precision(cfg.precision, device)
    horizon = state.get("horizon") if state is not None else None
    if horizon:  # a time-budgeted run resumes on the schedule it fixed
        cfg = on_horizon(cfg, horizon)
    variant.train()
    start_time, start_cpu, start_tokens, start_step = (
        time.perf_counter(),
        time.process_time(),
        tokens_seen,
        step,
    )
    try:
        last_step = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at else cfg.max_steps
        while step < last_step:
            timed, elapsed = step - start_step, time.perf_counter() - start_time
            if cfg.max_minutes and not horizon and timed and calibrated(cfg, timed, elapsed):
                horizon = time_horizon(cfg, step, timed, elapsed)
                horizon = int(_all_sum([horizon if rank == 0 else 0], world, device)[0])
                cfg = on_horizon(cfg, horizon)
                last_step = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at else cfg.max_steps
                log({"step": step, "horizon": horizon, "max_minutes": cfg.max_minutes})
                if progress is not None:
                    progress.total = horizon
                    progress.refresh()
            step += 1
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_loss = torch.zeros((), device=device)
            for micro in range(cfg.grad_accum):
                batch = next(batches).to(device)
                sync = micro == cfg.grad_accum - 1 or world == 1
                with contextlib.nullcontext() if sync else wrapped.no_sync(), autocast(cfg, device):
                    loss, variant_metrics = wrapped(batch)
                (loss / cfg.grad_accum).backward()
                step_loss += loss.detach() / cfg.grad_accum
                tokens_seen += batch.num_tokens * world
            # max_norm inf (no clipping) still returns the norm, for the finiteness check
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf)
            if not torch.isfinite(grad_norm):  # DDP averaged the gradients: every rank sees this norm
                raise _diverged(step, float(step_loss), float(grad_norm), lr, out)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(variant)
            if progress is not None:
                progress.update(1)

            if step % cfg.log_every == 0 or step == cfg.max_steps:
                elapsed = time.perf_counter() - start_time
                loss_value = _all_sum([float(step_loss)], world, device)[0] / world
                if not math.isfinite(loss_value):  # a loss term with no gradient; the same on every rank
                    raise _diverged(step, loss_value, float(grad_norm), lr, out)
                last = {
                    "step": step,
                    "loss": loss_value,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "tokens": tokens_seen,
                    "tok_per_s": (tokens_seen - start_tokens) / max(elapsed, 1e-9),
                    # wall time, and this process's CPU time (robust to a busy machine), since training began
                    "elapsed_s": elapsed,
                    "cpu_s": time.process_time() - start_cpu,
                    "precision": precision,
                    **variant_metrics,
                }
                log(last)
                if progress is not None:
                    progress.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{last['tok_per_s']:.0f}")
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.max_steps:
                with ema.swapped_in(variant) if ema else contextlib.nullcontext():
                    result = evaluate(variant, data, cfg, device, world)
                if result:
                    log({"step": step, "split": "val", **result})
                    last = {**last, **result}
            if (cfg.save_every and step % cfg.save_every == 0) or step == last_step:
                save()
    finally:
        if progress is not None:
            progress.close()
        if metrics_file is not None:
            metrics_file.close()
    return last


def _diverged(step: int, loss: float, grad_norm: float, lr: float, out: Path) -> TrainingError:
    """The error for a non-finite gradient norm (raised before that step's optimizer update) or loss (at the
    step's log record): either way before any checkpoint could hold it."""
    return TrainingError(
        f"non-finite training values at step {step}: loss {loss:.4g}, gradient norm {grad_norm:.4g} "
        f"(lr {lr:.3g}); stopped, {out} keeps its last checkpoint: lower lr or "
        "check the data"
    )


def _train_or_error(name: str, cfg: TrainConfig) -> tuple[str, str | None]:
    print(f"== train {name} -> {cfg.out}", flush=True)
    try:
        train(cfg)
    except WikimixError as exc:
        return name, str(exc)
    return name, None


def train_many(configs: dict[str, TrainConfig], jobs: int = 1) -> dict[str, str]:
    """Train (or resume) every named run, `jobs` at a time in spawned processes (give each config
    threads = cores // jobs); returns {name: error line} of the runs that could not train, so one run
    that fails on bad input does not sink the others."""
    if jobs <= 1:
        results = [_train_or_error(name, cfg) for name, cfg in configs.items()]
    else:  # spawn: each worker owns its torch thread pool; fork would copy the parent's
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_train_or_error, configs, configs.values()))
    return {name: error for name, error in results if error}
