"""Denoiser heads for embedding-space diffusion: the transformer outputs the PARAMETERS of a function.

Every head maps the backbone's hidden states `hidden` (B, L, d) and the noisy vectors `z` (B, L, n) to an
estimate `x0` (B, L, n) of the clean embeddings, in two explicit steps:

    params = head.function_params(hidden, ...)   # what the network outputs: the function's parameters
    x0     = head.apply_function(params, z, ...) # the function, applied to the noisy vectors

- `hyper`:   per position the weights (W1, b1, W2, b2) of a tiny MLP R^n -> R^n; x0 = z + MLP(z).
- `fourier`: per position the coefficients a_0, a_m, b_m (m = 1..M) of a Fourier series over the
             embedding-dimension index j with one period spanning j = 0..n-1,
             s(j) = a_0 + sum_m a_m cos(2 pi m j / n) + b_m sin(2 pi m j / n), evaluated at the integer
             indices; x0 = z - s.
- `window`:  a function over a group of t adjacent noisy vectors. Per window G = [g, g+t) the network
             outputs (from the window's mean hidden state) the weights of a tiny MLP that reads each
             member z_k and the group mean zbar_G: u_k = W2 gelu(W1 z_k + U1 zbar_G + b1) + b2. The window
             slides with stride 1 over the whole sequence (one full slide per call, L - t + 1
             applications), like a kernel over an image; a position covered by several windows takes
             the mean of their outputs; x0 = z + u. t is an argument of every call, so it may change
             per sampling step.
- `plaid`:   the control (Plaid / CDCD): the network outputs token logits; x0 = softmax(logits) @ E.

`cost(seq_len)` gives each head's parameter count and FLOPs for one denoising step over `seq_len`
positions (a multiply-add counts as 2 FLOPs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wikimix.errors import ConfigError

HEADS = ("hyper", "fourier", "window", "plaid")


@dataclass
class HeadOutput:
    x0: Tensor  # (B, L, n) estimate of the clean embeddings
    logits: Tensor | None  # (B, L, V) token logits when the head predicts them (plaid), else None


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _init_mlp_generator(proj: nn.Linear, n_first_layer: int) -> None:
    """Generated weights = a shared base + small per-position deltas. The base first layer is a random
    matrix (the proj bias) and the base second layer is zero: with both near zero the generated MLP would
    start at a saddle (no gradient reaches either layer); this way it starts as the identity map on z."""
    nn.init.normal_(proj.weight, std=0.02)
    nn.init.zeros_(proj.bias)
    with torch.no_grad():
        proj.bias[:n_first_layer].normal_()


class HyperHead(nn.Module):
    """Per position, the weights of a tiny MLP n -> r -> n mapping the noisy vector to its update."""

    def __init__(self, d_model: int, embed_dim: int, hidden: int):
        super().__init__()
        self.n, self.r = embed_dim, hidden
        self.n_params = 2 * hidden * embed_dim + hidden + embed_dim  # W1, W2, b1, b2
        self.proj = nn.Linear(d_model, self.n_params)
        _init_mlp_generator(self.proj, hidden * embed_dim)

    def function_params(self, hidden: Tensor) -> Tensor:
        return self.proj(hidden)  # (B, L, P)

    def unpack(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, r = self.n, self.r
        w1, w2, b1, b2 = params.split([r * n, n * r, r, n], dim=-1)
        # Fixed fan-in scaling so the generated MLP starts near a well-conditioned random MLP.
        w1 = w1.unflatten(-1, (r, n)) / math.sqrt(n)
        w2 = w2.unflatten(-1, (n, r)) / math.sqrt(r)
        return w1, b1, w2, b2

    def apply_function(self, params: Tensor, z: Tensor) -> Tensor:
        w1, b1, w2, b2 = self.unpack(params)
        hid = F.gelu(torch.einsum("blrn,bln->blr", w1, z) + b1)
        return z + torch.einsum("blnr,blr->bln", w2, hid) + b2

    def forward(self, hidden: Tensor, z: Tensor, **_: object) -> HeadOutput:
        return HeadOutput(self.apply_function(self.function_params(hidden), z), None)

    def cost(self, seq_len: int, d_model: int) -> tuple[int, int]:
        make = 2 * d_model * self.n_params
        apply = 2 * 2 * self.r * self.n + 4 * self.r + 2 * self.n
        return _param_count(self), seq_len * (make + apply)


def fourier_basis(n: int, terms: int) -> Tensor:
    """(2M+1, n): rows 1, cos(2 pi m j / n), sin(2 pi m j / n) for m = 1..M at integer indices j = 0..n-1."""
    j = torch.arange(n, dtype=torch.float64)
    rows = [torch.ones(n, dtype=torch.float64)]
    rows += [torch.cos(2 * math.pi * m * j / n) for m in range(1, terms + 1)]
    rows += [torch.sin(2 * math.pi * m * j / n) for m in range(1, terms + 1)]
    return torch.stack(rows).float()


class FourierHead(nn.Module):
    """Per position, Fourier coefficients over the embedding-dimension index; the series is subtracted."""

    def __init__(self, d_model: int, embed_dim: int, terms: int):
        super().__init__()
        if not 1 <= terms <= embed_dim // 2:
            raise ConfigError(f"fourier_terms must be in 1..{embed_dim // 2} (embed_dim // 2), got {terms}")
        self.n, self.terms = embed_dim, terms
        self.proj = nn.Linear(d_model, 2 * terms + 1)  # a_0, a_1..a_M, b_1..b_M
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)
        self.register_buffer("basis", fourier_basis(embed_dim, terms), persistent=False)

    def function_params(self, hidden: Tensor) -> Tensor:
        return self.proj(hidden)  # (B, L, 2M+1)

    def series(self, params: Tensor) -> Tensor:
        return params @ self.basis  # (B, L, n): the series at j = 0..n-1

    def apply_function(self, params: Tensor, z: Tensor) -> Tensor:
        return z - self.series(params)

    def forward(self, hidden: Tensor, z: Tensor, **_: object) -> HeadOutput:
        return HeadOutput(self.apply_function(self.function_params(hidden), z), None)

    def cost(self, seq_len: int, d_model: int) -> tuple[int, int]:
        k = 2 * self.terms + 1
        return _param_count(self), seq_len * (2 * d_model * k + 2 * k * self.n + self.n)


def window_starts(seq_len: int, t: int) -> Tensor:
    """Start of every window in one full slide (stride 1): 0..L-t, so every position is covered."""
    if not 1 <= t <= seq_len:
        raise ConfigError(f"window size t must be in 1..{seq_len} (the sequence length), got {t}")
    return torch.arange(seq_len - t + 1)


class WindowHead(nn.Module):
    """A function over t adjacent noisy vectors, its weights made per window, slid once over the sequence."""

    def __init__(self, d_model: int, embed_dim: int, hidden: int):
        super().__init__()
        self.n, self.r = embed_dim, hidden
        self.n_params = 3 * hidden * embed_dim + hidden + embed_dim  # W1, U1, W2, b1, b2
        self.proj = nn.Linear(d_model, self.n_params)
        _init_mlp_generator(self.proj, 2 * hidden * embed_dim)

    def function_params(self, hidden: Tensor, t: int) -> Tensor:
        """(B, L-t+1, P): one parameter vector per window, from the mean hidden state of its t positions."""
        window_starts(hidden.shape[1], t)  # validates t
        return self.proj(hidden.unfold(1, t, 1).mean(-1))  # unfold: (B, W, d, t)

    def apply_window(self, params: Tensor, group: Tensor) -> Tensor:
        """The function on groups: params (B, W, P), group (B, W, t, n) -> update (B, W, t, n)."""
        n, r = self.n, self.r
        w1, u1, w2, b1, b2 = params.split([r * n, r * n, n * r, r, n], dim=-1)
        w1 = w1.unflatten(-1, (r, n)) / math.sqrt(n)
        u1 = u1.unflatten(-1, (r, n)) / math.sqrt(n)
        w2 = w2.unflatten(-1, (n, r)) / math.sqrt(r)
        mean = group.mean(2)  # (B, W, n): what lets the function see the whole group at once
        pre = (
            torch.einsum("bwrn,bwtn->bwtr", w1, group)
            + (torch.einsum("bwrn,bwn->bwr", u1, mean) + b1)[:, :, None]
        )
        return torch.einsum("bwnr,bwtr->bwtn", w2, F.gelu(pre)) + b2[:, :, None]

    def apply_function(self, params: Tensor, z: Tensor, t: int) -> Tensor:
        bsz, seq_len, n = z.shape
        starts = window_starts(seq_len, t)
        groups = z.unfold(1, t, 1).transpose(-1, -2)  # (B, W, t, n); window w covers positions w..w+t-1
        updates = self.apply_window(params, groups)
        # Fold the overlapping windows back: sum each position's updates, divide by its cover count.
        index = (starts[:, None] + torch.arange(t)[None, :]).reshape(-1).to(z.device)  # (W*t,)
        total = z.new_zeros(bsz, seq_len, n).index_add_(1, index, updates.reshape(bsz, -1, n))
        count = z.new_zeros(seq_len).index_add_(0, index, z.new_ones(index.numel()))
        return z + total / count[None, :, None]

    def forward(self, hidden: Tensor, z: Tensor, t: int = 1, **_: object) -> HeadOutput:
        return HeadOutput(self.apply_function(self.function_params(hidden, t), z, t), None)

    def cost(self, seq_len: int, d_model: int, t: int = 1) -> tuple[int, int]:
        windows = seq_len - t + 1
        make = windows * (t * d_model + 2 * d_model * self.n_params)
        apply = windows * (
            2 * self.r * self.n + 4 * self.r + t * (4 * self.r * self.n + 2 * self.r + 2 * self.n)
        )
        return _param_count(self), make + apply


class PlaidHead(nn.Module):
    """The control: token logits; the estimate is the probability-weighted mean of the embeddings."""

    def __init__(self, d_model: int, embed_dim: int, vocab_size: int):
        super().__init__()
        self.n, self.vocab_size = embed_dim, vocab_size
        self.proj = nn.Linear(d_model, vocab_size)
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def function_params(self, hidden: Tensor) -> Tensor:
        return self.proj(hidden)  # (B, L, V) logits

    def apply_function(self, params: Tensor, embeddings: Tensor) -> Tensor:
        return params.float().softmax(-1) @ embeddings  # (B, L, n)

    def forward(self, hidden: Tensor, z: Tensor, embeddings: Tensor | None = None, **_: object) -> HeadOutput:
        if embeddings is None:
            raise ValueError("the plaid head needs the embedding matrix")
        logits = self.function_params(hidden)
        return HeadOutput(self.apply_function(logits, embeddings), logits)

    def cost(self, seq_len: int, d_model: int) -> tuple[int, int]:
        v = self.vocab_size
        return _param_count(self), seq_len * (2 * d_model * v + 3 * v + 2 * v * self.n)


def build_head(
    name: str, d_model: int, embed_dim: int, vocab_size: int, mlp_hidden: int, fourier_terms: int
) -> nn.Module:
    if name == "hyper":
        return HyperHead(d_model, embed_dim, mlp_hidden)
    if name == "fourier":
        return FourierHead(d_model, embed_dim, fourier_terms)
    if name == "window":
        return WindowHead(d_model, embed_dim, mlp_hidden)
    if name == "plaid":
        return PlaidHead(d_model, embed_dim, vocab_size)
    raise ConfigError(f"unknown embed head {name!r}; choose one of {', '.join(HEADS)}")
