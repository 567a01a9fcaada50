"""What a study leaves behind: the best settings, a table of every trial and the
figures (optimisation history, parameter importances, parallel coordinates and the
per-epoch values the pruner saw)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from optuna.importance import FanovaImportanceEvaluator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from optuna.visualization import matplotlib as ovm  # noqa: E402

from acula_pipeline.tuning.space import nested  # noqa: E402

OBJECTIVE = "mean validation AUROC"


def best_params(
    study: optuna.Study, storage: str, n_trials: int, is_synthetic: bool
) -> dict[str, Any]:
    """``best_params.json``: the best complete trial, with its settings both as
    searched (dotted) and as the ``align`` block they override."""
    trials = study.get_trials(deepcopy=False)
    states = {
        s.name.lower(): sum(t.state == s for t in trials)
        for s in (
            TrialState.COMPLETE,
            TrialState.PRUNED,
            TrialState.FAIL,
            TrialState.RUNNING,
            TrialState.WAITING,
        )
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    out: dict[str, Any] = {
        "study": study.study_name,
        "storage": storage,
        "objective": f"{OBJECTIVE} of linear probes (maximised; test split never read)",
        "synthetic": is_synthetic,
        "n_trials_target": n_trials,
        "trials": states,
        "baseline": study.user_attrs.get("baseline"),
        "best": None,
    }
    if complete:
        b = max(complete, key=lambda t: t.value if t.value is not None else -math.inf)
        # The trial's settings, and (when its best epoch came before its last) the
        # epochs that stop the same schedule there: what reproduces its score.
        settings = {
            **b.user_attrs.get("settings", dict(b.params)),
            **b.user_attrs.get("to_best_epoch", {}),
        }
        out["best"] = {
            "trial": b.number,
            "value": b.value,
            "params": dict(b.params),  # as sampled
            # what the trial ran with: the sampled settings and the inactive value
            # of each conditional one whose condition did not hold
            "settings": settings,
            "align": nested(settings),
            "val_auroc_by_task": b.user_attrs.get("val_auroc_by_task"),
            "best_epoch": b.user_attrs.get("best_epoch"),
            "epochs_run": b.user_attrs.get("epochs_run"),
            "duration_s": b.duration.total_seconds() if b.duration else None,
        }
    return out


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, settings, timing, worker and the
    reason a trial failed or was pruned."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        worker = t.user_attrs.get("worker") or {}
        steps = sorted(t.intermediate_values)
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "epochs_scored": len(steps),
                "last_intermediate": t.intermediate_values[steps[-1]]
                if steps
                else None,
                **{f"param:{k}": v for k, v in t.params.items()},
                "duration_s": t.duration.total_seconds() if t.duration else None,
                "worker": f"{worker['host']}:{worker['pid']}" if worker else None,
                "retry_of": t.user_attrs.get("retry_of"),
                "failure": t.user_attrs.get("failure"),
            }
        )
    table = pd.DataFrame(rows)
    params = sorted(c for c in table.columns if c.startswith("param:"))
    rest = [c for c in table.columns if not c.startswith("param:")]
    return table[rest[:5] + params + rest[5:]]


def _note(title: str, text: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


def _title(ax: Any, text: str) -> None:
    ax.set_title("", loc="left")  # Optuna's own title (left-aligned on some plots)
    ax.set_title(text)


def _figure(ax: Any, width: float = 8) -> Figure:
    ax = ax.flat[0] if hasattr(ax, "flat") else ax
    fig = ax.figure
    fig.set_size_inches(max(fig.get_size_inches()[0], width), 5)
    fig.tight_layout()
    return fig


def _importances(study: optuna.Study, seed: int, tag: str) -> Figure:
    before = set(plt.get_fignums())
    try:
        ax = ovm.plot_param_importances(
            study,
            evaluator=FanovaImportanceEvaluator(seed=seed),
            target_name=OBJECTIVE,
        )
    except RuntimeError as e:  # fANOVA: every complete trial scored the same
        for n in set(plt.get_fignums()) - before:
            plt.close(n)
        return _note(f"Parameter importances{tag}", f"undefined: {e}")
    _title(ax, f"Parameter importances (fANOVA){tag}")
    return _figure(ax)


def figures(
    study: optuna.Study, is_synthetic: bool, seed: int = 0
) -> dict[str, Figure]:
    """history, importances, parallel coordinates and intermediate values."""
    tag = " (SYNTHETIC corpus)" if is_synthetic else ""
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out: dict[str, Figure] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if n_complete == 0:
            why = "no complete trial yet"
            for name in ("history", "importances", "parallel"):
                out[name] = _note(f"{study.study_name}: {name}{tag}", why)
        else:
            ax = ovm.plot_optimization_history(study, target_name=OBJECTIVE)
            ref = study.user_attrs.get("baseline")
            if ref:
                ax.axhline(
                    ref["value"],
                    color="grey",
                    ls="--",
                    label=f"baseline (SSL only) {ref['value']:.3f}",
                )
                ax.legend(loc="best")
            _title(ax, f"Optimisation history{tag}")
            out["history"] = _figure(ax)
            searched = {k for t in study.trials for k in t.params}
            if n_complete < 2 or len(searched) < 2:
                out["importances"] = _note(
                    f"Parameter importances{tag}",
                    f"needs at least 2 complete trials over 2 or more settings "
                    f"(has {n_complete} trial(s), {len(searched)} setting(s))",
                )
            else:
                out["importances"] = _importances(study, seed, tag)
            ax = ovm.plot_parallel_coordinate(study, target_name=OBJECTIVE)
            _title(ax, f"Parallel coordinates{tag}")
            out["parallel"] = _figure(ax, width=12)
        if any(t.intermediate_values for t in study.trials):
            ax = ovm.plot_intermediate_values(study)
            ax.set_xlabel("epoch")
            ax.set_ylabel(OBJECTIVE)
            _title(ax, f"Validation AUROC per epoch{tag}")
            out["intermediate"] = _figure(ax, width=10)
        else:
            out["intermediate"] = _note(
                f"Validation AUROC per epoch{tag}", "no trial reported a value yet"
            )
    return out
