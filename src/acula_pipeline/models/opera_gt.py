"""OPERA-GT: the audio masked autoencoder (ViT-S encoder, Swin decoder) of OPERA.

Written from OPERA's ``src/model/models_mae.py`` (``mae_vit_small``:
``MaskedAutoencoderViTMD`` with ``img_size=(256, 64)``, ``decoder_mode=1``) and the
Swin-v2 block it imports (``src/model/mae_utils/swin_transformer.py``), with their
parameter names, so OPERA-GT's published weights load key for key.

- Input: 256 frames × 64 mels, 4 × 4 patches → 1024 tokens, width 384, 12 blocks of
  6 heads (timm's ``Block``, LayerNorm ε 10⁻⁶), a class token; fixed sine-cosine
  position tables stored as (frozen) parameters.
- Embedding (OPERA's ``forward_feature``): the mean of the patch tokens (class token
  left out) after the last block, then the final LayerNorm: 384-d.
- Self-supervised loss (``forward`` with ``mask_2d=False``): 70 % of the patches
  masked at random, a 256-wide decoder of 16 Swin-v2 blocks (16 heads, scaled cosine
  attention, a log-spaced relative-position MLP, post-norm) and the MSE over the
  masked patches.

The decoder reproduces the published code as it runs, quirk included: its Swin
blocks declare a (32, 8) grid, which is the decoder's 256 channels, not the (64, 16)
token grid, so each block lays its windows over a ``view`` of the tokens that mixes
the token and channel axes. The trained decoder weights only mean something under
that same arrangement, so it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from acula_pipeline.models.htsat import split_heads
from acula_pipeline.models.mae_vit import Block, Mlp

N_FRAMES, N_MELS, PATCH = 256, 64, 4
DIM, DEPTH, HEADS = 384, 12, 6
DEC_DIM, DEC_DEPTH, DEC_HEADS = 256, 16, 16
DEC_FEAT, DEC_WINDOW, DEC_SHIFT = (32, 8), (4, 4), (2, 0)
EPS = 1e-6


@dataclass
class OperaGTCfg:
    """What the self-supervised loss may change (``align.mask_ratio``)."""

    mask_ratio: float = 0.7


def _sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_table(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """MAE's ``get_2d_sincos_pos_embed_flexible(dim, grid, cls_token=True)``:
    (1, 1 + grid₀·grid₁, dim), a zero row first for the class token."""
    gw, gh = np.meshgrid(
        np.arange(grid[1], dtype=np.float32), np.arange(grid[0], dtype=np.float32)
    )
    emb = np.concatenate([_sincos_1d(dim // 2, gw), _sincos_1d(dim // 2, gh)], axis=1)
    emb = np.concatenate([np.zeros((1, dim)), emb], axis=0)
    return torch.from_numpy(emb).float()[None]


class _MetaMlp(nn.Sequential):
    def __init__(self, hidden: int, out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.act = nn.ReLU()
        self.drop1 = nn.Dropout(0.1)
        self.fc2 = nn.Linear(hidden, out)
        self.drop2 = nn.Dropout(0.1)


def _partition(x: torch.Tensor, w: tuple[int, int]) -> torch.Tensor:
    b, h, wd, c = x.shape
    x = x.view(b, h // w[0], w[0], wd // w[1], w[1], c).permute(0, 1, 3, 2, 4, 5)
    return x.contiguous().view(-1, w[0], w[1], c)


def _reverse(
    x: torch.Tensor, w: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    h, wd = size
    b = int(x.shape[0] / (h * wd / w[0] / w[1]))
    x = x.view(b, h // w[0], wd // w[1], w[0], w[1], -1).permute(0, 1, 3, 2, 4, 5)
    return x.contiguous().view(b, h, wd, -1)


class CosineWindowAttention(nn.Module):
    """Swin-v2 window attention: scaled cosine similarity, learnt temperature
    ``tau`` per head, relative-position bias from a small MLP."""

    coords_log: torch.Tensor

    def __init__(self, dim: int, heads: int, window: tuple[int, int]) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.meta_mlp = _MetaMlp(384, heads)
        self.tau = nn.Parameter(torch.ones(heads))
        grid = torch.stack(
            torch.meshgrid(
                torch.arange(window[0]), torch.arange(window[1]), indexing="ij"
            )
        ).flatten(1)
        rel = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0).reshape(-1, 2)
        rel = rel.float()
        self.register_buffer(
            "coords_log", torch.sign(rel) * torch.log1p(rel.abs()), persistent=False
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        q, k, v = split_heads(self.qkv(x), self.heads)
        denom = q.norm(dim=-1, keepdim=True) @ k.norm(dim=-1, keepdim=True).transpose(
            -2, -1
        )
        attn = q @ k.transpose(-2, -1) / denom.clamp(min=1e-6)
        attn = attn / self.tau.clamp(min=0.01).view(1, -1, 1, 1)
        area = self.window[0] * self.window[1]
        bias = self.meta_mlp(self.coords_log).transpose(1, 0).reshape(-1, area, area)
        attn = attn + bias[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, self.heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, n, -1)
        return self.proj(out)


class SwinV2Block(nn.Module):
    """The published decoder block (post-norm), with its grid arrangement."""

    attn_mask: torch.Tensor | None

    def __init__(self, shift: tuple[int, int]) -> None:
        super().__init__()
        feat, win = DEC_FEAT, DEC_WINDOW
        self.window = tuple(f if f <= w else w for f, w in zip(feat, win, strict=True))
        self.shift = tuple(
            0 if f <= w else s for f, w, s in zip(feat, self.window, shift, strict=True)
        )
        self.attn = CosineWindowAttention(DEC_DIM, DEC_HEADS, self.window)  # type: ignore[arg-type]
        self.norm1 = nn.LayerNorm(DEC_DIM, eps=EPS)
        self.mlp = Mlp(DEC_DIM, 4 * DEC_DIM)
        self.norm2 = nn.LayerNorm(DEC_DIM, eps=EPS)
        mask = None
        if any(self.shift):
            img = torch.zeros(1, *feat, 1)
            cnt = 0
            (wh, ww), (sh, sw) = self.window, self.shift
            for hs in (slice(0, -wh), slice(-wh, -sh), slice(-sh, None)):
                for ws in (slice(0, -ww), slice(-ww, -sw), slice(-sw, None)):
                    img[:, hs, ws, :] = cnt
                    cnt += 1
            win_ids = _partition(img, self.window).view(-1, wh * ww)  # type: ignore[arg-type]
            mask = win_ids[:, None] - win_ids[:, :, None]
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        self.register_buffer("attn_mask", mask, persistent=False)

    def _window_attn(self, x: torch.Tensor) -> torch.Tensor:
        h, w = DEC_FEAT
        b, n, c = x.shape
        x = x.view(b, h, w, n)  # as published: the (h, w) grid is laid over channels
        if any(self.shift):
            x = torch.roll(x, shifts=(-self.shift[0], -self.shift[1]), dims=(1, 2))
        win = _partition(x, self.window)  # type: ignore[arg-type]
        win = win.view(-1, self.window[0] * self.window[1], c)
        out = self.attn(win, self.attn_mask)
        out = out.view(-1, self.window[0], self.window[1], c)
        x = _reverse(out, self.window, DEC_FEAT)  # type: ignore[arg-type]
        if any(self.shift):
            x = torch.roll(x, shifts=self.shift, dims=(1, 2))
        return x.view(b, n, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.norm1(self._window_attn(x))
        return x + self.norm2(self.mlp(x))


class PatchEmbed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, DIM, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x[:, None]).flatten(2).transpose(1, 2)


class OperaGTNet(nn.Module):
    """OPERA-GT's encoder and decoder with the published parameter names."""

    def __init__(self) -> None:
        super().__init__()
        grid = (N_MELS // PATCH, N_FRAMES // PATCH)  # MAE's patch_hw, (w, h) order
        self.patch_embed = PatchEmbed()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(sincos_table(DIM, grid), requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(DIM, HEADS, 4.0, eps=EPS) for _ in range(DEPTH)
        )
        self.norm = nn.LayerNorm(DIM, eps=EPS)
        self.decoder_embed = nn.Linear(DIM, DEC_DIM)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, DEC_DIM))
        self.decoder_pos_embed = nn.Parameter(
            sincos_table(DEC_DIM, grid), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            SwinV2Block((0, 0) if i % 2 == 0 else DEC_SHIFT) for i in range(DEC_DEPTH)
        )
        self.decoder_norm = nn.LayerNorm(DEC_DIM, eps=EPS)
        self.decoder_pred = nn.Linear(DEC_DIM, PATCH * PATCH)
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check(self, x: torch.Tensor, exact: bool = False) -> None:
        t, f = x.shape[-2:]
        if f != N_MELS or t % PATCH or t > N_FRAMES or (exact and t != N_FRAMES):
            want = f"{N_FRAMES}" if exact else f"at most {N_FRAMES} (a multiple of 4)"
            raise ValueError(
                f"OPERA-GT reads {want} frames of {N_MELS} mels; got {t} × {f}"
            )

    def _with_cls(self, x: torch.Tensor) -> torch.Tensor:
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls.to(x.dtype), x], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 64) → (B, 384): OPERA's ``forward_feature``."""
        self.check(x)
        h = self.patch_embed(x)
        h = self._with_cls(h + self.pos_embed[:, 1 : h.shape[1] + 1])
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h[:, 1:].mean(dim=1))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, T/4 · F/4, 16), in the patch embedding's token order."""
        b, t, f = x.shape
        x = x.reshape(b, t // PATCH, PATCH, f // PATCH, PATCH)
        return x.permute(0, 1, 3, 2, 4).reshape(b, -1, PATCH * PATCH)

    def reconstruction_loss(
        self,
        x: torch.Tensor,
        mask_ratio: float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """OPERA's ``forward``: random masking, encoder, decoder, masked MSE."""
        self.check(x, exact=True)
        h = self.patch_embed(x) + self.pos_embed[:, 1:]
        b, n, d = h.shape
        keep = int(n * (1 - mask_ratio))
        noise = torch.rand(b, n, device=x.device, generator=generator)
        shuffle = noise.argsort(dim=1)
        restore = shuffle.argsort(dim=1)
        h = torch.gather(h, 1, shuffle[:, :keep, None].expand(-1, -1, d))
        h = self._with_cls(h)
        for blk in self.blocks:
            h = blk(h)
        h = self.decoder_embed(self.norm(h))
        tokens = torch.cat(
            [h[:, 1:], self.mask_token.to(h.dtype).expand(b, n - keep, -1)], dim=1
        )
        tokens = torch.gather(tokens, 1, restore[..., None].expand(-1, -1, h.shape[2]))
        h = tokens + self.decoder_pos_embed[:, 1 : n + 1].to(h.dtype)  # no class token
        for blk in self.decoder_blocks:
            h = blk(h)
        pred = self.decoder_pred(self.decoder_norm(h))
        masked = torch.ones(b, n, device=x.device)
        masked[:, :keep] = 0
        masked = torch.gather(masked, 1, restore)
        err = ((pred.float() - self.patchify(x).float()) ** 2).mean(dim=-1)
        return (err * masked).sum() / masked.sum()
