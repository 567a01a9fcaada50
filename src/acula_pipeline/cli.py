"""Project CLI for ``kedro``: ``kedro run`` with one-line errors for bad input.

Kedro loads ``<package>.cli.cli`` and lets its commands replace the built-in ones
of the same name. ``run`` here is Kedro's own (same options, same behaviour), except
that a run stopped by bad input before any node ran — a ``--params`` value the
parameter models refuse, or inputs of earlier pipelines that are missing
(``hooks.InputChecks``) — ends with one line naming the key or file and what is
wrong, and exit status 2, instead of a 150-line traceback. Anything else keeps
Kedro's traceback. Framework glue, like ``settings.py`` and ``hooks.py``.
"""

from __future__ import annotations

import difflib
import logging
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from pydantic import BaseModel

from acula_pipeline.hooks import MissingInputs

# Kedro logs the whole validation error before raising it; the one line below says it.
_VALIDATOR_LOGGER = "kedro.validation.parameter_validator"


class BadInput(click.ClickException):
    """One line, exit status 2 (bad input, not a crash)."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


def _validation_lines(text: str) -> list[str]:
    """``parameter.key: message`` for each error in Kedro's validation message
    (pydantic's text: an unindented location line, then the indented message;
    an error of the whole model has no location line)."""
    out: list[str] = []
    name, loc = "", ""
    for line in text.splitlines():
        found = re.match(r"- Parameter '([^']+)'", line)
        if found:
            name, loc = found.group(1), ""
        elif line.startswith("    ") or not line.strip():
            continue  # "For further information visit …"
        elif line.startswith("  "):
            msg = re.sub(r"\s*\[type=.*$", "", line.strip()).removeprefix(
                "Value error, "
            )
            if msg == "Extra inputs are not permitted" and name:
                msg = _unknown_key(name, loc) or msg
            out.append(f"{name}{'.' + loc if loc else ''}: {msg}")
            loc = ""
        elif name and not line.startswith("Parameter validation failed"):
            loc = line.strip()
    return out


def _model_keys(tp: Any, path: list[str]) -> list[str] | None:
    """The keys the parameter model ``tp`` takes at ``path`` (a pydantic error
    location: field names, list indices, mapping keys), or ``None`` if the path
    does not lead to a model."""
    for part in [*path, None]:
        while typing.get_origin(tp) in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(models) != 1:
                return None
            tp = models[0]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {(f.alias or k): f for k, f in tp.model_fields.items()}
            if part is None:
                return sorted(fields)
            if part not in fields:
                return None
            tp = fields[part].annotation
        elif part is not None and isinstance(origin, type) and args:
            if issubclass(origin, Mapping):
                tp = args[-1]
            elif issubclass(origin, Sequence) and part.isdigit():
                tp = args[0]
            else:
                return None
        else:
            return None
    return None


def _unknown_key(name: str, loc: str) -> str | None:
    """'no such key; did you mean …? <where> takes …' for a key the parameter
    model of the node reading ``params:<name>`` does not have."""
    from kedro.framework.project import pipelines
    from kedro.validation.type_extractor import TypeExtractor

    try:
        model = TypeExtractor(dict(pipelines)).extract_types_from_pipelines()[name]
    except Exception:
        # No pipelines registered or no model for that name: pydantic's words stand.
        return None
    *parent, key = loc.split(".") if loc else [""]
    valid = _model_keys(model, parent)
    if not valid:
        return None
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    where = ".".join([name, *parent])
    return f"no such key; {hint}{where} takes {', '.join(valid)}"


def one_line(exc: BaseException) -> str | None:
    """The one-line message for a run stopped by bad input, else ``None``."""
    if isinstance(exc, MissingInputs):
        return str(exc)
    if type(exc).__name__ == "ParameterValidationError":
        errors = _validation_lines(str(exc)) or [str(exc).splitlines()[-1]]
        return "bad parameters: " + "; ".join(errors) + " (nothing was run)"
    return None


def _run(**kwargs: Any) -> Any:
    validator = logging.getLogger(_VALIDATOR_LOGGER)
    level = validator.level
    validator.setLevel(logging.CRITICAL)
    try:
        return kedro_run.callback(**kwargs)  # type: ignore[misc]
    except Exception as exc:
        message = one_line(exc)
        if message is None:
            raise
        raise BadInput(message) from None
    finally:
        validator.setLevel(level)


run = click.Command(
    name="run",
    params=list(kedro_run.params),
    callback=_run,
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)


@click.group(name="acula_pipeline")
def cli() -> None:
    """Project commands (``kedro run`` with one-line errors)."""


cli.add_command(run)
