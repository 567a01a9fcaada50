"""HTS-AT (Chen et al., 2022), the Swin-transformer audio encoder under OPERA-CT.

Written from OPERA's ``src/model/htsat/htsat.py`` (itself from the HTS-AT and
Swin-Transformer code) with its defaults and parameter names, so that OPERA-CT's
published weights load key for key: spectrogram 256 × 256 (the 64-mel input, up to
1024 frames, folded into 4 rows of 256 frames), 4 × 4 patches, widths 96 → 768 over
depths 2, 2, 6, 2 with 4, 8, 16, 32 heads, windows of 8. The embedding is OPERA's
``latent_output``: the mean of the last stage's normalised tokens (768-d).

Only the embedding path is built. The published module also holds a waveform →
log-mel front end (OPERA feeds spectrograms, so it never runs) and an AudioSet
classifier after the embedding; their weights are listed in ``UNUSED_PREFIXES`` and
are not loaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acula_pipeline.models.mae_vit import Mlp  # fc1, GELU, fc2: timm's names

# Submodules of the published HTS-AT that the embedding never runs.
UNUSED_PREFIXES = (
    "spectrogram_extractor.",
    "logmel_extractor.",
    "tscam_conv.",
    "head.",
)


def _window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) → (B · windows, w · w, C)."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _window_reverse(windows: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    """(B · windows, w · w, C) → (B, H, W, C)."""
    b = windows.shape[0] // ((h // w) * (wd // w))
    x = windows.view(b, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, -1)


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability ``p``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def split_heads(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, 3·C) of one qkv projection → (3, B, heads, N, C / heads)."""
    b, n, c3 = qkv.shape
    return qkv.view(b, n, 3, heads, c3 // (3 * heads)).permute(2, 0, 3, 1, 4)


class WindowAttention(nn.Module):
    """Window self-attention with a learnt relative-position bias (Swin v1)."""

    relative_position_index: torch.Tensor

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads)
        )
        coords = torch.stack(
            torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += window - 1
        rel[:, :, 1] += window - 1
        rel[:, :, 0] *= 2 * window - 1
        self.register_buffer("relative_position_index", rel.sum(-1))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        q, k, v = split_heads(self.qkv(x), self.heads)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)[None]  # 1, heads, n, n
        if mask is not None:  # windows are batch-major: (batch, window, heads, n, d)
            nw = mask.shape[0]
            q, k, v = (t.reshape(bw // nw, nw, *t.shape[1:]) for t in (q, k, v))
            bias = bias + mask[:, None]  # window, heads, n, n
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        out = out.reshape(bw, self.heads, n, c // self.heads)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """A (shifted-)window transformer block at a fixed token grid."""

    attn_mask: torch.Tensor | None

    def __init__(
        self, dim: int, grid: int, heads: int, window: int, shift: int, drop_path: float
    ) -> None:
        super().__init__()
        if grid <= window:  # one window covers the grid: no shift
            window, shift = grid, 0
        self.grid, self.window, self.shift = grid, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        mask = None
        if shift > 0:
            img = torch.zeros(1, grid, grid, 1)
            cnt = 0
            bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            for hs in bands:
                for ws in bands:
                    img[:, hs, ws, :] = cnt
                    cnt += 1
            win = _window_partition(img, window).squeeze(-1)
            mask = win[:, None, :] - win[:, :, None]
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        # Persistent, as in the published checkpoints (their keys load one for one).
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        g, w, s = self.grid, self.window, self.shift
        h = self.norm1(x).view(b, g, g, c)
        if s:
            h = torch.roll(h, shifts=(-s, -s), dims=(1, 2))
        h = self.attn(_window_partition(h, w), self.attn_mask)
        h = _window_reverse(h, w, g, g)
        if s:
            h = torch.roll(h, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(h.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2 × 2 neighbouring tokens → one token of twice the width."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.grid, self.grid, c)
        parts = (x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2])
        return self.reduction(self.norm(torch.cat(parts, -1).view(b, -1, 4 * c)))


class BasicLayer(nn.Module):
    def __init__(
        self,
        dim: int,
        grid: int,
        depth: int,
        heads: int,
        window: int,
        drop_paths: list[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, grid, heads, window, 0 if i % 2 == 0 else window // 2, dp)
            for i, dp in enumerate(drop_paths)
        )
        self.downsample = PatchMerging(dim, grid) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class HTSAT(nn.Module):
    """HTS-AT's embedding path: (B, frames ≤ 1024, 64 mels) → (B, 768)."""

    def __init__(
        self,
        spec_size: int = 256,
        n_mels: int = 64,
        patch: int = 4,
        dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        heads: tuple[int, ...] = (4, 8, 16, 32),
        window: int = 8,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.spec_size, self.n_mels = spec_size, n_mels
        self.freq_ratio = spec_size // n_mels
        self.num_features = dim * 2 ** (len(depths) - 1)
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.patch_embed = PatchEmbed(patch, dim)
        grid = spec_size // patch
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.layers.append(
                BasicLayer(
                    dim * 2**i,
                    grid // 2**i,
                    depth,
                    heads[i],
                    window,
                    dpr[start : start + depth],
                    downsample=i < len(depths) - 1,
                )
            )
        self.norm = nn.LayerNorm(self.num_features)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) → (B, 1, spec, spec): stretch to 1024 frames (bicubic), then
        fold the four 256-frame quarters into rows (OPERA's ``reshape_wav2img``)."""
        target_t = self.spec_size * self.freq_ratio
        t, f = x.shape[2], x.shape[3]
        if t > target_t or f != self.n_mels:
            raise ValueError(
                f"HTS-AT takes at most {target_t} frames of {self.n_mels} mels; got "
                f"{t} × {f}"
            )
        if t < target_t:
            x = F.interpolate(x, (target_t, f), mode="bicubic", align_corners=True)
        x = x.permute(0, 1, 3, 2)  # B C F T
        b, c = x.shape[:2]
        x = x.reshape(b, c, f, self.freq_ratio, target_t // self.freq_ratio)
        return x.permute(0, 1, 3, 2, 4).reshape(b, c, self.spec_size, self.spec_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) log-mel → (B, 768): the mean of the normalised last-stage
        tokens (OPERA's ``latent_output``)."""
        x = x[:, None]  # B 1 T F
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise per mel band
        x = self.patch_embed(self.to_image(x))
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).mean(dim=1)
