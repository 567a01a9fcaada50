"""Small helpers shared by the report backends and the training code."""

from __future__ import annotations

import hashlib
from pathlib import Path


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else unchanged."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def model_folder_fingerprint(path: str | Path, *extra: str) -> str:
    """Hash of a Hugging Face model folder: its config and its weight files' names
    and sizes (hashing the weights themselves would cost seconds per run), plus any
    ``extra`` strings (pooling, …). Changes when the model does."""
    path = Path(path)
    h = hashlib.sha256("|".join(extra).encode())
    cfg = path / "config.json"
    if cfg.is_file():
        h.update(cfg.read_bytes())
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def path_fingerprint(path: str | Path) -> str:
    """``model_folder_fingerprint`` for a folder; the content hash of a file."""
    path = Path(path)
    if path.is_dir():
        return model_folder_fingerprint(path)
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
