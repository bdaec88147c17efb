"""semantic-insert's insertion-order bound on `synthetic:markov`, whose entropy rate is known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from training.checkpoint import load_checkpoint
from training.config import make_config
from training.data import DataOptions, MarkovData
from training.insertion_bound import insertion_order_nll, step_distribution
from training.trainer import train


def bound_per_token(run, data: MarkovData) -> tuple[float, float]:
    """(bound, chain's own NLL) per continuation token over the same 32 test sequences."""
    variant, _, _ = load_checkpoint(run)
    variant.eval()
    order = torch.Generator().manual_seed(0)
    bound = oracle = tokens = 0.0
    for batch in data.eval_batches("test", batch_size=16, max_examples=32):
        oracle += data.oracle_nll(batch)[0]
        for row in batch.tokens.tolist():
            bound += insertion_order_nll(variant, row, 8, torch.randperm(len(row), generator=order))
            tokens += 8
    return bound / tokens, oracle / tokens


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("insertion")
    out = {}
    for steps in (1, 200):
        cfg = make_config(
            "semantic-insert", budget="smoke", data="synthetic:markov", out=str(base / f"s{steps}"),
            progress=False, max_steps=steps, eval_every=0, save_every=0, model={"order": "random"},
        )  # fmt: skip
        train(cfg)
        out[steps] = base / f"s{steps}"
    return out


def test_every_step_is_a_distribution(runs):
    variant, _, _ = load_checkpoint(runs[200])
    for seq, prompt_len in (([97, 98, 99, 100], 2), ([97], 1), ([97, 98], 0)):
        log_stop, log_p = step_distribution(variant, seq, prompt_len)
        assert log_p.shape == (len(seq) + 1 - prompt_len, variant.vocab_size)
        assert math.isclose(math.exp(log_stop) + float(log_p.exp().sum()), 1.0, rel_tol=1e-9)


def test_bound_sits_above_the_entropy_rate_and_falls_with_training(runs):
    data = MarkovData(DataOptions(prompt_min=8, cont_len=8))
    untrained, oracle = bound_per_token(runs[1], data)
    trained, _ = bound_per_token(runs[200], data)
    # an upper bound on -log p(x) can never beat the chain itself, on the same sequences
    assert abs(oracle - data.entropy_rate) < 0.15 and trained > oracle
    # a random order costs up to log(8!) / 8 nats per token of order information on top of -log p(x)
    assert trained < untrained / 2 and trained - math.log(math.factorial(8)) / 8 < math.log(8) + 0.5
