"""The trainer: exact resume (stop/resume and SIGKILL), checkpoints, schedules, stored data, CLI errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from training import checkpoint
from training.config import BUDGETS, TrainConfig, make_config, parse_overrides
from training.trainer import lr_at, train
from wikimix.errors import ConfigError

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
QUIET = dict(progress=False, threads=1)


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def curve(records: list[dict]) -> list[tuple]:
    return [(r["step"], r.get("loss"), r.get("val_nll")) for r in records]


def smoke(variant: str, out: Path, **overrides) -> TrainConfig:
    return make_config(
        variant, budget="smoke", data="synthetic:markov", out=str(out), overrides={**QUIET, **overrides}
    )


def test_stopped_and_resumed_run_reproduces_the_uninterrupted_curve(tmp_path):
    # EMA and gradient accumulation on, so their state must survive the restart too
    extra = dict(ema=0.9, grad_accum=2, eval_every=5, save_every=0)
    full = train(smoke("mdlm", tmp_path / "full", **extra))
    train(smoke("mdlm", tmp_path / "split", stop_at=7, **extra))
    assert checkpoint.read_state(tmp_path / "split")["step"] == 7
    resumed = train(smoke("mdlm", tmp_path / "split", **extra))
    assert curve(metrics(tmp_path / "full")) == curve(metrics(tmp_path / "split"))
    assert full["val_nll"] == resumed["val_nll"]
    assert [r for r in metrics(tmp_path / "full") if "loss" in r][-1]["tokens"] == 20 * 2 * 4 * 32
    for name in ("model.safetensors", "ema.safetensors"):
        from safetensors.torch import load_file

        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "split" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)


def _run_cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "wikimix.cli", *args], cwd=REPO, env=env, **kw)


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_curve(tmp_path, xquad_docs, data_root):
    out = tmp_path / "killed"
    args = ["train", "ar", "--data", "xq-docs", "--out", str(out), "--budget", "smoke", "--max-steps", "40"]
    args += ["--set", "save_every=4", "--set", "progress=false", "--set", "threads=1"]
    proc = _run_cli(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        state = checkpoint.read_state(out) if (out / "state.json").exists() else None
        if state and state["step"] >= 12:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(r["step"] for r in metrics(out))
    assert killed_at < 40
    resumed = _run_cli(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    full = make_config(
        "ar",
        budget="smoke",
        data="xq-docs",
        out=str(tmp_path / "full"),
        max_steps=40,
        overrides={**QUIET, "save_every": 4},
    )
    train(full)
    assert curve(metrics(out)) == curve(metrics(tmp_path / "full"))


def test_interrupted_checkpoint_writes_roll_back_or_forward(tmp_path):
    out = tmp_path / "run"
    train(smoke("ar", out, max_steps=4, save_every=2))
    before = (out / "model.safetensors").read_bytes()
    stage = checkpoint.begin(out)  # killed while writing: no COMPLETE mark
    (stage / "model.safetensors").write_bytes(b"half")
    checkpoint.recover(out)
    assert not stage.exists() and (out / "model.safetensors").read_bytes() == before
    # killed while moving files into place: finished on recovery
    stage = checkpoint.begin(out)
    state = json.loads((out / "state.json").read_text())
    (stage / "state.json").write_text(json.dumps({**state, "step": 99}))
    (stage / checkpoint.COMPLETE).write_text("")
    checkpoint.recover(out)
    assert checkpoint.read_state(out)["step"] == 99 and not stage.exists()


def test_lr_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(data="x", out="y", lr=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(5, cfg) == pytest.approx(5e-4)
    assert lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(0.55e-3)
    assert lr_at(110, cfg) == pytest.approx(1e-4)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 110))


def test_trains_on_stored_documents_with_bpe_and_significance_then_generates(tmp_path, xquad_docs, xquad_sig):
    from wikimix.cli import app

    out = tmp_path / "mdlm"
    cfg = make_config(
        "mdlm",
        budget="smoke",
        data="xq-docs",
        significance="xq-sig",
        tokenizer="bpe",
        out=str(out),
        overrides={
            **QUIET,
            "vocab_size": 600,
            "tokenizer_train_chars": 200_000,
            "max_steps": 6,
            "prompt_min": 100,
            "prompt_max": 200,
            "cont_len": 50,
            "eval_examples": 4,
        },
    )
    result = train(cfg)
    assert result["val_tokens"] == 4 * 50 and result["nll_is_bound"] is True
    assert math.isfinite(result["val_nll"])
    variant, tok, loaded = checkpoint.load_checkpoint(out)
    assert tok.vocab_size <= 600 and not variant.training
    assert (loaded.data, loaded.significance) == (str(xquad_docs), str(xquad_sig))  # pinned versions
    prompt = torch.tensor([tok.encode("The Panthers defense gave up just 308 points")])
    completion = variant.generate(prompt, 50, steps=8, generator=torch.Generator().manual_seed(0))
    assert completion.shape == (1, prompt.shape[1] + 50) and torch.equal(
        completion[:, : prompt.shape[1]], prompt
    )

    runner = CliRunner()
    res = runner.invoke(
        app, ["generate", "--ckpt", str(out), "--prompt", "Kyiv", "--steps", "4", "--max-new-tokens", "50"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.strip()


def test_resuming_with_changed_settings_is_refused(tmp_path):
    train(smoke("ar", tmp_path / "run", max_steps=2))
    with pytest.raises(ConfigError, match=r"different settings \(lr\)"):
        train(smoke("ar", tmp_path / "run", max_steps=4, lr=0.5))
    with pytest.raises(ConfigError, match="holds a 'ar' run"):
        train(smoke("mdlm", tmp_path / "run", max_steps=4))
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    (tmp_path / "run" / "state.json").write_text(json.dumps({**state, "world_size": 2}))
    with pytest.raises(ConfigError, match="trained on 2 rank"):
        train(smoke("ar", tmp_path / "run", max_steps=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(overrides={"lr": "-1"}), "lr must be > 0"),
        (dict(overrides={"lr": "fast"}), "bad value for lr"),
        (dict(overrides={"batch_size": "0"}), "batch_size must be >= 1"),
        (dict(overrides={"precision": "fp8"}), "precision must be"),
        (dict(overrides={"warp": "9"}), "unknown training option 'warp'"),
        (dict(budget="huge"), "unknown budget 'huge'"),
        (dict(overrides={"ema": "1.5"}), "ema must be in"),
    ],
)
def test_bad_config_values_are_one_line_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_config("ar", data="synthetic:markov", out=str(tmp_path), **kwargs)
    assert "\n" not in str(err.value)


def test_bad_cli_input_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys, data_root):
    from wikimix.cli import main

    for args, message in [
        (
            ["train", "gpt5", "--data", "synthetic:markov", "--out", str(tmp_path / "a")],
            "unknown variant 'gpt5'",
        ),
        (
            [
                "train",
                "ar",
                "--data",
                "synthetic:markov",
                "--out",
                str(tmp_path / "b"),
                "--set",
                "model.d_model=33",
                "--budget",
                "smoke",
            ],
            "divisible",
        ),
        (
            [
                "train",
                "ar",
                "--data",
                "synthetic:markov",
                "--out",
                str(tmp_path / "c"),
                "--set",
                "model.depth=3",
            ],
            "no model option(s) depth",
        ),
        (["train", "ar", "--data", "missing-docs", "--out", str(tmp_path / "d")], "no committed version"),
        (["generate", "--ckpt", str(tmp_path / "none"), "--prompt", "x"], "holds no checkpoint"),
    ]:
        monkeypatch.setattr(sys, "argv", ["wikimix", *args])
        with pytest.raises(SystemExit) as exit_:
            main()
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
        assert message in lines[0]


def test_budgets_keep_every_entry_within_ten_percent_of_ar():
    from training.blocks import count_parameters
    from training.config import ENTRIES
    from training.models import load_variant
    from training.models import make_config as model_config
    from training.tokenizers import ByteTokenizer, SpecialIds

    special = SpecialIds(0, 1, 2, 3)
    for budget in ("bench-cpu", "bench-gpu"):
        sizes = {}
        for name, (variant, model) in ENTRIES.items():
            cfg = make_config(variant, budget=budget, data="x", out="y", model=model)
            byte = getattr(load_variant(variant), "TOKENIZER", None) == "byte"
            vocab = ByteTokenizer.vocab_size if byte else cfg.vocab_size
            sp = ByteTokenizer.special if byte else special
            module = load_variant(variant)
            sizes[name] = count_parameters(module.build(model_config(variant, cfg.model), vocab, sp))
        assert all(abs(n / sizes["ar"] - 1) <= 0.1 for n in sizes.values()), (budget, sizes)
        if budget == "bench-cpu":
            assert 5.5e6 < sizes["ar"] < 6.5e6 and BUDGETS[budget]["train"]["max_steps"] == 450
        else:
            assert 15e6 < sizes["ar"] < 19e6


def test_overrides_parse_model_options():
    assert parse_overrides(["lr=1e-3", "model.d_model=64", "model.attn=mla"]) == {
        "lr": "1e-3",
        "model": {"d_model": 64, "attn": "mla"},
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["lr"])


def test_registry_names_every_reserved_variant_and_explains_missing_ones(monkeypatch):
    from training import models

    assert {"ar", "mdlm", "llada-byte", "sdd", "embed", "semantic-insert"} <= set(models.VARIANTS)
    with pytest.raises(ConfigError, match="unknown variant 'gpt'"):
        models.load_variant("gpt")
    monkeypatch.setitem(models.VARIANTS, "ghost", "training.models.ghost")
    with pytest.raises(ConfigError, match="not available yet"):
        models.load_variant("ghost")
    monkeypatch.setitem(models.VARIANTS, "nobuild", "training.variant")
    with pytest.raises(ConfigError, match="lacks Config or build"):
        models.load_variant("nobuild")
    with pytest.raises(ConfigError, match="bad model config"):
        models.make_config("mdlm", {"sampling_eps": "x"})


def test_time_horizon_fits_the_budget_within_max_steps():
    from training.trainer import time_horizon

    cfg = make_config("ar", budget="smoke", data="synthetic:markov", out="x", max_steps=1000)
    cfg.max_minutes = 1.0
    # 10 steps took 6 s: the remaining 54 s fit 90 more steps
    assert time_horizon(cfg, 10, 10, 6.0) == 100
    assert time_horizon(cfg, 10, 10, 0.06) == 1000  # faster than the budget needs: max_steps holds
    assert time_horizon(cfg, 10, 10, 120.0) == 11  # already over: one more step, then stop


def test_time_budgeted_run_fixes_its_horizon_and_resumes_on_it(tmp_path):
    # a budget of 6 ms: the first step alone exceeds a tenth of it, so the run plans on one timed step
    cfg = smoke("ar", tmp_path / "run", max_steps=400, max_minutes=1e-4, save_every=0)
    last = train(cfg)
    state = checkpoint.read_state(tmp_path / "run")
    assert state["horizon"] == state["step"] == last["step"] == 2  # one timed step, then one more
    assert last["lr"] == pytest.approx(cfg.lr * cfg.min_lr_ratio)  # the schedule decayed by the horizon
    assert {"step": 1, "horizon": 2, "max_minutes": 1e-4} in metrics(tmp_path / "run")
    again = train(smoke("ar", tmp_path / "run", max_steps=400, max_minutes=5, save_every=0))
    assert checkpoint.read_state(tmp_path / "run")["step"] == 2 and again == {}


def test_auto_precision_uses_bf16_only_where_the_device_has_it():
    from training.trainer import resolve_precision

    cpu = torch.device("cpu")
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert make_config("ar", data="x", out="y").precision == "auto"


def test_a_slow_run_calibrates_before_ten_steps():
    from training.trainer import calibrated

    cfg = make_config("sdd", budget="bench-cpu", data="x", out="y")
    assert cfg.max_minutes == 15
    assert not calibrated(cfg, 3, 60.0) and calibrated(cfg, 10, 60.0)
    assert calibrated(cfg, 2, 90.0)  # two 45-second steps are a tenth of 15 minutes: enough to plan on
