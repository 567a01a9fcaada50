"""The students of the AcuLa paper: OPERA-CT, OPERA-CE and OPERA-GT (Zhang et al.,
2024, github evelyn0414/OPERA), from their published checkpoints.

``align.encoder.name: opera_ct`` (or ``opera_ce``, ``opera_gt``) with
``align.encoder.path`` set to ``encoder-operaCT.ckpt`` (the PyTorch Lightning file
OPERA publishes) or to a folder written by ``acula convert``. Without a path the
model starts from random weights (for tests and from-scratch runs).

=========  =======================================  ======  =========================
name       architecture (published module)          dim     self-supervised loss
=========  =======================================  ======  =========================
opera_ct   HTS-AT (``Cola(encoder="htsat")``)        768     COLA, OPERA's own head
opera_ce   Conv2d(1, 3, 3) + EfficientNet-B0         1280    COLA, OPERA's own head
           (``Cola(encoder="efficientnet")``)
opera_gt   ViT-S masked autoencoder                 384     masked reconstruction,
           (``mae_vit_small``, Swin decoder)                OPERA's own decoder
=========  =======================================  ======  =========================

All three read OPERA's frontend, which is the pipeline's default one (16 kHz, 64
Slaney mels 50–8000 Hz, n_fft 1024, hop 512, dB from the clip's peak, min-max to
[0, 1]): the stored log-mel clips, 256 frames (8.19 s) each. OPERA-GT reads exactly
that clip; HTS-AT stretches up to 1024 frames; EfficientNet takes any length.

Loading never runs code from the file (``models.lightning``): the weights are read
as tensors, renamed from the published layout to ours, and every key is accounted
for: a published key that is neither loaded nor known to be unused, or one of ours
left without a published value, is an error naming the keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from acula_pipeline.models.base import AudioEncoder, register_encoder
from acula_pipeline.models.cola import ColaHead
from acula_pipeline.models.efficientnet import EfficientNetB0
from acula_pipeline.models.htsat import HTSAT
from acula_pipeline.models.htsat import UNUSED_PREFIXES as HTSAT_UNUSED
from acula_pipeline.models.lightning import UnsafeCheckpoint, lightning_state_dict
from acula_pipeline.models.opera_gt import OperaGTCfg, OperaGTNet


@dataclass(frozen=True)
class Layout:
    """How a published checkpoint's keys become ours."""

    published: str  # OPERA's name for the model (its checkpoint file's stem)
    renames: tuple[tuple[str, str], ...]  # (published prefix, our prefix)
    unused: tuple[str, ...]  # published prefixes the embedding never runs


COLA_RENAMES = (
    ("g.", "cola.g."),
    ("layer_norm.", "cola.layer_norm."),
    ("linear.", "cola.linear."),
)
LAYOUTS = {
    "opera_ct": Layout(
        "operaCT",
        (("encoder.encoder.htsat.", "htsat."), *COLA_RENAMES),
        tuple("encoder.encoder.htsat." + p for p in HTSAT_UNUSED),
    ),
    "opera_ce": Layout(
        "operaCE",
        (
            ("encoder.cnn1.", "cnn1."),
            ("encoder.efficientnet.", "efficientnet."),
            *COLA_RENAMES,
        ),
        (),
    ),
    "opera_gt": Layout("operaGT", (("", "net."),), ()),
}


class LayoutMismatch(ValueError):
    """A checkpoint's keys or shapes are not those of the published model."""


def published_to_ours(
    name: str, state: Mapping[str, torch.Tensor], source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The weights under our names, and the published keys left out as unused.

    Raises:
        LayoutMismatch: A key is neither renamed nor known to be unused.
    """
    layout = LAYOUTS[name]
    out: dict[str, torch.Tensor] = {}
    unused, unknown = [], []
    for key, value in state.items():
        if layout.unused and key.startswith(layout.unused):
            unused.append(key)
            continue
        for old, new in layout.renames:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise LayoutMismatch(
            f"{source}: {len(unknown)} key(s) are not in the published "
            f"{layout.published} layout, e.g. {', '.join(sorted(unknown)[:5])} "
            f"(is this an {layout.published} checkpoint?)"
        )
    return out, unused


def ours_to_published(
    name: str, state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The inverse renaming (unused published modules are not recreated)."""
    layout = LAYOUTS[name]
    out = {}
    for key, value in state.items():
        for old, new in sorted(layout.renames, key=lambda r: -len(r[1])):
            if key.startswith(new):
                out[old + key[len(new) :]] = value
                break
    return out


def guess_family(keys: list[str]) -> str | None:
    """Which OPERA model a published state dict belongs to, from its keys."""
    if any(k.startswith("encoder.encoder.htsat.") for k in keys):
        return "opera_ct"
    if any(k.startswith("encoder.efficientnet.") for k in keys):
        return "opera_ce"
    if any(k.startswith("decoder_blocks.") for k in keys) and "cls_token" in keys:
        return "opera_gt"
    return None


class OperaEncoder(AudioEncoder):
    """Shared loading and spec; subclasses build the network."""

    input_kind = "logmel"

    def __init__(self, path: str | Path | None) -> None:
        super().__init__()

    def spec(self) -> dict[str, Any]:
        # No path: a model folder holds the weights, so it rebuilds anywhere; the
        # checkpoint's content is fingerprinted in the align config instead.
        return {"name": self.name, **self._options()}

    def _options(self) -> dict[str, Any]:
        return {}

    def load_weights(self, path: str | Path) -> None:
        """Published checkpoint (``.ckpt``) or ``acula convert`` folder → weights.

        Raises:
            FileNotFoundError: Nothing at ``path``.
            UnsafeCheckpoint: The file holds objects that are not plain data.
            LayoutMismatch: Keys or shapes differ from the published model's.
        """
        path = Path(path)
        if path.is_dir():
            self._load_checked(self._folder_state(path), [], str(path))
        else:
            self.load_published(lightning_state_dict(path), str(path))

    def load_published(
        self, published: Mapping[str, torch.Tensor], source: str
    ) -> None:
        """Weights from a published state dict already read (``source`` names it in
        errors).

        Raises:
            LayoutMismatch: Keys or shapes differ from the published model's.
        """
        state, unused = published_to_ours(self.name, published, source)
        self._load_checked(state, unused, source)

    def _load_checked(
        self, state: dict[str, torch.Tensor], unused: list[str], source: str
    ) -> None:
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        wrong = sorted(
            k
            for k in set(own) & set(state)
            if tuple(own[k].shape) != tuple(state[k].shape)
        )
        extra = sorted(set(state) - set(own))
        if missing or wrong or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:4])})")
            if extra:
                parts.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:4])})")
            if wrong:
                k = wrong[0]
                parts.append(
                    f"{len(wrong)} of another shape (e.g. {k}: "
                    f"{tuple(state[k].shape)} here, {tuple(own[k].shape)} in the model)"
                )
            raise LayoutMismatch(
                f"{source}: not the published {LAYOUTS[self.name].published} layout: "
                + "; ".join(parts)
            )
        self.load_state_dict(state)
        self.loaded = {"tensors": len(state), "unused": len(unused)}

    def _folder_state(self, folder: Path) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        cfg_file, weights = folder / "config.json", folder / "model.safetensors"
        if not (cfg_file.is_file() and weights.is_file()):
            raise FileNotFoundError(
                f"{folder}: a model folder needs config.json and model.safetensors "
                "(write one with `acula convert CHECKPOINT -o FOLDER`)"
            )
        enc = json.loads(cfg_file.read_text()).get("encoder") or {}
        if enc.get("name") != self.name:
            raise LayoutMismatch(
                f"{folder}: holds a {enc.get('name')!r} encoder, not {self.name!r}"
            )
        # Every model folder stores its encoder under ``student.`` (an aligned one
        # its heads beside it): the encoder is taken, the heads are not.
        return {
            k.removeprefix("student."): v
            for k, v in load_file(weights).items()
            if k.startswith("student.")
        }

    # COLA (CT, CE): two random crops of each clip, OPERA's head and bilinear loss.
    def _two_crops(
        self, x: torch.Tensor, crop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = x.shape[:2]
        crop = min(crop, t)
        idx = torch.arange(crop, device=x.device)
        views = []
        for _ in range(2):
            start = torch.randint(0, t - crop + 1, (b, 1), device=x.device)
            rows = (start + idx)[..., None].expand(-1, -1, x.shape[2])
            views.append(torch.gather(x, 1, rows))
        return views[0], views[1]


class _ColaStudent(OperaEncoder):
    """OPERA-CT/CE: an encoder plus OPERA's COLA head."""

    cola: ColaHead

    def __init__(self, path: str | Path | None, crop_frames: int) -> None:
        super().__init__(path)
        if crop_frames < 16:
            raise ValueError(
                f"{self.name}: crop_frames must be at least 16, got {crop_frames}"
            )
        self.crop_frames = int(crop_frames)

    def _options(self) -> dict[str, Any]:
        return {"crop_frames": self.crop_frames}

    @property
    def has_ssl(self) -> bool:
        return True

    def ssl_loss(self, x: torch.Tensor) -> torch.Tensor:
        """COLA: two random ``crop_frames`` crops of each clip should match each
        other more than any other clip's crop (OPERA's ``Cola.training_step``). The
        default crop, 200 frames (6.4 s), is OPERA's for breathing and lung-sound
        recordings (50 for coughs); OPERA's crop augmentations (random masking and
        scaling) are not applied."""
        v1, v2 = self._two_crops(x, self.crop_frames)
        return self.cola(self.encode_audio(v1), self.encode_audio(v2))


class OperaCT(_ColaStudent):
    """OPERA-CT: HTS-AT, 768-d."""

    name = "opera_ct"
    embed_dim = 768

    def __init__(self, path: str | Path | None = None, crop_frames: int = 200) -> None:
        super().__init__(path, crop_frames)
        self.htsat = HTSAT()
        self.cola = ColaHead(768)
        if path is not None:
            self.load_weights(path)

    def encode_audio(self, x: torch.Tensor) -> torch.Tensor:
        return self.htsat(x)


class OperaCE(_ColaStudent):
    """OPERA-CE: Conv2d(1, 3, 3) stem + EfficientNet-B0, 1280-d."""

    name = "opera_ce"
    embed_dim = 1280

    def __init__(self, path: str | Path | None = None, crop_frames: int = 200) -> None:
        super().__init__(path, crop_frames)
        self.cnn1 = nn.Conv2d(1, 3, kernel_size=3)
        self.efficientnet = EfficientNetB0(drop_connect_rate=0.1)  # OPERA's p
        self.cola = ColaHead(1280)
        if path is not None:
            self.load_weights(path)

    def encode_audio(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < 3 or x.shape[2] < 3:
            raise ValueError(
                f"OPERA-CE needs at least 3 × 3 input; got {tuple(x.shape[1:])}"
            )
        return self.efficientnet(self.cnn1(x[:, None]))


class OperaGT(OperaEncoder):
    """OPERA-GT: ViT-S masked autoencoder, 384-d."""

    name = "opera_gt"
    embed_dim = 384

    def __init__(self, path: str | Path | None = None, mask_ratio: float = 0.7) -> None:
        super().__init__(path)
        self.cfg = OperaGTCfg(mask_ratio=mask_ratio)
        self.net = OperaGTNet()
        if path is not None:
            self.load_weights(path)

    def _options(self) -> dict[str, Any]:
        return {"mask_ratio": self.cfg.mask_ratio}

    def encode_audio(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)

    @property
    def has_ssl(self) -> bool:
        return True

    def ssl_loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.net.reconstruction_loss(x, self.cfg.mask_ratio, generator)


@register_encoder("opera_ct")
def opera_ct(path: str | Path | None = None, crop_frames: int = 200) -> OperaCT:
    """OPERA-CT (HTS-AT) from ``encoder-operaCT.ckpt`` or an ``acula convert`` folder."""
    return OperaCT(path, crop_frames)


@register_encoder("opera_ce")
def opera_ce(path: str | Path | None = None, crop_frames: int = 200) -> OperaCE:
    """OPERA-CE (EfficientNet-B0) from ``encoder-operaCE.ckpt`` or a converted folder."""
    return OperaCE(path, crop_frames)


@register_encoder("opera_gt")
def opera_gt(path: str | Path | None = None, mask_ratio: float = 0.7) -> OperaGT:
    """OPERA-GT (ViT-S MAE) from ``encoder-operaGT.ckpt`` or a converted folder."""
    return OperaGT(path, mask_ratio)


__all__ = [
    "LAYOUTS",
    "LayoutMismatch",
    "UnsafeCheckpoint",
    "guess_family",
    "ours_to_published",
]
