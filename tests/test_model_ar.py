"""`ar`: overfits, scores only after the prompt, generates with a KV cache, approaches a known entropy."""

from __future__ import annotations

import pytest
import torch

from training.config import make_config
from training.data import DataOptions, MarkovData
from training.models import load_variant
from training.models import make_config as model_config
from training.tokenizers import ByteTokenizer
from training.trainer import train
from training.variant import Batch

torch.set_num_threads(1)
TOK = ByteTokenizer()
TEXT = ["Kyiv is the capital of Ukraine.", "Hanoi is the capital of Vietnam"]


def tiny(name: str = "ar", **kw):
    torch.manual_seed(0)
    cfg = model_config(name, {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 128, **kw})
    return load_variant(name).build(cfg, TOK.vocab_size, TOK.special)


def overfit(model, batch: Batch, steps: int, lr: float = 1e-2) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_ar_overfits_a_tiny_batch():
    model = tiny()
    batch = Batch.from_tokens(torch.tensor([TOK.encode(t) for t in TEXT]))
    start = model.loss(batch)[0].item()
    assert start > 5.0  # ~log(260) at initialisation
    assert overfit(model, batch, 120) < 0.05
    nll, n = model.nll(batch)
    assert int(n) == 2 * 30 and float(nll) / int(n) < 0.05
    out = model.eval().generate(batch.tokens[:, :5], 26, temperature=0)
    assert [TOK.decode(r) for r in out.tolist()] == TEXT  # memorised continuations, greedily


def test_prompt_positions_and_padding_are_never_scored():
    model = tiny()
    tokens = torch.tensor([TOK.encode(t) for t in TEXT])
    batch = Batch.from_tokens(tokens, prompt_len=20)
    batch.pad_mask[1, 25:] = False
    nll, n = model.nll(batch)
    assert int(n) == (31 - 20) + (25 - 20)
    changed = tokens.clone()
    changed[1, 25:] = 7  # padding content must not matter
    again, _ = model.nll(Batch(changed, batch.pad_mask, batch.prompt_len))
    assert torch.allclose(nll, again)


def test_generation_keeps_the_prompt_and_cached_sampling_matches_full_recompute():
    model = tiny().eval()
    prompt = torch.tensor([TOK.encode("Kyiv is"), TOK.encode("Hanoi i")])
    out = model.generate(prompt, 12, temperature=0)
    assert out.shape == (2, 19) and torch.equal(out[:, :7], prompt)
    x = prompt
    for _ in range(12):  # greedy without a cache: one full forward per token
        logits = model.head(model.backbone(x))[:, -1]
        x = torch.cat([x, logits.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, x)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = model.generate(prompt, 8, temperature=1.0, top_p=0.9, generator=g1)
    assert torch.equal(a, model.generate(prompt, 8, temperature=1.0, top_p=0.9, generator=g2, steps=64))


@pytest.mark.slow
def test_ar_nll_approaches_the_markov_entropy(tmp_path):
    cfg = make_config(
        "ar",
        budget="smoke",
        data="synthetic:markov",
        out=str(tmp_path / "ar"),
        max_steps=300,
        overrides=dict(
            lr=3e-3,
            warmup_steps=10,
            batch_size=16,
            seq_len=32,
            eval_every=0,
            save_every=0,
            progress=False,
            log_every=100,
            precision="fp32",
            eval_examples=64,
            threads=1,
            prompt_min=16,
            cont_len=16,
        ),
    )
    result = train(cfg)
    source = MarkovData(DataOptions(batch_size=64, prompt_min=16, cont_len=16))
    oracle, n = source.oracle_nll(next(source.eval_batches("val", max_examples=64)))
    assert result["val_tokens"] == n
    # the chain's own NLL of these tokens is the floor; the trained model gets within 0.1 nats of it
    assert oracle / n - 0.02 < result["val_nll"] < oracle / n + 0.1
    assert abs(oracle / n - source.entropy_rate) < 0.15
