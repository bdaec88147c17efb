"""`mdlm` and the shared masked-diffusion samplers."""

from __future__ import annotations

import math

import pytest
import torch

from training import samplers
from training.config import make_config
from training.data import DataOptions, MarkovData
from training.models import load_variant
from training.models import make_config as model_config
from training.tokenizers import ByteTokenizer
from training.trainer import train
from training.variant import Batch
from wikimix.errors import ConfigError

torch.set_num_threads(1)
TOK = ByteTokenizer()
MASK = TOK.special.mask_id
TEXT = ["Kyiv is the capital of Ukraine.", "Hanoi is the capital of Vietnam"]


def tiny(name: str = "mdlm", **kw):
    torch.manual_seed(0)
    cfg = model_config(name, {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 128, **kw})
    return load_variant(name).build(cfg, TOK.vocab_size, TOK.special)


def overfit(model, batch: Batch, steps: int, lr: float = 3e-3) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # 1/t weights make rare huge gradients
        opt.step()


def reconstruction_accuracy(model, batch: Batch, rate: float = 0.3) -> float:
    """Share of tokens recovered (argmax) when `rate` of them are masked."""
    g = torch.Generator().manual_seed(0)
    masked = torch.rand(batch.tokens.shape, generator=g) < rate
    logits = model.denoise_logits(batch.tokens.masked_fill(masked, MASK))
    return float((logits.argmax(-1)[masked] == batch.tokens[masked]).float().mean())


def test_mdlm_overfits_a_tiny_batch():
    model = tiny()
    # two sentences, 8 copies each: 16 noise levels per step
    batch = Batch.from_tokens(torch.tensor([TOK.encode(t) for t in TEXT]).repeat(8, 1))
    start, n = model.nll(batch)
    assert float(start) / int(n) > 5.0
    overfit(model, batch, 250)
    model.eval()
    bound, n = model.nll(batch)
    assert float(bound) / int(n) < 1.0
    assert reconstruction_accuracy(model, batch) > 0.8


def test_loss_masks_only_scored_positions_and_never_predicts_the_mask():
    model = tiny()
    tokens = torch.tensor([TOK.encode(t) for t in TEXT])
    batch = Batch.from_tokens(tokens, prompt_len=torch.tensor([10, 20]))
    batch.pad_mask[0, 28:] = False
    seen = []
    model.backbone.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    for _ in range(20):
        model.loss(batch)
    x_t = torch.stack(seen)
    masked = x_t == MASK
    assert not masked[:, 0, :10].any() and not masked[:, 1, :20].any()  # prompt never noised
    assert not masked[:, 0, 28:].any()  # nor padding
    assert masked[:, 0, 10:28].any() and masked[:, 1, 20:].any()
    logits = model.denoise_logits(x_t[0])
    assert torch.isinf(logits[..., MASK]).all()  # SUBS: zero mass on the mask token


def test_antithetic_times_are_evenly_spread():
    model = tiny()
    t = model.sample_t(8, torch.device("cpu")).sort().values
    gaps = t[1:] - t[:-1]
    assert torch.allclose(gaps, torch.full_like(gaps, (1 - 1e-3) / 8), atol=1e-5)
    assert (t >= 1e-3).all() and (t < 1).all()
    assert model.loss_weight(torch.tensor([0.5])).item() == 2.0  # -alpha'/(1-alpha) for alpha_t = 1 - t


def test_generate_keeps_prompt_and_fills_every_position_with_each_sampler():
    model = tiny().eval()
    prompt = torch.tensor([TOK.encode("Kyiv is"), TOK.encode("Hanoi i")])
    for method in samplers.METHODS:
        g = torch.Generator().manual_seed(1)
        out = model.generate(prompt, 10, method=method, steps=8, block_len=5, generator=g)
        assert out.shape == (2, 17) and torch.equal(out[:, :7], prompt), method
        assert not (out == MASK).any(), method
        g = torch.Generator().manual_seed(1)
        again = model.generate(prompt, 10, method=method, steps=8, block_len=5, generator=g)
        assert torch.equal(out, again), method  # seeded: reproducible


def test_low_confidence_sampler_commits_most_confident_first_and_blocks_go_left_to_right():
    v = 5
    order = []

    def denoise(x):
        order.append((x == 4).sum().item())
        # position i predicts token i % 4 with confidence growing with i
        logits = torch.zeros(x.shape[0], x.shape[1], v)
        for i in range(x.shape[1]):
            logits[:, i, i % 4] = float(i)
        return logits

    x = torch.full((1, 6), 4)
    out = samplers.sample(denoise, x, mask_id=4, method="low_confidence", steps=3, temperature=0)
    assert out.tolist() == [[0, 1, 2, 3, 0, 1]]
    assert order == [6, 4, 2]  # two per step
    first_filled = []

    def spy(x):
        first_filled.append((x != 4).nonzero()[:, 1].tolist())
        return denoise(x)

    samplers.sample(spy, torch.full((1, 6), 4), 4, method="semi_ar", steps=6, block_len=3, temperature=0)
    assert all(p < 3 for p in first_filled[2])  # after the first block's 3 steps: only block 1 filled
    assert first_filled[3] == [0, 1, 2]


def test_ancestral_reveals_about_t_minus_s_over_t_per_step():
    calls = []

    def denoise(x):
        calls.append(int((x == 9).sum()))
        return torch.zeros(x.shape[0], x.shape[1], 10)

    samplers.sample(denoise, torch.full((200, 20), 9), 9, method="ancestral", steps=4)
    # after step 1 of 4 about 1/4 of the 4000 masks are gone; every position is filled at the end
    assert calls[0] == 4000 and abs(calls[1] - 3000) < 150


def test_remdm_revises_decoded_tokens():
    seen_remasked = []

    def denoise(x):
        return torch.zeros(x.shape[0], x.shape[1], 10)

    x = torch.full((50, 20), 9)
    prompt = x.clone()
    prompt[:, :5] = 1
    g = torch.Generator().manual_seed(0)
    out = samplers.sample(denoise, prompt, 9, method="remdm", steps=16, eta=0.5, generator=g)
    assert (out[:, :5] == 1).all() and not (out == 9).any()

    def counting(x):
        seen_remasked.append(x.clone())
        return denoise(x)

    samplers.sample(
        counting, prompt, 9, method="remdm", steps=16, eta=0.5, generator=torch.Generator().manual_seed(0)
    )
    remasked = any(
        ((a != 9) & (b == 9))[:, 5:].any() for a, b in zip(seen_remasked, seen_remasked[1:], strict=False)
    )
    assert remasked  # some decoded tokens went back to mask at least once
    assert all((s[:, :5] == 1).all() for s in seen_remasked)  # never the prompt


def test_gumbel_sampling_in_float64_matches_the_softmax_and_top_p():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -6.0]]).expand(20000, -1)
    g = torch.Generator().manual_seed(0)
    draws = samplers.sample_tokens(logits, temperature=1.0, generator=g)
    freq = torch.bincount(draws, minlength=5).double() / 20000
    assert torch.allclose(freq, logits[0].double().softmax(-1), atol=0.01)
    draws = samplers.sample_tokens(logits, temperature=1.0, top_p=0.7, generator=g)
    assert set(draws.unique().tolist()) == {0, 1}  # 0.64 + 0.24 reaches 0.7
    assert (samplers.sample_tokens(logits[:3], temperature=0) == 0).all()
    filtered = samplers.top_p_filter(logits[:1], 0.5)
    assert torch.isinf(filtered[0, 1:]).all() and filtered[0, 0] == 2.0
    with pytest.raises(ConfigError):
        samplers.sample_tokens(logits, top_p=0)
    with pytest.raises(ConfigError, match="unknown sampler"):
        samplers.sample(lambda x: x, torch.zeros(1, 2, dtype=torch.long), 0, method="beam")
    with pytest.raises(ConfigError, match="steps"):
        samplers.sample(lambda x: x, torch.zeros(1, 2, dtype=torch.long), 0, steps=0)


@pytest.mark.slow
def test_mdlm_bound_stays_above_the_markov_entropy(tmp_path):
    cfg = make_config(
        "mdlm",
        budget="smoke",
        data="synthetic:markov",
        out=str(tmp_path / "mdlm"),
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
            model={"nll_samples": 32},
        ),
    )
    result = train(cfg)
    source = MarkovData(DataOptions(batch_size=64, prompt_min=16, cont_len=16))
    oracle, n = source.oracle_nll(next(source.eval_batches("val", max_examples=64)))
    assert result["nll_is_bound"] is True
    # a bound: never below the chain's own NLL; and learned: well below a uniform guess over 8 letters
    assert oracle / n - 0.02 < result["val_nll"] < math.log(8)
