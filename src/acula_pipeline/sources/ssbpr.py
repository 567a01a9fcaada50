"""SSBPR: snoring sounds labelled with the sleeper's body position (INTERSPEECH 2023)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acula_pipeline.sources.base import SourceScan, audio_files, recording_row, register
from acula_pipeline.sources.vocab import (
    SEX,
    TEXT,
    Fact,
    Facts,
    Value,
    clean,
    register_vocabulary,
)

# The last field of A-B-C.wav (the dataset's README): C is the body position.
POSITIONS = {
    "0": "supine",
    "1": "supine_head_left",
    "2": "supine_head_right",
    "3": "left_lateral",
    "4": "right_lateral",
    "5": "prone",
}
NAME = re.compile(r"^(?P<patient>[^-]+-[^-]+)-(?P<position>\d)$")
SEXES = {"female": "female", "male": "male"}


@register("ssbpr", {"body_position": frozenset(POSITIONS.values())})
def scan_ssbpr(root: Path, dataset: str, is_synthetic: bool) -> SourceScan:
    """Read an SSBPR copy: ``{female,male}/…/A-B-C.wav``, where ``A-B`` is the
    patient and ``C`` the body position (0 supine, 1 and 2 supine with the head
    turned left or right, 3 and 4 lying on the left or right side, 5 prone). The
    top folder gives the sex."""
    scan = SourceScan()
    for wav in audio_files(root):
        m = NAME.match(wav.stem)
        if m is None or m["position"] not in POSITIONS:
            scan.reject(
                dataset,
                wav,
                "file name does not follow A-B-C.wav with C a body position 0–5",
            )
            continue
        top = wav.relative_to(root).parts[0].lower()
        recording_row(
            scan,
            dataset=dataset,
            path=wav,
            recording_id=f"{dataset}/{wav.relative_to(root).with_suffix('').as_posix()}",
            subject_id=f"{dataset}:{m['patient']}",
            modality="breath",
            body_site=None,
            device=None,
            is_synthetic=is_synthetic,
            metadata={"patient": m["patient"], "position_code": m["position"]},
            labels={
                "body_position": POSITIONS[m["position"]],
                "sex": SEXES.get(top),
                "recording_type": "snoring",
            },
        )
    return scan


# ---------------------------------------------------------------- vocabulary

POSITION = Fact(
    "label",
    {
        # Reports are checked clause by clause (a comma ends one): no commas here.
        "supine": Value("supine", read=r"\bsupine\b(?![^.]*\bhead\b)"),
        "supine_head_left": Value(
            "supine with the head turned left",
            read=r"\bsupine\b[^.]*\bhead\b[^.]*\bleft\b",
        ),
        "supine_head_right": Value(
            "supine with the head turned right",
            read=r"\bsupine\b[^.]*\bhead\b[^.]*\bright\b",
        ),
        "left_lateral": Value(
            "lying on the left side",
            read=r"\b(?:lying on (?:the|their|his|her) left side|left[- ]side lying|"
            r"left lateral)\b",
        ),
        "right_lateral": Value(
            "lying on the right side",
            read=r"\b(?:lying on (?:the|their|his|her) right side|right[- ]side lying|"
            r"right lateral)\b",
        ),
        "prone": Value("prone", read=r"\bprone\b"),
    },
)
VOCABULARY = {
    "body_position": POSITION,
    "recording_type": TEXT,
    "sex": SEX,
    "participant_id": TEXT,
}


@register_vocabulary("ssbpr", ("body_position",), VOCABULARY)
def ssbpr_facts(unit: Mapping[str, Any], meta: Mapping[str, Any]) -> Facts:
    """Facts of an SSBPR snoring recording."""
    return clean(
        {
            "participant_id": meta.get("patient"),
            "recording_type": "snoring",
            "sex": unit.get("sex"),
            "body_position": POSITION.text(unit.get("body_position")),
        }
    )
