"""Fixed weights and inputs shared by ``make_reference.py`` and the tests: each
published tensor is filled from its own key (not from any model's initialiser), so
OPERA's code and ours hold the same numbers."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import torch

BATCH = 2
# Derived buffers keep the values the model computed for itself.
KEEP = ("relative_position_index", "attn_mask", "num_batches_tracked")


def fill_published(state: Mapping[str, torch.Tensor]) -> None:
    """Overwrite, in place, every float tensor of a published-layout state dict."""
    with torch.no_grad():
        for key in sorted(state):
            t = state[key]
            if not t.dtype.is_floating_point or key.rsplit(".", 1)[-1] in KEEP:
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            noise = torch.randn(t.shape, generator=g)
            leaf = key.rsplit(".", 1)[-1]
            if t.dim() >= 2:  # weights: unit gain, so signals neither die nor blow up
                values = 1.5 * noise / max(1, t[0].numel()) ** 0.5
            elif leaf == "running_var":
                values = 1.0 + 0.1 * noise.abs()
            elif leaf in ("weight", "tau"):  # norms' scales, attention temperatures
                values = 1.0 + 0.1 * noise
            else:  # biases, running means
                values = 0.05 * noise
            t.copy_(values)


def inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of 256-frame clips and two batches of 128-frame crops, in [0, 1]: noise
    whose level and time course differ from clip to clip (plain noise of one level
    would average out to the same embedding in a pooled CNN)."""
    g = torch.Generator().manual_seed(1)

    def clips(n: int, frames: int) -> torch.Tensor:
        level = torch.linspace(0.2, 1.0, n)[:, None, None]
        t = torch.arange(frames, dtype=torch.float32)[None, :, None]
        course = 0.5 + 0.5 * torch.sin(t / (5.0 + 7.0 * torch.arange(n)[:, None, None]))
        return level * course * torch.rand(n, frames, 64, generator=g)

    return clips(BATCH, 256), clips(4, 128), clips(4, 128)
