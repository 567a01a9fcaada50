"""The search space: ``conf/base/parameters_tune.yml`` ``tune.space``, one entry per
alignment setting, named by its dotted path under ``align`` (``train.lr``,
``head.hidden``, ``loss`` …), with ``type/low/high/log/step/choices`` and an optional
``when`` condition on settings sampled before it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, model_validator

Scalar = bool | int | float | str | None


class ParamSpec(BaseModel):
    """One searched setting."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None  # a grid (float, int); int defaults to 1
    choices: list[Scalar] | None = None
    # Sampled only when earlier settings take these values, e.g.
    # ``{loss: [clip, siglip]}`` for a temperature; otherwise the setting takes
    # ``inactive`` when given (a temperature: null), else keeps its base value.
    when: dict[str, list[Scalar]] = {}
    inactive: Scalar = None

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical setting needs a non-empty 'choices'")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical setting takes 'choices' only")
            if "inactive" in self.model_fields_set and not self.when:
                raise ValueError("'inactive' needs a 'when' condition")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} setting takes low/high, not 'choices'")
        if "inactive" in self.model_fields_set and not self.when:
            raise ValueError("'inactive' needs a 'when' condition")
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"needs low < high (got low={self.low}, high={self.high})")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log scale needs low > 0 and no step")
        if self.type == "int" and (
            self.low != int(self.low) or self.high != int(self.high)
        ):
            raise ValueError("an int setting needs whole-number low and high")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        if self.type == "categorical":
            assert self.choices is not None
            return trial.suggest_categorical(name, self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return trial.suggest_int(
                name,
                int(self.low),
                int(self.high),
                step=int(self.step or 1),
                log=self.log,
            )
        return trial.suggest_float(
            name, self.low, self.high, step=self.step, log=self.log
        )

    def bounds(self) -> list[Any]:
        """The extreme values (checked against the align parameters up front)."""
        if self.type == "categorical":
            assert self.choices is not None
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


class SearchSpace(BaseModel):
    """Settings in the order they are sampled (a ``when`` looks back only)."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, ParamSpec]

    @model_validator(mode="after")
    def _conditions_look_back(self) -> SearchSpace:
        if not self.params:
            raise ValueError("tune.space is empty: nothing to search")
        seen: set[str] = set()
        for name, spec in self.params.items():
            for other in spec.when:
                if other not in seen:
                    raise ValueError(
                        f"tune.space.{name}: 'when' refers to {other!r}, which must "
                        "be a searched setting listed before it"
                    )
            seen.add(name)
        return self

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's settings (dotted names): the sampled ones, plus the
        ``inactive`` value of each setting whose ``when`` does not hold."""
        values: dict[str, Any] = {}
        for name, spec in self.params.items():
            if all(values.get(k) in allowed for k, allowed in spec.when.items()):
                values[name] = spec.suggest(trial, name)
            elif "inactive" in spec.model_fields_set:
                values[name] = spec.inactive
        return values

    def without(
        self, fixed: Mapping[str, Any]
    ) -> tuple[SearchSpace | None, dict[str, Any]]:
        """The space with the ``fixed`` settings (dotted names → values) taken out:
        a fixed setting is not searched; a ``when`` on one is decided by its fixed
        value (kept without that condition, or left out with its ``inactive``
        value). Returns the space (None when nothing is left) and the inactive
        values to lay over the base settings."""
        kept: dict[str, ParamSpec] = {}
        inactive: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in fixed:
                continue
            decided = {k: v for k, v in spec.when.items() if k in fixed}
            if not all(fixed[k] in allowed for k, allowed in decided.items()):
                if "inactive" in spec.model_fields_set:
                    inactive[name] = spec.inactive
                continue
            when = {k: v for k, v in spec.when.items() if k not in fixed}
            data = spec.model_dump(exclude_unset=True) | {"when": when}
            if not when:
                data.pop("inactive", None)
                data.pop("when")
            kept[name] = ParamSpec(**data)
        return (SearchSpace(params=kept) if kept else None), inactive

    def check(self, base: Mapping[str, Any], validate: Any) -> None:
        """Every setting exists in ``base`` and each extreme value passes
        ``validate`` (a function of the nested align parameters)."""
        for name, spec in self.params.items():
            try:
                get_dotted(base, name)
            except KeyError:
                raise ValueError(
                    f"tune.space.{name}: no such align setting (the names are dotted "
                    "paths under align, e.g. train.lr, head.hidden, loss)"
                ) from None
            for value in spec.bounds():
                conditions = {k: allowed[0] for k, allowed in spec.when.items()}
                chosen = self._with_inactive(base, {**conditions, name: value})
                try:
                    validate(with_overrides(base, chosen))
                except ValueError as e:
                    raise ValueError(
                        f"tune.space.{name} = {value!r} is not a valid align "
                        f"setting: {e}"
                    ) from e

    def _with_inactive(
        self, base: Mapping[str, Any], chosen: dict[str, Any]
    ) -> dict[str, Any]:
        """``chosen`` plus the inactive value of each conditional setting whose
        condition fails under it (as ``suggest`` would set them)."""
        out = dict(chosen)
        for name, spec in self.params.items():
            if name in out or "inactive" not in spec.model_fields_set:
                continue
            now = {k: out[k] if k in out else get_dotted(base, k) for k in spec.when}
            if not all(now[k] in allowed for k, allowed in spec.when.items()):
                out[name] = spec.inactive
        return out


def get_dotted(tree: Mapping[str, Any], name: str) -> Any:
    node: Any = tree
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(name)
        node = node[part]
    return node


def dotted(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-4}}`` → ``{"train.lr": 1e-4}``."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out |= dotted(v, f"{name}.")
        else:
            out[name] = v
    return out


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 1e-4}`` → ``{"train": {"lr": 1e-4}}``."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` laid over it, nested mappings merged key by key."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def with_overrides(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict:
    return merge(base, nested(values))
