"""Reading PyTorch Lightning checkpoints without running code from them.

A Lightning ``.ckpt`` (OPERA publishes its encoders as ``encoder-opera{CT,CE,GT}.ckpt``)
is a pickle: loading it with plain ``torch.load`` could execute whatever it names.
It is read with ``torch.load(weights_only=True)``, which only rebuilds tensors and
plain Python data, plus the few plain types Lightning itself pickles, each mapped by
name to a plain stand-in here (Lightning is not imported, nor needed). Anything else
is refused with the file and the object named.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch


class UnsafeCheckpoint(ValueError):
    """A checkpoint names an object that is not plain data; it was not loaded."""


# Plain types Lightning writes into checkpoints, by the name the pickle gives them,
# each read as an OrderedDict: Lightning's AttributeDict (its saved
# hyper-parameters) is a dict with attribute access.
LIGHTNING_PLAIN: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    (OrderedDict, "lightning_fabric.utilities.data.AttributeDict"),
    (OrderedDict, "pytorch_lightning.utilities.parsing.AttributeDict"),
    (OrderedDict, "lightning.fabric.utilities.data.AttributeDict"),
]


def _refused_object(exc: BaseException) -> str:
    """The line of torch's refusal that names the object."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "GLOBAL" in ln or "Unsupported" in ln or "Can only" in ln:
            return ln
    return lines[0] if lines else type(exc).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, read as tensors and plain data only.

    Raises:
        FileNotFoundError: No file at ``path``.
        UnsafeCheckpoint: The file names an object that is not plain data (the
            message names the file and the object), or it is not a readable
            checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(LIGHTNING_PLAIN):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = _refused_object(exc)
        raise UnsafeCheckpoint(
            f"{path}: refused, it holds an object that is not tensors or plain data "
            f"({named[:200]}); nothing from it was run. Convert it where its code is "
            "trusted (save its state_dict with torch.save, or as safetensors)"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise UnsafeCheckpoint(
            f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:200]})"
        ) from exc
    if not isinstance(ckpt, Mapping):
        raise UnsafeCheckpoint(f"{path}: holds a {type(ckpt).__name__}, not a mapping")
    return dict(ckpt)


def lightning_state_dict(path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """The weights of a Lightning checkpoint (its ``state_dict``; a file that is a
    bare state dict is taken as it is), keys starting with ``prefix`` only and with
    it removed.

    Raises:
        UnsafeCheckpoint: As :func:`read_checkpoint`, or no weights under ``prefix``.
    """
    ckpt = read_checkpoint(path)
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, Mapping):
        raise UnsafeCheckpoint(f"{path}: its 'state_dict' is not a mapping")
    out = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    odd = sorted(k for k, v in out.items() if not isinstance(v, torch.Tensor))
    if odd:
        raise UnsafeCheckpoint(
            f"{path}: its state_dict holds entries that are not tensors: "
            f"{', '.join(prefix + k for k in odd[:5])}"
        )
    if not out:
        raise UnsafeCheckpoint(
            f"{path}: no weights under {prefix!r} (keys start with: "
            f"{sorted({str(k).split('.')[0] for k in state})[:8]})"
        )
    return out
