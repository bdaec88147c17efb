"""torchrun DDP on CPU (gloo): 2 ranks x B rows train exactly like 1 rank x 2B rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import make_config
from training.trainer import train

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent


def losses(out: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_rank_with_the_doubled_batch(tmp_path):
    common = [
        "--set",
        "precision=fp32",
        "--set",
        "threads=1",
        "--set",
        "progress=false",
        "--set",
        "eval_every=0",
    ]
    common += ["--set", "eval_examples=8", "--set", "warmup_steps=2", "--set", "lr=3e-3"]
    two = tmp_path / "two"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += [
        "-m",
        "wikimix.cli",
        "train",
        "ar",
        "--data",
        "synthetic:markov",
        "--out",
        str(two),
        "--budget",
        "smoke",
    ]
    cmd += ["--max-steps", "8", "--batch-size", "4", *common]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one = tmp_path / "one"
    overrides = {c.split("=")[0]: c.split("=")[1] for c in common if "=" in c}
    train(
        make_config(
            "ar",
            budget="smoke",
            data="synthetic:markov",
            out=str(one),
            max_steps=8,
            batch_size=8,
            overrides=overrides,
        )
    )

    a, b = losses(two), losses(one)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 9))
    assert all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(a, b, strict=True)), (a, b)
    w2, w1 = load_file(two / "model.safetensors"), load_file(one / "model.safetensors")
    assert all(torch.allclose(w2[k], w1[k], atol=1e-5) for k in w1)
    state = json.loads((two / "state.json").read_text())
    assert state["world_size"] == 2 and state["tokens_seen"] == 8 * 8 * 32
    assert (two / "rng-rank0.safetensors").exists() and (two / "rng-rank1.safetensors").exists()
    # the two ranks drew different noise streams
    r0, r1 = load_file(two / "rng-rank0.safetensors"), load_file(two / "rng-rank1.safetensors")
    assert not torch.equal(r0["torch"], r1["torch"])
