"""`embed`: Gaussian diffusion in a token-embedding space whose network outputs the denoising FUNCTION.

Launch (head = hyper | fourier | window | plaid; plaid is the control every head must beat):

    wikimix train embed --data NAME-docs --out runs/embed-hyper --budget bench-cpu --set model.head=hyper

The pieces, top to bottom:
- Embeddings. A (V, n) table, learned or frozen (`learn_embeddings`), always used at a FIXED scale: every
  row is L2-normalised and scaled to norm sqrt(n) (unit variance per dimension). Without a fixed scale,
  learned embeddings shrink towards 0 and the noise drowns them (norm collapse); the scale also matches
  the variance-preserving noise. The MSE target is detached: the cheapest way to lower an MSE on
  learned targets is to collapse them, so the table learns only through the input path and the
  rounding cross-entropy.
- Noise schedule. Variance preserving, z_t = alpha_t x0 + sigma_t eps with alpha^2 = sigmoid(lambda),
  sigma^2 = sigmoid(-lambda), and the log-SNR lambda(t) the cosine schedule shifted to run exactly from
  `logsnr_max` (t=0) to `logsnr_min` (t=1): lambda(t) = -2 log tan(a t + b).
- Network. Prompt positions hold their clean embeddings, are flagged clean and never noised; the
  bidirectional transformer conditions the completion on them through SELF-attention only (no
  cross-attention: the prompt sits in the same sequence). Input per position: W_z z + W_s x0_prev (the
  self-conditioning estimate, zeros on the first pass) + clean flag + a time embedding of lambda.
- Head (training/embed_heads.py): the transformer outputs the parameters of a per-token (per-window)
  function that is applied to the noisy vectors and gives the estimate x0_hat. With `skip_scale` the
  function acts on alpha_t z (EDM's c_skip, = E[x0 | z] for unit-variance x0) instead of the raw z, so
  a residual head need not cancel a full-size noise vector at high noise. Heads run in fp32.
- Rounding: token logits are the embedding matrix against the estimate, s * x0_hat @ E^T (with fixed
  norms this is nearest-embedding rounding with a learned inverse temperature s); plaid rounds with its
  own logits.
- Training loss (the same for every head): CE(rounding logits, tokens) + mse_weight * ||x0_hat - x0||^2 / n
  over the scored tokens, t stratified over the batch, self-conditioning on half the batches.
- `nll`: the continuous-time variational bound (VDM, Kingma et al. 2021; as in Plaid) on the scored
  tokens, in nats, the same estimator for every head (so it is what makes them comparable):
      -log p(w) <= E[-log p(w | z_0)]  +  KL(q(z_1 | w) || N(0, I))
                   + 1/2 E_{t~U(0,1)} [ -dSNR/dt ||x0 - x0_hat(z_t)||^2 ],
  with p(w | z_0) the model's own token distribution at lambda_max (as Plaid), and the t integral
  estimated with `nll_samples` stratified draws from a seeded generator. `denoising_ce` is the
  cross-entropy proxy at one noise level, beside it.
- Sampling: DDPM ancestral steps from t=1 to 0 (SNR 1 by default, as CDCD; docs/embed.md) with self-conditioning, the prompt clamped to its clean
  embeddings at every step; the last estimate is rounded to tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.blocks import BackboneConfig, Transformer, count_parameters, padding_bias
from training.embed_heads import HEADS, HeadOutput, build_head
from training.samplers import sample_tokens
from training.variant import Batch, SpecialIds, scored_mask
from wikimix.errors import ConfigError


@dataclass
class Config:
    head: str = "plaid"  # hyper | fourier | window | plaid
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    attn: str = "mha"
    ffn: str = "swiglu"
    max_len: int = 512
    dropout: float = 0.0
    embed_dim: int = 16  # n: the diffusion space (Plaid uses 16; small n keeps the bound tight)
    learn_embeddings: bool = True
    mlp_hidden: int = 16  # r: hidden width of the hyper / window function
    fourier_terms: int = 8  # M <= n // 2; M = n // 2 spans every vector of R^n
    window_sizes: tuple[int, ...] = (1, 2, 4)  # t drawn per training batch; sampling slides t large -> small
    logsnr_min: float = -10.0
    logsnr_max: float = 0.0  # SNR 1 at t=0, as CDCD (sigma_min = 1): chosen by a sweep, see docs/embed.md
    self_cond: bool = True
    skip_scale: bool = True  # the function acts on alpha_t z (EDM's c_skip) instead of the raw z
    mse_weight: float = 1.0
    sample_steps: int = 64
    nll_samples: int = 8

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"unknown embed head {self.head!r}; choose one of {', '.join(HEADS)}")
        if self.logsnr_min >= self.logsnr_max:
            raise ConfigError(f"logsnr_min ({self.logsnr_min}) must be below logsnr_max ({self.logsnr_max})")
        if not self.window_sizes or min(self.window_sizes) < 1:
            raise ConfigError(f"window_sizes must be positive integers, got {self.window_sizes}")
        self.window_sizes = tuple(int(t) for t in self.window_sizes)


# ---- noise schedule: plain functions of t in [0, 1] ----


def _cosine_ab(lmin: float, lmax: float) -> tuple[float, float]:
    b = math.atan(math.exp(-lmax / 2))
    return math.atan(math.exp(-lmin / 2)) - b, b


def logsnr(t: Tensor, lmin: float, lmax: float) -> Tensor:
    """Shifted cosine log-SNR: lambda(0) = lmax, lambda(1) = lmin, monotone decreasing."""
    a, b = _cosine_ab(lmin, lmax)
    return -2 * torch.log(torch.tan(a * t + b))


def logsnr_slope(t: Tensor, lmin: float, lmax: float) -> Tensor:
    """d lambda / dt (negative)."""
    a, b = _cosine_ab(lmin, lmax)
    return -4 * a / torch.sin(2 * (a * t + b))


def alpha_sigma(lam: Tensor) -> tuple[Tensor, Tensor]:
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


def time_features(lam: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of the log-SNR (scaled into a few radians), (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=lam.device) / half)
    arg = (lam.float() * 10)[:, None] * freqs[None, :]
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


class EmbedDiffusion(nn.Module):
    nll_is_bound = True

    def __init__(self, cfg: Config, vocab_size: int, special: SpecialIds):
        super().__init__()
        self.cfg, self.vocab_size, self.special = cfg, vocab_size, special
        self.name = f"embed-{cfg.head}"
        n, d = cfg.embed_dim, cfg.d_model
        self.embed_table = nn.Parameter(torch.randn(vocab_size, n), requires_grad=cfg.learn_embeddings)
        self.in_noisy = nn.Linear(n, d)
        self.in_selfcond = nn.Linear(n, d, bias=False)
        self.clean_flag = nn.Parameter(torch.zeros(d))
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.backbone = Transformer(BackboneConfig.of(cfg, causal=False, d_model=d))
        self.head = build_head(cfg.head, d, n, vocab_size, cfg.mlp_hidden, cfg.fourier_terms)
        self.log_round_scale = nn.Parameter(torch.zeros(()))  # inverse temperature of the rounding logits

    # ---- the pieces ----

    def embeddings(self) -> Tensor:
        """(V, n) at the fixed scale: every row has norm sqrt(n)."""
        return F.normalize(self.embed_table, dim=-1) * math.sqrt(self.cfg.embed_dim)

    def round_logits(self, x0: Tensor, embeddings: Tensor) -> Tensor:
        return (x0 @ embeddings.T) * self.log_round_scale.exp()

    def token_logits(self, out: HeadOutput, embeddings: Tensor) -> Tensor:
        return out.logits if out.logits is not None else self.round_logits(out.x0, embeddings)

    def scored_logits(self, out: HeadOutput, embeddings: Tensor, scored: Tensor) -> Tensor:
        """token_logits at the scored positions, (N, V). The rounding logits are computed from the
        scored estimates alone: the same values, without a (B, L, V) matrix to gather from (and to
        scatter the gradient back into), which cost more than the rounding itself."""
        if out.logits is not None:
            return out.logits[scored]
        return self.round_logits(out.x0[scored], embeddings)

    def denoise(
        self,
        z: Tensor,
        clean: Tensor,
        lam: Tensor,
        x0_prev: Tensor,
        embeddings: Tensor,
        key_mask: Tensor | None = None,
        window: int = 1,
    ) -> HeadOutput:
        """One network call: z (B, L, n) with clean prompt vectors where clean (B, L) -> the head's output."""
        x = self.in_noisy(z) + self.in_selfcond(x0_prev) + clean[..., None] * self.clean_flag
        x = x + self.time_mlp(time_features(lam, self.cfg.d_model))[:, None, :]
        hidden = self.backbone(x, attn_bias=None if key_mask is None else padding_bias(key_mask))
        # The function is applied in fp32 even under bf16 autocast: the bound weighs errors by 1/sigma^2.
        with torch.autocast(device_type=z.device.type, enabled=False):
            z_in = z.float()
            if self.cfg.skip_scale:  # alpha_t z = E[x0 | z] for unit-variance x0: the function refines it
                z_in = torch.where(clean[..., None], z_in, alpha_sigma(lam.float())[0][:, None, None] * z_in)
            out = self.head(hidden.float(), z_in, t=min(window, z.shape[1]), embeddings=embeddings.float())
        # The prompt is given: its estimate is its clean vector.
        return HeadOutput(torch.where(clean[..., None], z, out.x0), out.logits)

    def _denoise_self_cond(
        self, z, clean, lam, embeddings, key_mask, window, use_self_cond: bool
    ) -> HeadOutput:
        x0_prev = torch.zeros_like(z)
        if use_self_cond:
            with torch.no_grad():
                x0_prev = self.denoise(z, clean, lam, x0_prev, embeddings, key_mask, window).x0.detach()
        return self.denoise(z, clean, lam, x0_prev, embeddings, key_mask, window)

    def _noise(self, batch: Batch, t: Tensor, generator: torch.Generator | None = None):
        """The clean vectors, the noisy ones (prompt kept clean) and the log-SNR for times t (B,)."""
        embeddings = self.embeddings()
        x0 = embeddings[batch.tokens]
        pos = torch.arange(batch.tokens.shape[1], device=x0.device)
        clean = pos[None, :] < batch.prompt_len[:, None]
        lam = logsnr(t, self.cfg.logsnr_min, self.cfg.logsnr_max)
        alpha, sigma = alpha_sigma(lam)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        z = torch.where(clean[..., None], x0, alpha[:, None, None] * x0 + sigma[:, None, None] * eps)
        return embeddings, x0, z, clean, lam

    # ---- Variant interface ----

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        bsz = batch.tokens.shape[0]
        dev = batch.tokens.device
        t = (torch.rand((), device=dev) + torch.arange(bsz, device=dev) / bsz) % 1.0  # stratified
        embeddings, x0, z, clean, lam = self._noise(batch, t)
        window = self.cfg.window_sizes[int(torch.randint(len(self.cfg.window_sizes), ()))]
        use_sc = self.cfg.self_cond and bool(torch.rand(()) < 0.5)
        out = self._denoise_self_cond(z, clean, lam, embeddings, batch.pad_mask, window, use_sc)
        scored = scored_mask(batch)
        logits = self.scored_logits(out, embeddings, scored).float()
        target = batch.tokens[scored]
        ce = F.cross_entropy(logits, target)
        mse = ((out.x0 - x0.detach()) ** 2)[scored].float().mean()
        loss = ce + self.cfg.mse_weight * mse
        acc = (logits.argmax(-1) == target).float().mean()
        metrics = {"loss": loss, "ce": ce, "mse": mse, "acc": acc}
        return loss, {k: float(v.detach()) for k, v in metrics.items()}

    @torch.no_grad()
    def denoising_ce(self, batch: Batch, t: float, seed: int = 0) -> Tensor:
        """Mean cross-entropy (nats) of the rounded estimate at noise level t over the scored tokens.

        The proxy beside the bound: averaged over t it is the CDCD training loss, and at one t it says how
        well a head recovers tokens from that noise level, whatever its estimate's precision.
        """
        gen = torch.Generator(device=batch.tokens.device).manual_seed(seed)
        t_batch = torch.full((batch.tokens.shape[0],), float(t), device=batch.tokens.device)
        embeddings, _, z, clean, lam = self._noise(batch, t_batch, gen)
        window = max(self.cfg.window_sizes)
        out = self._denoise_self_cond(z, clean, lam, embeddings, batch.pad_mask, window, self.cfg.self_cond)
        scored = scored_mask(batch)
        return F.cross_entropy(self.scored_logits(out, embeddings, scored).float(), batch.tokens[scored])

    @torch.no_grad()
    def nll(self, batch: Batch, samples: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
        """The variational bound (nats) summed over the scored tokens, and their count."""
        cfg = self.cfg
        samples = samples or cfg.nll_samples
        dev = batch.tokens.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        scored = scored_mask(batch)
        bsz = batch.tokens.shape[0]
        diffusion = torch.zeros(bsz, batch.tokens.shape[1], device=dev)
        window = max(cfg.window_sizes)
        for k in range(samples):  # stratified t: one draw in each of `samples` equal slices of (0, 1)
            u = torch.rand(bsz, generator=gen, device=dev)
            t = (k + u) / samples
            embeddings, x0, z, clean, lam = self._noise(batch, t, gen)
            out = self._denoise_self_cond(z, clean, lam, embeddings, batch.pad_mask, window, cfg.self_cond)
            snr_slope = -logsnr_slope(t, cfg.logsnr_min, cfg.logsnr_max) * lam.exp()  # -dSNR/dt > 0
            diffusion += 0.5 * snr_slope[:, None] * ((x0 - out.x0) ** 2).float().sum(-1) / samples
        # Reconstruction at lambda_max (Plaid): the model's own token distribution given z_0 and the prompt.
        embeddings, x0, z0, clean, lam0 = self._noise(batch, torch.zeros(bsz, device=dev), gen)
        out = self._denoise_self_cond(z0, clean, lam0, embeddings, batch.pad_mask, window, cfg.self_cond)
        recon_logits = self.token_logits(out, embeddings).float()
        recon = F.cross_entropy(recon_logits.flatten(0, 1), batch.tokens.flatten(), reduction="none")
        # Prior: KL(N(a1 x0, s1^2 I) || N(0, I)) per token.
        a1, s1 = alpha_sigma(torch.tensor(cfg.logsnr_min, device=dev))
        n = cfg.embed_dim
        prior = 0.5 * (n * (s1**2 - 1 - torch.log(s1**2)) + a1**2 * (x0**2).sum(-1))
        per_token = diffusion + recon.view_as(diffusion) + prior
        return per_token[scored].sum(), scored.sum()

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        steps: int | None = None,
        window: int | Sequence[int] | None = None,
        clamp: bool = False,
        temperature: float = 0.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        **_: object,
    ) -> Tensor:
        """prompt (B, P) -> (B, P + max_new_tokens); DDPM ancestral sampling, prompt clamped every step.

        window: the window head's t, an int or one per step (default: from max(window_sizes) down to min).
        clamp: snap each estimate to its nearest embedding before the step (Diffusion-LM's clamping trick).
        temperature / top_p: how the last estimate's token logits become tokens (0 = argmax rounding).
        generator or seed: the noise source (a fresh random seed when neither is given).
        """
        cfg = self.cfg
        steps = steps or cfg.sample_steps
        windows = self._window_schedule(window, steps)
        bsz, plen = prompt.shape
        dev = prompt.device
        gen = generator
        if gen is None:
            gen = torch.Generator(device=dev)
            gen.manual_seed(seed) if seed is not None else gen.seed()
        embeddings = self.embeddings()
        n = cfg.embed_dim
        seq_len = plen + max_new_tokens
        clean = (torch.arange(seq_len, device=dev) < plen)[None, :].expand(bsz, -1)
        z_new = torch.randn(bsz, max_new_tokens, n, generator=gen, device=dev)
        x0_prev = torch.zeros(bsz, seq_len, n, device=dev)
        times = torch.linspace(1.0, 0.0, steps + 1, device=dev)
        for i in range(steps):
            z = torch.cat([embeddings[prompt], z_new], dim=1)
            lam_t = logsnr(times[i].expand(bsz), cfg.logsnr_min, cfg.logsnr_max)
            out = self.denoise(
                z,
                clean,
                lam_t,
                x0_prev if cfg.self_cond else torch.zeros_like(z),
                embeddings,
                None,
                windows[i],
            )
            x0_hat = out.x0[:, plen:]
            if clamp:
                x0_hat = embeddings[self.token_logits(out, embeddings)[:, plen:].argmax(-1)]
            x0_prev = out.x0
            if i + 1 < steps:
                z_new = self._ancestral_step(z_new, x0_hat, times[i], times[i + 1], gen)
        new_tokens = sample_tokens(self.token_logits(out, embeddings)[:, plen:], temperature, top_p, gen)
        return torch.cat([prompt, new_tokens], dim=1)

    def _ancestral_step(
        self, z: Tensor, x0_hat: Tensor, t: Tensor, s: Tensor, gen: torch.Generator
    ) -> Tensor:
        """A draw from q(z_s | z_t, x0 = x0_hat), s < t."""
        cfg = self.cfg
        alpha_t, sigma_t = alpha_sigma(logsnr(t, cfg.logsnr_min, cfg.logsnr_max))
        alpha_s, sigma_s = alpha_sigma(logsnr(s, cfg.logsnr_min, cfg.logsnr_max))
        alpha_ts = alpha_t / alpha_s
        var_ts = sigma_t**2 - alpha_ts**2 * sigma_s**2
        mean = (alpha_ts * sigma_s**2 / sigma_t**2) * z + (alpha_s * var_ts / sigma_t**2) * x0_hat
        std = (var_ts * sigma_s**2 / sigma_t**2).sqrt()
        return mean + std * torch.randn(z.shape, generator=gen, device=z.device)

    def _window_schedule(self, window: int | Sequence[int] | None, steps: int) -> list[int]:
        if window is None:
            hi, lo = max(self.cfg.window_sizes), min(self.cfg.window_sizes)
            return [round(hi + (lo - hi) * i / max(steps - 1, 1)) for i in range(steps)]
        if isinstance(window, int):
            return [window] * steps
        window = [int(t) for t in window]
        if len(window) != steps:
            raise ConfigError(f"window schedule has {len(window)} entries for {steps} steps")
        return window

    # ---- cost ----

    def cost_report(self, seq_len: int = 256, steps: int | None = None) -> dict[str, float | int | str]:
        """Parameters and FLOPs (2 per multiply-add) of one denoising step over seq_len positions."""
        cfg = self.cfg
        steps = steps or cfg.sample_steps
        d, n = cfg.d_model, cfg.embed_dim
        t = max(cfg.window_sizes)
        head_params, head_flops = (
            self.head.cost(seq_len, d, t) if cfg.head == "window" else self.head.cost(seq_len, d)
        )
        backbone_params = count_parameters(self.backbone)
        backbone_flops = 2 * backbone_params * seq_len + 4 * cfg.n_layers * seq_len**2 * d
        input_flops = seq_len * (4 * n * d + 4 * d) + 4 * d * d
        round_flops = 0 if cfg.head == "plaid" else 2 * seq_len * n * self.vocab_size  # once, at the end
        step_flops = input_flops + backbone_flops + head_flops
        total_params = count_parameters(self)
        return {
            "head": cfg.head,
            "params_head": head_params,
            "params_backbone": backbone_params,
            "params_embeddings": self.embed_table.numel(),
            "params_total": total_params,
            "flops_head_per_step": head_flops,
            "flops_backbone_per_step": backbone_flops,
            "flops_per_step": step_flops,
            "sample_steps": steps,
            "flops_per_sample": steps * step_flops + round_flops,
            "seq_len": seq_len,
        }


def build(cfg: Config, vocab_size: int, special: SpecialIds) -> EmbedDiffusion:
    return EmbedDiffusion(cfg, vocab_size, special)
