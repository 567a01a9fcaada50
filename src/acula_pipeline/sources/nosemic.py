"""NoseMic: nasal breathing with the respiratory rate in the file name."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import SourceScan, audio_files, recording_row, register
from acula_pipeline.sources.vocab import (
    TEXT,
    Fact,
    Facts,
    clean,
    num,
    register_vocabulary,
)

NAME = re.compile(r"^(?P<user>[^_]+)_(?P<x>[^_]+)_(?P<y>[^_]+)_(?P<rr>[^_]+)$")


@register("nosemic")
def scan_nosemic(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read a NoseMic copy: ``audio/{user}_{x}_{y}_{rr}.wav``, rr in breaths/min."""
    scan = SourceScan()
    data = root / "audio" if (root / "audio").is_dir() else root
    for wav in audio_files(data):
        m = NAME.match(wav.stem)
        if m is None:
            scan.reject(dataset, wav, "file name does not follow {user}_{x}_{y}_{rr}")
            continue
        try:
            rate = float(m["rr"])
        except ValueError:
            rate = math.nan  # fails the range test below
        if not 0 < rate < 120:
            scan.reject(
                dataset,
                wav,
                f"respiratory rate {m['rr']!r} in the file name is not a number "
                "in 0–120 breaths/min",
            )
            continue
        recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=f"{dataset}/{wav.stem}",
            subject_id=f"{dataset}:{m['user']}",
            modality="breath",
            body_site="nose",
            device=None,
            is_synthetic=is_synthetic,
            metadata={
                "user": m["user"],
                "session": f"{m['x']}_{m['y']}",
                "respiratory_rate": rate,
            },
            labels={"respiratory_rate": rate, "recording_type": "nasal_breathing"},
        )
    return scan


# ---------------------------------------------------------------- vocabulary

VOCABULARY = {
    "respiratory_rate": Fact(
        "number",
        tol=0.05,
        read=r"\brespiratory rate",
    ),
    "recording_type": TEXT,
    "participant_id": TEXT,
}


@register_vocabulary("nosemic", ("respiratory_rate",), VOCABULARY)
def nosemic_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of a NoseMic nasal-breathing recording."""
    return clean(
        {
            "participant_id": meta.get("user"),
            "recording_type": "nasal breathing",
            "respiratory_rate": num(unit.get("respiratory_rate")),
        }
    )
