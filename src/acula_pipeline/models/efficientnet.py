"""EfficientNet-B0 (Tan & Le, 2019) in the ``efficientnet_pytorch`` layout, the CNN
under OPERA-CE.

Written from ``efficientnet_pytorch`` 0.7.1 (``model.py``, ``utils.py``), which OPERA
builds with ``EfficientNet.from_name("efficientnet-b0", include_top=False)``: the
parameter names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_bn1``, …) are its
own, so OPERA-CE's weights load key for key. As there, every convolution pads like
TensorFlow's ``SAME`` for the 224 × 224 image the model was defined for: the padding
is fixed when the model is built, whatever the size of the input it later reads,
and it is reproduced here exactly. Batch norm: momentum 0.01, ε 10⁻³; activation:
swish; drop-connect grows linearly over the 16 blocks up to ``drop_connect_rate``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in, out) per stage; squeeze-excite 0.25.
B0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
IMAGE_SIZE = 224  # the size static padding is computed for (efficientnet-b0's)


def _bn(channels: int) -> nn.BatchNorm2d:
    """TensorFlow's batch norm settings: momentum 0.99 (PyTorch's 0.01), ε 10⁻³."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (before, after) of one side of ``size``."""
    out = math.ceil(size / s)
    pad = max((out - 1) * s + k - size, 0)
    return pad // 2, pad - pad // 2


class StaticSameConv2d(nn.Conv2d):
    """A convolution with the ``SAME`` padding of a fixed ``image_size``."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        image_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(cin, cout, k, stride=stride, groups=groups, bias=bias)
        top, bottom = _same_pad(image_size, k, stride)
        self.pad = (top, bottom, top, bottom)  # (left, right, top, bottom): square

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck with squeeze-excitation."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int, expand: int, image_size: int
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.expand, self.stride, self.skip = (
            expand,
            stride,
            stride == 1 and cin == cout,
        )
        if expand != 1:
            self._expand_conv = StaticSameConv2d(cin, mid, 1, image_size)
            self._bn0 = _bn(mid)
        self._depthwise_conv = StaticSameConv2d(
            mid, mid, k, image_size, stride=stride, groups=mid
        )
        self._bn1 = _bn(mid)
        squeezed = max(1, int(cin * 0.25))
        self._se_reduce = StaticSameConv2d(mid, squeezed, 1, 1, bias=True)
        self._se_expand = StaticSameConv2d(squeezed, mid, 1, 1, bias=True)
        self._project_conv = StaticSameConv2d(
            mid, cout, 1, math.ceil(image_size / stride)
        )
        self._bn2 = _bn(cout)

    def forward(self, inputs: torch.Tensor, drop_connect: float) -> torch.Tensor:
        x = inputs
        if self.expand != 1:
            x = F.silu(self._bn0(self._expand_conv(x)))
        x = F.silu(self._bn1(self._depthwise_conv(x)))
        s = self._se_expand(F.silu(self._se_reduce(F.adaptive_avg_pool2d(x, 1))))
        x = self._bn2(self._project_conv(torch.sigmoid(s) * x))
        if self.skip:
            if drop_connect and self.training:
                keep = 1 - drop_connect
                mask = torch.floor(
                    keep
                    + torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)
                )
                x = x / keep * mask
            x = x + inputs
        return x


class EfficientNetB0(nn.Module):
    """(B, 3, H, W) → (B, 1280): the convolutional trunk, average-pooled."""

    def __init__(self, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        self.drop_connect_rate = drop_connect_rate
        size = IMAGE_SIZE
        self._conv_stem = StaticSameConv2d(3, 32, 3, size, stride=2)
        self._bn0 = _bn(32)
        size = math.ceil(size / 2)
        blocks = []
        for repeats, k, stride, expand, cin, cout in B0_STAGES:
            for i in range(repeats):
                s = stride if i == 0 else 1
                blocks.append(
                    MBConvBlock(cin if i == 0 else cout, cout, k, s, expand, size)
                )
                size = math.ceil(size / s)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = StaticSameConv2d(320, 1280, 1, size)
        self._bn1 = _bn(1280)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self._bn0(self._conv_stem(x)))
        n = len(self._blocks)
        for i, block in enumerate(self._blocks):
            x = block(x, self.drop_connect_rate * i / n)
        x = F.silu(self._bn1(self._conv_head(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
