"""semantic-insert's likelihood: an exact upper bound on -log p(continuation) along one insertion order.

Read as a generative process one insertion at a time, the model defines, in a state `seq` (the prompt and
the tokens inserted so far; allowed slots A = the slots after the prompt, as in completion-mode
generation) with nu_s = p_s(nothing) and w_s = 1 - nu_s:
    p(stop)            = prod_{s in A} nu_s                      (every slot says "nothing")
    p(slot s, token v) = (1 - p(stop)) * w_s / W * p_s(v) / w_s  (W = sum_{s in A} w_s)
i.e. stop, or choose a slot in proportion to 1 - p(nothing) and then its token given "something"; the
two sum to 1 in every state (tested). A continuation x inserted in the order sigma has
p(x, sigma) = prod_t p(slot_t, token_t) * p(stop), and p(x) = sum over every insertion history of x >=
p(x, sigma), so -log p(x, sigma) is an upper bound on -log p(x): exact arithmetic, no noise to average.
sigma is the model's own order: the reverse of its removal order (significance ranks for order='semantic',
a fixed random permutation for the ablation), so the most significant token is inserted first.

    nats = insertion_order_nll(model, ids, prompt_len, keys)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from training.models.semantic_insert import removal_order


@torch.no_grad()
def step_distribution(model, seq: list[int], prompt_len: int) -> tuple[float, Tensor]:
    """(log p(stop), log p(slot, token) as (|A|, V)) in state `seq`; A = slots prompt_len..len(seq)."""
    device = next(model.parameters()).device
    # an empty state is one pad column of length 0: one slot, read from the frame's bos / eos
    tokens = (
        torch.tensor([seq], device=device) if seq else torch.full((1, 1), model.special.pad_id, device=device)
    )
    lengths = torch.tensor([len(seq)], device=device)
    logp = model.slot_logits(tokens, lengths)[0, prompt_len : len(seq) + 1].double().log_softmax(-1)
    log_nothing = logp[:, model.nothing_id]
    log_stop = float(log_nothing.sum())
    log_w = torch.log1p(-log_nothing.exp().clamp(max=1 - 1e-12))  # log(1 - nu_s)
    log_cont = math.log(-math.expm1(log_stop)) if log_stop < 0 else -math.inf  # log(1 - p(stop))
    return log_stop, log_cont - torch.logsumexp(log_w, 0) + logp[:, : model.vocab_size]


@torch.no_grad()
def insertion_order_nll(model, ids: list[int], prompt_len: int, keys: Tensor) -> float:
    """-log p(continuation, order) in nats: ids = prompt + continuation, keys = removal keys per position
    (smaller = removed earlier = inserted later)."""
    n = len(ids)
    positions = torch.arange(n)
    insertion = removal_order(keys.cpu().float(), positions >= prompt_len).tolist()[::-1]
    kept = list(range(prompt_len))  # positions present, in text order
    total = 0.0
    for pos in insertion:
        log_stop, log_p = step_distribution(model, [ids[p] for p in kept], prompt_len)
        slot = sum(1 for p in kept if p < pos)  # slot i is before kept[i]
        total -= float(log_p[slot - prompt_len, ids[pos]])
        kept.insert(slot, pos)
    log_stop, _ = step_distribution(model, ids, prompt_len)
    return total - log_stop
