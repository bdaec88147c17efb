"""`llada-byte`: byte-level LLaDA-style masked diffusion with MLA attention and Mish feed-forwards."""

from __future__ import annotations

import pytest
import torch

from training.blocks import MishFFN, MultiHeadLatentAttention
from training.models import load_variant
from training.models import make_config as model_config
from training.tokenizers import BPETokenizer, ByteTokenizer
from training.variant import Batch
from wikimix.errors import ConfigError

torch.set_num_threads(1)
TOK = ByteTokenizer()
TEXT = ["Київ — столиця України.", "東京は日本の首都です。Tokyo"]


def tiny():
    torch.manual_seed(0)
    cfg = model_config("llada-byte", {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 128})
    return load_variant("llada-byte").build(cfg, TOK.vocab_size, TOK.special)


def batch_of(texts: list[str]) -> Batch:
    ids = [TOK.encode(t) for t in texts]
    width = max(map(len, ids))
    tokens = torch.tensor([i + [TOK.special.pad_id] * (width - len(i)) for i in ids])
    return Batch.from_tokens(tokens, pad_id=TOK.special.pad_id)


def test_llada_byte_is_built_from_mla_and_mish_and_needs_bytes():
    model = tiny()
    assert all(isinstance(b.attn, MultiHeadLatentAttention) for b in model.backbone.blocks)
    assert all(isinstance(b.ffn, MishFFN) for b in model.backbone.blocks)
    assert load_variant("llada-byte").TOKENIZER == "byte" and model.nll_is_bound
    bpe = BPETokenizer.train(["abc def"] * 10, vocab_size=300)
    with pytest.raises(ConfigError, match="byte tokenizer"):
        load_variant("llada-byte").build(model_config("llada-byte", {}), bpe.vocab_size, bpe.special)


def test_llada_masking_follows_t_per_sequence():
    model = tiny()
    t = torch.tensor([0.0, 0.5, 1.0])
    p = model.mask_probability(t, Batch.from_tokens(torch.zeros(3, 4, dtype=torch.long)))
    assert torch.allclose(p[:, 0], torch.tensor([1e-3, 0.5 + 0.5e-3, 1.0]), atol=1e-6)
    assert torch.allclose(model.loss_weight(t), 1 / p[:, 0])


def test_llada_byte_overfits_multiscript_bytes_in_bf16():
    model = tiny()
    batch = batch_of(TEXT)
    batch = Batch(batch.tokens.repeat(8, 1), batch.pad_mask.repeat(8, 1), batch.prompt_len.repeat(8))
    start, n = model.nll(batch)
    assert float(start) / int(n) > 5.0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(250):
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the mixed precision the trainer runs it in
            loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    bound, n = model.nll(batch)
    assert float(bound) / int(n) < 2.6  # from ~5.6; bytes of three scripts, 250 steps


def test_generation_keeps_the_prompt_and_decodes_to_text():
    model = tiny().eval()
    prompt = torch.tensor([TOK.encode("Київ")] * 2)
    for method in ("low_confidence", "semi_ar", "remdm", "ancestral"):
        out = model.generate(prompt, 12, method=method, steps=6, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[:, : prompt.shape[1]], prompt)
        assert not (out == TOK.special.mask_id).any()
        assert isinstance(TOK.decode(out[0].tolist()), str)
    default = model.generate(prompt, 8, steps=4, temperature=0)
    assert default.shape == (2, prompt.shape[1] + 8)
