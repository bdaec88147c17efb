"""semantic-insert: slot bookkeeping, the removal order is the stored ranks, stopping rules terminate,
the variant overfits a tiny batch, and completions keep the prompt."""

from __future__ import annotations

import pytest
import torch

from training.models import load_variant
from training.models.semantic_insert import Config, insert_tokens, make_pair, removal_order
from training.tokenizers import ByteTokenizer
from training.variant import Batch
from wikimix.errors import ConfigError

NOTHING = 999
TOK = ByteTokenizer()


def tiny(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    module = load_variant("semantic-insert")
    cfg = Config(d_model=48, n_layers=2, n_heads=2, max_len=128, **overrides)
    return module.build(cfg, TOK.vocab_size, TOK.special)


def test_slot_bookkeeping_insertions_land_where_predicted():
    assert insert_tokens([1, 2], {0: 7, 2: 9}) == [7, 1, 2, 9]
    assert insert_tokens([1, 2, 3], {1: 5, 2: 6}) == [1, 5, 2, 6, 3]
    assert insert_tokens([], {0: 4}) == [4]
    seq = [1, 2, 3]
    grown = insert_tokens(seq, {3: 8})
    assert len(grown) == len(seq) + 1 and grown[-1] == 8


def test_removal_order_is_exactly_the_stored_ranks():
    tokens = torch.tensor([10, 11, 12, 13, 14])
    ranks = torch.tensor([3, 0, 4, 1, 2])
    assert removal_order(ranks.float(), torch.ones(5, dtype=torch.bool)).tolist() == [1, 3, 4, 0, 2]

    pair = make_pair(tokens, ranks.float(), prompt_len=0, num_removed=2, nothing_id=NOTHING)
    assert pair.kept.tolist() == [10, 12, 14] and pair.kept_positions.tolist() == [0, 2, 4]
    assert pair.slot_targets.tolist() == [NOTHING, 11, 13, NOTHING]

    # two removed from one slot: the slot's next insertion is the most significant one (removed last)
    pair = make_pair(tokens, ranks.float(), prompt_len=0, num_removed=4, nothing_id=NOTHING)
    assert pair.kept.tolist() == [12]
    assert pair.slot_targets.tolist() == [10, 14]
    assert pair.slot_scored.all()


def test_prompt_tokens_are_never_removed_and_prompt_slots_are_not_scored():
    tokens = torch.tensor([10, 11, 12, 13])
    ranks = torch.tensor([0, 1, 2, 3]).float()  # the prompt holds the least significant tokens
    pair = make_pair(tokens, ranks, prompt_len=2, num_removed=2, nothing_id=NOTHING)
    assert pair.kept.tolist() == [10, 11]
    assert pair.slot_targets.tolist() == [NOTHING, NOTHING, 13]
    assert pair.slot_scored.tolist() == [False, False, True]


def test_model_builds_training_pairs_from_the_batch_ranks():
    model = tiny(prompt_frac_max=0.0)
    tokens = torch.randint(0, 256, (6, 20))
    ranks = torch.stack([torch.randperm(20) for _ in range(6)])
    batch = Batch(tokens, torch.ones_like(tokens, dtype=torch.bool), torch.zeros(6, dtype=torch.long), ranks)
    kept, lengths, targets, _ = model.make_batch(batch, torch.Generator().manual_seed(1))
    assert sorted(lengths.tolist()) != [20] * 6  # several noise levels across the batch
    for b in range(6):
        q = int(lengths[b])
        survivors = tokens[b][ranks[b] >= 20 - q]  # the q most significant, in text order
        assert kept[b, :q].tolist() == survivors.tolist()


def test_random_order_ablation_ignores_ranks_and_semantic_order_requires_them():
    tokens = torch.randint(0, 256, (2, 12))
    batch = Batch(tokens, torch.ones_like(tokens, dtype=torch.bool), torch.zeros(2, dtype=torch.long), None)
    with pytest.raises(ConfigError, match="needs significance ranks"):
        tiny().loss(batch)
    loss, metrics = tiny(order="random").loss(batch)
    assert torch.isfinite(loss) and "slot_ce" in metrics


def test_separator_tokens_in_packed_windows_are_finite_targets():
    model = tiny(order="random", prompt_frac_max=0.0)
    eos, bos = TOK.special.eos_id, TOK.special.bos_id
    tokens = torch.tensor([[97, 98, eos, bos, 99, 100, eos, bos] * 3] * 4)
    batch = Batch(tokens, torch.ones_like(tokens, dtype=torch.bool), torch.zeros(4, dtype=torch.long), None)
    for seed in range(5):
        torch.manual_seed(seed)
        loss, _ = model.loss(batch)
        assert torch.isfinite(loss)


def test_overfits_a_tiny_batch():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest and immune to a busy machine
    model = tiny(prompt_frac_max=0.0)
    text = ["the quick brown fox jumps", "a lazy dog sleeps all day"]
    ids = [TOK.encode(t)[:24] for t in text]
    tokens = torch.tensor([i + [TOK.special.pad_id] * (24 - len(i)) for i in ids])
    pad = tokens != TOK.special.pad_id
    ranks = torch.stack([torch.randperm(24) for _ in range(2)])
    batch = Batch(tokens, pad, torch.zeros(2, dtype=torch.long), ranks)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    first = None
    for _ in range(300):
        loss, _ = model.loss(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    final = sum(model.loss(batch)[0].item() for _ in range(8)) / 8
    torch.set_num_threads(threads)
    assert first > 4.0 and final < 0.2 * first, (first, final)


@pytest.mark.parametrize("rule", ["nothing", "max-prob"])
def test_stopping_rules_terminate_within_bounded_steps(rule: str):
    model = tiny().eval()
    prompts = [TOK.encode("Danube flows"), TOK.encode("honey bees")]
    result = model.generate_sequences(prompts, max_new_tokens=40, stop_rule=rule, max_steps=6, min_prob=0.5)
    assert all(1 <= s <= 6 for s in result.steps)
    assert set(result.stopped_by) <= {"rule", "max_new_tokens", "max_steps"}
    for prompt, seq in zip(prompts, result.sequences, strict=True):
        assert seq[: len(prompt)] == prompt and len(seq) - len(prompt) <= 40


def test_nothing_rule_weighs_all_tokens_together_against_nothing():
    """p(nothing) = 0.3 with the rest spread thin: no single token beats "nothing", yet inserting does."""
    model = tiny().eval()
    prompt = TOK.encode("Danube")
    with torch.no_grad():
        logits = model.slot_logits(torch.tensor([prompt]), torch.tensor([len(prompt)]))[0, -1]
        token_mass = torch.logsumexp(logits[: model.vocab_size].float(), 0)
        model.nothing_head.weight.zero_()
        model.nothing_head.bias.fill_(float(token_mass + torch.log(torch.tensor(0.3 / 0.7))))
        probs = (
            model.slot_logits(torch.tensor([prompt]), torch.tensor([len(prompt)]))[0, -1].float().softmax(-1)
        )
    assert probs[: model.vocab_size].max() < probs[model.nothing_id] < 0.5
    result = model.generate_sequences([prompt], 6, stop_rule="nothing", max_steps=10)
    assert len(result.sequences[0]) > len(prompt)


def test_nothing_rule_with_a_huge_margin_stops_at_once():
    result = tiny().eval().generate_sequences([TOK.encode("abc")], 10, stop_rule="nothing", margin=2.0)
    assert result.steps == [1] and result.stopped_by == ["rule"] and result.sequences == [TOK.encode("abc")]


@pytest.fixture(scope="module")
def encoder():
    from pipeline.encoder import Encoder, EncoderConfig

    return Encoder(EncoderConfig(threads=2))


def test_semantic_rule_and_creativeness_bound_use_the_encoder(encoder):
    model = tiny(order="random").eval()
    decode = TOK.decode
    prompts = [TOK.encode("The Moon orbits the Earth.")]
    result = model.generate_sequences(
        prompts,
        30,
        stop_rule="semantic",
        min_change=0.5,
        margin=-1.0,
        max_steps=5,
        semantic_fn=encoder.encode,
        decode_fn=decode,
    )
    assert result.steps[0] <= 5 and result.stopped_by[0] in {"rule", "max_new_tokens", "max_steps"}
    changes = [t.semantic_change for t in result.traces[0] if t.semantic_change is not None]
    assert changes and all(0.0 <= c <= 2.0 for c in changes)
    # with creativeness 0 no insertion is allowed at all: the prompt comes back unchanged
    frozen = model.generate_sequences(
        prompts, 30, margin=-1.0, creativeness=0.0, semantic_fn=encoder.encode, decode_fn=decode
    )
    assert frozen.sequences == prompts and frozen.stopped_by == ["rule"]
    with pytest.raises(ConfigError, match="need semantic_fn"):
        model.generate_sequences(prompts, 5, stop_rule="semantic")


def test_generate_keeps_the_prompt_and_pads_early_stops():
    model = tiny().eval()
    prompt = torch.tensor([TOK.encode("abcdef"), TOK.encode("uvwxyz")])
    out = model.generate(prompt, max_new_tokens=12, steps=64, temperature=0.0, max_steps=3)
    assert out.shape == (2, 18) and torch.equal(out[:, :6], prompt)


def test_bad_config_is_one_line_error():
    with pytest.raises(ConfigError, match="order must be one of"):
        Config(order="alphabetical")
    with pytest.raises(ConfigError, match="stop_rule must be one of"):
        Config(stop_rule="never")
