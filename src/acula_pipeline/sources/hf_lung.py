"""HF_Lung V1: 15 s lung-sound recordings with breath-phase and adventitious-sound labels."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import SourceScan, audio_files, recording_row, register
from acula_pipeline.sources.vocab import (
    CAS as CAS_FACT,
)
from acula_pipeline.sources.vocab import (
    DAS as DAS_FACT,
)
from acula_pipeline.sources.vocab import (
    Facts,
    clean,
    present,
    register_vocabulary,
)

# I inhalation, E exhalation, D discontinuous adventitious sound (crackles);
# Wheeze, Stridor and Rhonchi are continuous adventitious sounds (CAS).
EVENTS = frozenset({"I", "E", "D", "Wheeze", "Stridor", "Rhonchi"})
CAS = frozenset({"Wheeze", "Stridor", "Rhonchi"})
NAME = re.compile(r"^steth_\d{8}_\d{2}_\d{2}_\d{2}$")
CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


def parse_time(text: str) -> float:
    """Seconds from ``hh:mm:ss.ffffff``, ``mm:ss.f`` or plain seconds."""
    m = CLOCK.match(text)
    if m:
        return int(m[1] or 0) * 3600 + int(m[2]) * 60 + float(m[3])
    return float(text)


def parse_labels(path: Path) -> list[dict[str, Any]]:
    """Events of a ``…_label.txt``: ``type start end`` per line.

    Raises:
        ValueError: naming the file and line.
    """
    events = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 3 or parts[0] not in EVENTS:
                raise ValueError(f"expected '<{'|'.join(sorted(EVENTS))}> start end'")
            start, end = parse_time(parts[1]), parse_time(parts[2])
            if not 0 <= start < end:
                raise ValueError("expected 0 <= start < end")
        except ValueError as exc:
            raise ValueError(
                f"HF_Lung labels {path.name} line {n}: {exc}, got {line.strip()!r}"
            ) from exc
        events.append({"type": parts[0], "start_s": start, "end_s": end})
    return events


@register("hf_lung")
def scan_hf_lung(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read an HF_Lung V1 copy: ``steth_*.wav`` with ``steth_*_label.txt``.

    The release names recordings by time stamp only, with no patient identifier, so
    each recording is its own subject (splits are recording-disjoint).
    """
    scan = SourceScan()
    wavs = audio_files(root)
    stems = {w.stem for w in wavs}
    for txt in sorted(root.rglob("*_label.txt")):
        if txt.stem.removesuffix("_label") not in stems:
            scan.reject(dataset, txt, "label file without a matching .wav")
    for wav in wavs:
        if not NAME.match(wav.stem):
            scan.reject(
                dataset, wav, "file name does not follow steth_YYYYMMDD_hh_mm_ss"
            )
            continue
        txt = wav.with_name(f"{wav.stem}_label.txt")
        try:
            events = parse_labels(txt)
        except FileNotFoundError:
            scan.reject(dataset, wav, f"label file {txt.name} is missing")
            continue
        except ValueError as exc:
            scan.reject(dataset, txt, str(exc))
            continue
        kinds = [e["type"] for e in events]
        recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=f"{dataset}/{wav.stem}",
            subject_id=f"{dataset}:{wav.stem}",
            modality="lung",
            body_site=None,
            device=None,
            is_synthetic=is_synthetic,
            metadata={
                "events": events,
                "n_inhalations": kinds.count("I"),
                "n_exhalations": kinds.count("E"),
                "n_das": kinds.count("D"),
                "n_cas": sum(k in CAS for k in kinds),
            },
            labels={
                "has_crackles": "D" in kinds,
                "has_wheezes": any(k in CAS for k in kinds),
            },
        )
    return scan


# ---------------------------------------------------------------- vocabulary


@register_vocabulary("hf_lung", ("cas", "das"), {"cas": CAS_FACT, "das": DAS_FACT})
def hf_lung_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an HF_Lung V1 recording (adventitious sounds from its event labels)."""
    return clean(
        {
            "cas": present(unit.get("has_wheezes")),
            "das": present(unit.get("has_crackles")),
        }
    )
