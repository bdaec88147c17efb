"""`llada-byte`: the seed's byte-level LLaDA-style masked diffusion model.

The same absorbing-state objective as MDLM (training/models/mdlm.py), with LLaDA's choices:
  - bytes as tokens (ByteTokenizer: 256 bytes + specials), so any script in the mix is covered;
  - multi-head latent attention (DeepSeek-V2) and a Mish feed-forward in every block;
  - t ~ U(0, 1) independently per sequence, mask probability p = (1 - eps) t + eps, loss CE / p;
  - low-confidence remasking as the default sampler (64 steps), bf16 mixed precision in the trainer.

    wikimix train llada-byte --data NAME-docs --out runs/llada --budget bench-cpu
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from training.models.mdlm import MDLM
from training.models.mdlm import Config as MDLMConfig
from training.tokenizers import ByteTokenizer, SpecialIds
from training.variant import Batch
from wikimix.errors import ConfigError

TOKENIZER = "byte"  # the trainer uses this tokenizer whatever its own setting says


@dataclass
class Config(MDLMConfig):
    attn: str = "mla"
    ffn: str = "mish"
    antithetic: bool = False
    sampler: str = "low_confidence"


class LLaDAByte(MDLM):
    name = "llada-byte"
    nll_is_bound = True

    def sample_t(self, batch_size: int, device: torch.device) -> Tensor:
        return torch.rand(batch_size, device=device)

    def mask_probability(self, t: Tensor, batch: Batch) -> Tensor:
        eps = self.cfg.sampling_eps
        return ((1 - eps) * t + eps)[:, None].expand_as(batch.tokens)

    def loss_weight(self, t: Tensor) -> Tensor:
        eps = self.cfg.sampling_eps
        return 1.0 / ((1 - eps) * t + eps)


def build(cfg: Config, vocab_size: int, special: SpecialIds) -> LLaDAByte:
    byte = ByteTokenizer()
    if vocab_size != byte.vocab_size or special != byte.special:
        raise ConfigError(
            f"llada-byte needs the byte tokenizer (vocab {byte.vocab_size}), got vocab {vocab_size}"
        )
    return LLaDAByte(cfg, vocab_size, special)
