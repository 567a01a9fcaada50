"""Write a study's best settings into ``params.yaml``.

The file is edited in place with ruamel.yaml's round-trip mode, so its comments and
layout stay; only the searched values change. DVC reads ``align`` from that file, so
the next ``dvc repro`` retrains ``align`` (and re-runs ``evaluate``) with them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML

from acula_pipeline.runtime import atomic_file
from acula_pipeline.training.stages import AlignParams
from acula_pipeline.tuning.space import get_dotted

BEST = Path("data/08_reporting/tuning/best_params.json")
ALIGN_PARAMS = Path("params.yaml")


def _null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _set(node: Any, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def apply_best(
    best: str | Path = BEST,
    params_file: str | Path = ALIGN_PARAMS,
    dry_run: bool = False,
) -> dict[str, tuple[Any, Any]]:
    """Set each best setting under ``align`` in ``params_file``; returns
    ``{dotted name: (old, new)}`` for the values that change."""
    best, params_file = Path(best), Path(params_file)
    if not best.exists():
        raise FileNotFoundError(
            f"{best}: no tuning result; run `kedro run --pipeline=tune` first"
        )
    try:
        summary = json.loads(best.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{best}: not a JSON file ({e})") from e
    if not isinstance(summary, dict) or "best" not in summary:
        raise ValueError(f"{best}: not a best_params.json written by the tune pipeline")
    if not summary["best"]:
        raise ValueError(
            f"{best}: the study {summary.get('study')!r} has no complete trial"
        )
    best_trial = summary["best"]
    values: Mapping[str, Any] | None = best_trial.get(
        "settings", best_trial.get("params")
    )
    if not isinstance(values, Mapping):
        raise ValueError(f"{best}: the best trial lists no settings")
    yaml = YAML()  # round-trip: comments and layout survive
    yaml.preserve_quotes = True
    yaml.representer.add_representer(type(None), _null)  # `null`, not an empty value
    doc = yaml.load(params_file.read_text())
    if not isinstance(doc, Mapping) or "align" not in doc:
        raise KeyError(f"{params_file}: no top-level 'align' block")
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in values.items():
        try:
            old = get_dotted(doc["align"], name)
        except KeyError:
            raise KeyError(f"{params_file}: align.{name} does not exist") from None
        if old != value:
            changes[name] = (old, value)
            _set(doc["align"], name.split("."), value)
    # The result must still be valid align parameters before anything is written.
    try:
        AlignParams(**json.loads(json.dumps(doc["align"])))
    except ValidationError as e:
        raise ValueError(
            f"{params_file}: with the settings of {best} align would be invalid "
            f"(nothing written): {e}"
        ) from e
    if changes and not dry_run:
        with atomic_file(params_file) as tmp, tmp.open("w") as f:
            yaml.dump(doc, f)
    return changes


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m acula_pipeline.tuning",
        description="Tuning helpers for acula-pipeline.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ap = sub.add_parser(
        "apply",
        help="write the best settings of the last study into parameters_align.yml",
        description="Write best_params.json's settings under `align` in the "
        "parameters file (comments kept). `dvc repro` then retrains align with them.",
    )
    ap.add_argument("--best", default=str(BEST), help=f"default: {BEST}")
    ap.add_argument(
        "--params", default=str(ALIGN_PARAMS), help=f"default: {ALIGN_PARAMS}"
    )
    ap.add_argument("--dry-run", action="store_true", help="show, do not write")
    args = parser.parse_args(argv)
    try:
        changes = apply_best(args.best, args.params, args.dry_run)
    except (OSError, KeyError, ValueError) as e:
        parser.exit(2, f"error: {e}\n")
    if not changes:
        _say(f"{args.params}: already holds the best settings; nothing changed")
        return 0
    verb = "would change" if args.dry_run else "changed"
    _say(f"{args.params}: {verb} {len(changes)} setting(s)")
    for name, (old, new) in changes.items():
        _say(f"  align.{name}: {old!r} -> {new!r}")
    if not args.dry_run:
        _say("Run `dvc repro` to retrain align and re-run evaluate with them.")
    return 0
