"""What every model is to the trainer and the evaluator: a Batch in, a loss / NLL / completion out.

A variant is an nn.Module (training/models/<name>.py) that owns its objective and its sampler:

    loss, metrics = variant.loss(batch)           # scalar to backprop, floats to log
    nll_sum, n_scored = variant.nll(batch)         # nats over the scored tokens (a bound if nll_is_bound)
    out = variant.generate(prompt, max_new_tokens=50, steps=64)   # out[:, :P] == prompt
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch
from torch import LongTensor, Tensor

from training.tokenizers import SpecialIds

__all__ = ["Batch", "SpecialIds", "Variant", "scored_mask"]


@dataclass
class Batch:
    tokens: torch.Tensor  # (B, L) long: token ids, right-padded with the tokenizer's pad_id
    pad_mask: torch.Tensor  # (B, L) bool: True at real tokens
    prompt_len: torch.Tensor  # (B,) long: positions < prompt_len[b] are clean prompt (never noised/scored)
    removal_rank: torch.Tensor | None = None  # (B, L) long: significance removal rank, -1 unknown/pad
    doc_ids: list[str] | None = None

    def to(self, device: torch.device | str) -> Batch:
        """The batch on `device` (non-blocking copies where the source is pinned)."""
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return replace(
            self,
            tokens=move(self.tokens),
            pad_mask=move(self.pad_mask),
            prompt_len=move(self.prompt_len),
            removal_rank=move(self.removal_rank),
        )

    @property
    def num_tokens(self) -> int:
        return int(self.pad_mask.sum())

    @staticmethod
    def from_tokens(tokens: Tensor, prompt_len: int | Tensor = 0, pad_id: int | None = None) -> Batch:
        """A batch of equal-length sequences (pad_mask from pad_id when given)."""
        b = tokens.shape[0]
        pad_mask = torch.ones_like(tokens, dtype=torch.bool) if pad_id is None else tokens != pad_id
        plen = torch.as_tensor(prompt_len, dtype=torch.long).expand(b).clone()
        return Batch(tokens=tokens, pad_mask=pad_mask, prompt_len=plen.to(tokens.device))


def scored_mask(batch: Batch) -> Tensor:
    """(B, L) bool: the positions a model is trained and scored on: real tokens after the prompt."""
    pos = torch.arange(batch.tokens.shape[1], device=batch.tokens.device)
    return batch.pad_mask & (pos[None, :] >= batch.prompt_len[:, None])


@runtime_checkable
class Variant(Protocol):
    """Every model is an nn.Module implementing this."""

    name: str
    nll_is_bound: bool  # True for diffusion ELBOs (reported as a bound)

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]: ...

    def nll(self, batch: Batch) -> tuple[Tensor, Tensor]: ...

    def generate(self, prompt: LongTensor, max_new_tokens: int, **sampler) -> LongTensor: ...
