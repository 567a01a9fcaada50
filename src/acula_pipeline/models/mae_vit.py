"""A masked-autoencoder ViT over log-mel patches in the OPERA-GT shape.

Input: (batch, 256 frames, 64 mels). Patches of 16 × 16 → 64 tokens. The encoder's
embedding is the mean of its patch tokens followed by LayerNorm; the light decoder
reconstructs the masked patches (MSE on masked patches only, mask ratio 0.7).
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from acula_pipeline.models.base import AudioEncoder, register_encoder


@dataclass
class MAEViTCfg:
    """Architecture of the student encoder."""

    n_frames: int = 256  # log-mel frames per clip
    n_mels: int = 64  # mel bins
    patch: int = 16  # square patch side
    dim: int = 192  # encoder width (= embedding size)
    depth: int = 4  # encoder blocks
    heads: int = 3  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden / width
    decoder_dim: int = 128  # decoder width
    decoder_depth: int = 1  # decoder blocks
    decoder_heads: int = 4  # decoder attention heads
    mask_ratio: float = 0.7  # share of patches hidden from the encoder
    # Reconstruct each masked patch normalised by its own mean and std (the MAE
    # paper's norm_pix_loss): flat patches (an empty band above a recording's
    # Nyquist, silence at the clip's floor) then cost as much as any other, instead
    # of being learnt for free
    norm_target: bool = False
    # Hide and score only patches that carry signal: a patch whose values vary by
    # less than ``flat_std`` (an empty band above a recording's Nyquist, a clip's
    # floor) is never shown to the encoder while there are enough others, and its
    # reconstruction does not count; ``mask_ratio`` is then the share of the
    # patches with signal that are hidden (on average over the batch). On in
    # ``pretrain.student``; off here, so a stored config without the key (made
    # before it existed) rebuilds the model it trained
    signal_only: bool = False
    flat_std: float = 0.01  # on the frontend's [0, 1] scale (0.8 dB of 80)

    @property
    def grid(self) -> tuple[int, int]:
        return self.n_frames // self.patch, self.n_mels // self.patch

    @property
    def n_patches(self) -> int:
        g = self.grid
        return g[0] * g[1]


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings, (grid_h * grid_w, dim)."""
    if dim % 4:
        raise ValueError(f"position embedding width {dim} must be divisible by 4")
    h, w = torch.meshgrid(
        torch.arange(grid[0], dtype=torch.float32),
        torch.arange(grid[1], dtype=torch.float32),
        indexing="ij",
    )
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out = []
    for pos in (h.flatten(), w.flatten()):
        ang = pos[:, None] * omega[None]
        out += [ang.sin(), ang.cos()]
    return torch.cat(out, dim=1)


class Attention(nn.Module):
    """Multi-head self-attention: one qkv projection, fused scaled-dot-product."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)


class Block(nn.Module):
    """Pre-norm transformer block with timm's layout and parameter names (as in
    OPERA-GT's ViT): ``norm1 → attn.{qkv,proj}``, ``norm2 → mlp.{fc1,fc2}``."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _init_weights(m: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform linear weights, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _blocks(dim: int, depth: int, heads: int, mlp_ratio: float) -> nn.Sequential:
    return nn.Sequential(*(Block(dim, heads, mlp_ratio) for _ in range(depth)))


class MAEViT(AudioEncoder):
    """Student encoder with its self-supervised objective."""

    name = "mae_vit"
    input_kind = "logmel"
    pos: torch.Tensor
    dec_pos: torch.Tensor

    def __init__(self, cfg: MAEViTCfg | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or MAEViTCfg()
        if cfg.n_frames % cfg.patch or cfg.n_mels % cfg.patch:
            raise ValueError(
                f"patch {cfg.patch} must divide {cfg.n_frames} × {cfg.n_mels}"
            )
        pdim = cfg.patch * cfg.patch
        self.embed_dim = cfg.dim
        self.patch_embed = nn.Linear(pdim, cfg.dim)
        self.register_buffer("pos", sincos_2d(cfg.dim, cfg.grid), persistent=False)
        self.encoder = _blocks(cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio)
        self.norm = nn.LayerNorm(cfg.dim)
        self.dec_embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.decoder_dim))
        self.register_buffer(
            "dec_pos", sincos_2d(cfg.decoder_dim, cfg.grid), persistent=False
        )
        self.decoder = _blocks(
            cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.mlp_ratio
        )
        self.dec_norm = nn.LayerNorm(cfg.decoder_dim)
        self.dec_out = nn.Linear(cfg.decoder_dim, pdim)
        self.apply(_init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    @property
    def has_ssl(self) -> bool:
        return True

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self.cfg)}

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, N, patch²), row-major over the (time, mel) grid."""
        b = x.shape[0]
        p = self.cfg.patch
        gh, gw = self.cfg.grid
        x = x.reshape(b, gh, p, gw, p).permute(0, 1, 3, 2, 4)
        return x.reshape(b, gh * gw, p * p)

    def encode_audio(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Embedding of each clip: mean-pooled patch tokens, LayerNorm."""
        tokens = self.patch_embed(self.patchify(x)) + self.pos
        z = self.norm(self.encoder(tokens).mean(dim=1))
        return nn.functional.normalize(z, dim=-1) if normalize else z

    def reconstruction_target(self, patches: torch.Tensor) -> torch.Tensor:
        """What the decoder must reproduce: the patches, or with ``norm_target``
        each patch standardised by its own mean and variance."""
        if not self.cfg.norm_target:
            return patches
        t = patches.float()
        mean, var = t.mean(dim=-1, keepdim=True), t.var(dim=-1, keepdim=True)
        return (t - mean) / (var + 1e-6).sqrt()

    def ssl_loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Masked-patch reconstruction MSE (masked patches only; with
        ``signal_only``, masked patches that carry signal only)."""
        tokens_in = self.patchify(x)
        target = self.reconstruction_target(tokens_in)
        b, n, _ = target.shape
        carries = self.carries_signal(tokens_in)
        # patches shown to the encoder: a share of all, or of those with signal
        shown = n if carries is None else carries.sum().item() / b
        keep = max(1, int(round(shown * (1 - self.cfg.mask_ratio))))
        noise = torch.rand(b, n, device=x.device, generator=generator)
        if carries is not None:
            # flat patches sort after every other: visible only when a clip has
            # fewer than ``keep`` patches with signal
            noise = noise + 2.0 * (~carries).to(noise.dtype)
        order = noise.argsort(dim=1)
        visible = order[:, :keep]
        tokens = self.patch_embed(tokens_in) + self.pos
        idx = visible[..., None].expand(-1, -1, tokens.shape[-1])
        enc = self.encoder(torch.gather(tokens, 1, idx))
        dec_vis = self.dec_embed(enc)
        # Under autocast the decoder input is bf16 while the parameter is fp32.
        full = self.mask_token.to(dec_vis.dtype).expand(b, n, -1).clone()
        full = full.scatter(1, visible[..., None].expand_as(dec_vis), dec_vis)
        pred = self.dec_out(self.dec_norm(self.decoder(full + self.dec_pos)))
        masked = torch.ones(b, n, dtype=torch.bool, device=x.device)
        masked[torch.arange(b, device=x.device)[:, None], visible] = False
        if carries is not None:
            masked = masked & carries
        err = ((pred.float() - target.float()) ** 2).mean(dim=-1)
        # a batch with no scored patch (all silent) gives 0, not NaN
        return (err * masked).sum() / masked.sum().clamp_min(1)

    def carries_signal(self, patches: torch.Tensor) -> torch.Tensor | None:
        """(B, N) True where a patch varies by at least ``flat_std``; None when
        ``signal_only`` is off."""
        if not self.cfg.signal_only:
            return None
        return patches.float().std(dim=-1) >= self.cfg.flat_std


@register_encoder("mae_vit")
def mae_vit(**cfg: Any) -> MAEViT:
    """A fresh MAE-ViT; ``cfg`` holds ``MAEViTCfg`` fields."""
    return MAEViT(MAEViTCfg(**cfg))


# Its signature is MAEViTCfg's: parameter validation binds options against it, so a
# misspelt field fails before any node runs.
mae_vit.__signature__ = inspect.signature(MAEViTCfg)  # type: ignore[attr-defined]
