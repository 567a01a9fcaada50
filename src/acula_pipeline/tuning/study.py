"""Optuna studies over the alignment settings: storage, sampler, pruner and the
worker loop.

A worker is one process (``kedro run --pipeline=tune``). Workers share a study
through its storage: a journal file on one machine (the default, under ``data/``),
or an RDB URL (PostgreSQL) for workers on several machines. ``n_trials`` is the
study's target of finished trials (complete or pruned) over all workers, so a rerun
continues the same study up to it, and a second worker on the same storage shares
the remaining work. A trial interrupted by a killed worker is marked failed, with
the reason, when the next worker starts on this machine (RDB storages also use
Optuna's heartbeat across machines), and its settings are tried again once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import optuna
import pandas as pd
import torch
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel, ConfigDict, Field, model_validator

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.evaluation.probes import ProbeCfg
from acula_pipeline.evaluation.run import artifact_key
from acula_pipeline.evaluation.tasks import TaskSpec, find_tasks
from acula_pipeline.models import load_encoder
from acula_pipeline.training import distributed as dist_
from acula_pipeline.training.engine import NonFiniteLossError, Trainer
from acula_pipeline.training.stages import AlignParams, prepare_alignment
from acula_pipeline.tuning.objective import Score, ValidationScorer
from acula_pipeline.tuning.space import (
    ParamSpec,
    SearchSpace,
    dotted,
    merge,
    nested,
    with_overrides,
)

log = logging.getLogger(__name__)

JOURNAL_FILE = "optuna.journal"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Failures that end one trial, not the study: the trial is recorded as failed with
# the reason and the next one starts. Anything else (a bug, a bad setting) stops.
TRIAL_FAILURES: tuple[type[Exception], ...] = (
    NonFiniteLossError,
    torch.OutOfMemoryError,
)
INTERRUPTED = "interrupted"


class SamplerCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["tpe", "random"] = "tpe"
    seed: int = 0  # trial n samples from seed + n: reproducible, distinct per trial
    n_startup_trials: int = Field(default=5, ge=0)  # random trials before TPE
    multivariate: bool = True
    constant_liar: bool = True  # parallel workers avoid each other's running trials


class PrunerCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(default=3, ge=0)  # median: trials before pruning
    n_warmup_steps: int = Field(default=1, ge=0)  # median: first epoch that may prune
    min_resource: int = Field(default=1, ge=1)  # hyperband: epochs
    reduction_factor: int = Field(default=3, ge=2)  # hyperband


class ObjectiveCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # evaluate.tasks names; None: every classification task
    tasks: list[str] | None = None
    probe: ProbeCfg = ProbeCfg(seeds=[0, 1], bootstrap=0)


class TuneParams(BaseModel):
    """All of ``conf/base/parameters_tune.yml``."""

    model_config = ConfigDict(extra="forbid")

    study_name: str = Field(default="acula-align", min_length=1)
    # None: a journal file in the tuning folder; a path: a journal file there; a
    # URL (sqlite:///…, postgresql://user:pass@host/db): an RDB storage.
    storage: str | None = None
    n_trials: int = Field(default=20, ge=1)  # the study's target, over all workers
    timeout_s: float | None = Field(default=None, gt=0)  # this worker's limit
    max_failures: int = Field(default=10, ge=1)  # failed trials before giving up
    heartbeat_s: int = Field(default=60, ge=1)  # RDB storages: liveness interval
    sampler: SamplerCfg = SamplerCfg()
    pruner: PrunerCfg = PrunerCfg()
    objective: ObjectiveCfg = ObjectiveCfg()
    # align settings every trial uses, laid over params.yaml
    fixed: dict[str, Any] = {}
    space: dict[str, ParamSpec]

    @model_validator(mode="after")
    def _space(self) -> TuneParams:
        SearchSpace(params=self.space)
        _ = self.search_space  # something is left once tune.fixed is taken out
        return self

    @property
    def search_space(self) -> SearchSpace:
        """The space searched: ``space`` less the settings ``fixed`` holds (a fixed
        setting wins; see ``SearchSpace.without``)."""
        space, _ = SearchSpace(params=self.space).without(dotted(self.fixed))
        if space is None:
            raise ValueError(
                "tune.fixed holds every setting of tune.space: nothing is left to search"
            )
        return space

    @property
    def fixed_and_inactive(self) -> dict[str, Any]:
        """``fixed`` plus the inactive values of settings its values switch off."""
        _, inactive = SearchSpace(params=self.space).without(dotted(self.fixed))
        return merge(self.fixed, nested(inactive))


# -- storage, sampler, pruner


# Workers that open a fresh RDB database at the same moment race to create Optuna's
# tables (on PostgreSQL the loser fails on a duplicate type); the schema exists on
# a second try.
RDB_OPEN_TRIES = 5


def open_storage(url: str | None, folder: str | Path, heartbeat_s: int) -> BaseStorage:
    """The study storage: a journal file (default) or an RDB URL."""
    if url and "://" in url:
        from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

        for attempt in range(1, RDB_OPEN_TRIES + 1):
            try:
                with warnings.catch_warnings():  # heartbeats: "experimental" in 5.0
                    warnings.simplefilter(
                        "ignore", optuna.exceptions.ExperimentalWarning
                    )
                    return RDBStorage(
                        url,
                        heartbeat_interval=heartbeat_s,
                        grace_period=3 * heartbeat_s,
                        heartbeat_stale_trial_callback=(
                            optuna.storages.RetryHeartbeatStaleTrialCallback(1)
                        ),
                    )
            except (IntegrityError, OperationalError, ProgrammingError) as exc:
                if attempt == RDB_OPEN_TRIES or "already exists" not in str(exc):
                    raise
                log.info(
                    "Another worker is creating the study tables in %s; retrying",
                    storage_label(url, folder),
                )
                time.sleep(0.5 * attempt)
    path = Path(url) if url else Path(folder) / JOURNAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def storage_label(url: str | None, folder: str | Path) -> str:
    """The storage as users may see it (an RDB URL without its password)."""
    if url and "://" in url:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    return str(Path(url) if url else Path(folder) / JOURNAL_FILE)


class _PerTrialSeed(optuna.samplers.TPESampler):
    """TPE whose random draws for trial n come from ``seed + n``: one worker
    reproduces a study exactly, and parallel workers (each with the same seed)
    never propose the same random start."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        super().before_trial(study, trial)
        self._rng.rng.seed(self._base_seed + trial.number)
        self._random_sampler._rng.rng.seed(self._base_seed + trial.number)


def make_sampler(cfg: SamplerCfg) -> optuna.samplers.BaseSampler:
    n_startup = cfg.n_startup_trials if cfg.name == "tpe" else 10**9  # random
    with warnings.catch_warnings():  # multivariate, group, constant_liar
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _PerTrialSeed(
            cfg.seed,
            n_startup_trials=n_startup,
            multivariate=cfg.multivariate,
            group=cfg.multivariate,  # conditional ('when') settings
            constant_liar=cfg.constant_liar,
        )


def make_pruner(cfg: PrunerCfg, max_epochs: int) -> optuna.pruners.BasePruner:
    if cfg.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=cfg.n_startup_trials, n_warmup_steps=cfg.n_warmup_steps
        )
    if cfg.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=cfg.min_resource,
            max_resource=max(max_epochs, cfg.min_resource),
            reduction_factor=cfg.reduction_factor,
        )
    return optuna.pruners.NopPruner()


# -- interrupted trials


def _worker() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail the running trials whose worker on this machine is gone, with the
    reason, and queue the settings of every interrupted trial once more.

    Returns the numbers of the trials it failed."""
    storage, me = study._storage, _worker()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker") or {}
        if w.get("host") != me["host"] or w.get("pid") == me["pid"]:
            continue
        if _alive(int(w["pid"])):
            continue
        why = f"{INTERRUPTED}: worker {w['host']}:{w['pid']} stopped during the trial"
        try:
            storage.set_trial_user_attr(t._trial_id, "failure", why)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        log.warning("Trial %d: %s; marked failed", t.number, why)
        failed.append(t.number)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        reason = str(t.user_attrs.get("failure", ""))
        if (
            t.state == TrialState.FAIL
            and reason.startswith(INTERRUPTED)
            and t.number not in retried
            and "retry_of" not in t.user_attrs  # once
        ):
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            log.info(
                "Trial %d was interrupted: its settings are queued again", t.number
            )
    return failed


# -- the worker


def count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _real_failures(study: optuna.Study) -> int:
    return sum(
        not str(t.user_attrs.get("failure", "")).startswith(INTERRUPTED)
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    )


class AlignmentTrial:
    """The objective: train one alignment run with the trial's settings, through
    the same engine as ``align``, scoring the student after every epoch."""

    def __init__(
        self,
        store: FeatureStore,
        segments: pd.DataFrame,
        reports: pd.DataFrame,
        embeddings: dict[str, Any],
        baseline: dict[str, Any] | None,
        base: dict[str, Any],
        space: SearchSpace,
        scorer: Callable[..., Score],
        scratch: str | Path,
    ) -> None:
        self.store, self.segments, self.reports = store, segments, reports
        self.embeddings, self.baseline = embeddings, baseline
        self.base, self.space, self.scorer = base, space, scorer
        self.scratch = Path(scratch)

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", _worker())  # first: a killed trial is found
        values = self.space.suggest(trial)
        trial.set_user_attr("settings", values)  # sampled + inactive: what apply writes
        params = AlignParams(**with_overrides(self.base, values))
        run = prepare_alignment(
            self.store,
            self.segments,
            self.reports,
            self.embeddings,
            self.baseline,
            params,
        )
        last: list[Score] = []

        def on_epoch(epoch: int) -> None:
            score = self.scorer(run.model.student, trainer.device)
            last.append(score)
            trial.report(score.value, epoch)
            log.info(
                "Trial %d, epoch %d/%d: validation AUROC %.4f",
                trial.number,
                epoch,
                params.train.epochs,
                score.value,
            )
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned after epoch {epoch}: validation AUROC {score.value:.4f}"
                )

        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            dir=self.scratch, prefix=f"trial-{trial.number}-"
        ) as checkpoints:
            try:  # moving the model to the GPU may already run out of memory
                trainer = Trainer(
                    run.model, params.train, checkpoints, run.config, on_epoch=on_epoch
                )
                trainer.fit(run.dataset)
            except TRIAL_FAILURES as e:
                trial.set_user_attr("failure", f"{type(e).__name__}: {e}")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise
            except KeyboardInterrupt:
                trial.set_user_attr("failure", f"{INTERRUPTED}: KeyboardInterrupt")
                raise
            finally:
                if last:
                    best = best_epoch(last)
                    trial.set_user_attr("val_auroc_by_task", last[best - 1].per_task)
                    trial.set_user_attr("best_epoch", best)
                    trial.set_user_attr("epochs_run", len(last))
                    if best < params.train.epochs:
                        # What reproduces the trial's model at its best epoch: the
                        # same schedule, stopped there (apply writes these too).
                        trial.set_user_attr(
                            "to_best_epoch",
                            {
                                "train.epochs": best,
                                "train.schedule_epochs": params.train.schedule_epochs
                                or params.train.epochs,
                            },
                        )
        best = best_epoch(last)
        if best < len(last):
            log.info(
                "Trial %d scored at its best epoch, %d of %d (validation AUROC %.4f; "
                "last %.4f)",
                trial.number,
                best,
                len(last),
                last[best - 1].value,
                last[-1].value,
            )
        return last[best - 1].value


def best_epoch(scores: list[Score]) -> int:
    """The epoch (from 1) with the highest validation score; the earliest on a
    tie. Trials are scored there, as the probes keep their best epoch."""
    values = [s.value for s in scores]
    return values.index(max(values)) + 1


class InputsChangedError(ValueError):
    """A study is continued on other data or fixed settings than it began with."""


def check_inputs(study: optuna.Study, key: str | None) -> None:
    """Record what the study's trials are scored on (``key``: a digest of the clips,
    the splits, the reports and the fixed settings), or check it is unchanged.

    Raises:
        InputsChangedError: The study began on other inputs; its trials' scores
            cannot be compared with new ones (nor count toward ``n_trials``).
    """
    if key is None:
        return
    stored = study.user_attrs.get("inputs")
    if stored is None:
        if study.trials:
            log.warning(
                "Study %r does not record the inputs it began on (made by an older "
                "version); assuming they are the current ones (%s)",
                study.study_name,
                key,
            )
        study.set_user_attr("inputs", key)
    elif stored != key:
        raise InputsChangedError(
            f"study {study.study_name!r} began on other inputs (clips, splits, reports "
            f"or tune.fixed settings: {stored}, now {key}): its trials' scores cannot "
            "be compared with new ones. Set tune.study_name to a new name to tune on "
            "these inputs (the old study stays in its storage)."
        )


def run_worker(
    params: TuneParams,
    folder: str | Path,
    make_objective: Callable[[optuna.Study], Callable[[optuna.Trial], float]],
    max_epochs: int,
    inputs: str | None = None,
) -> optuna.Study:
    """Open (or create) the study and run trials until it holds ``n_trials``
    finished ones, this worker's timeout passes or ``max_failures`` trials failed.

    ``inputs`` (a digest of what trials are scored on) is recorded in a new study
    and must match in a continued one (``InputsChangedError``)."""
    if dist_.world_size() > 1:
        raise RuntimeError(
            "tune runs one process per worker, not under torchrun: start one "
            "`kedro run --pipeline=tune` per GPU (CUDA_VISIBLE_DEVICES=i) instead"
        )
    # Optuna's messages through the logging set-up of the run (Kedro's handlers).
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    storage = open_storage(params.storage, folder, params.heartbeat_s)
    study = optuna.create_study(
        study_name=params.study_name,
        storage=storage,
        sampler=make_sampler(params.sampler),
        pruner=make_pruner(params.pruner, max_epochs),
        direction="maximize",
        load_if_exists=True,
    )
    where = storage_label(params.storage, folder)
    check_inputs(study, inputs)
    space = json.loads(json.dumps(params.model_dump(mode="json")["space"]))
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
        study.set_user_attr(
            "objective",
            "mean validation AUROC of linear probes (test split never read)",
        )
    elif stored != space:
        log.warning(
            "Study %r in %s was started with another search space; its earlier "
            "trials still guide the sampler (use a new tune.study_name for a fresh "
            "study)",
            params.study_name,
            where,
        )
    recover_interrupted(study)
    done = count(study, FINISHED)
    log.info(
        "Study %r in %s: %d of %d trials finished",
        params.study_name,
        where,
        done,
        params.n_trials,
    )
    if done >= params.n_trials:
        log.info("Nothing to run: raise tune.n_trials to continue the study")
        return study
    objective = make_objective(study)

    def stop_when_done(study: optuna.Study, trial: FrozenTrial) -> None:
        finished = count(study, FINISHED)
        best = _best(study)
        log.info(
            "Trial %d %s (%d/%d finished)%s",
            trial.number,
            trial.state.name.lower(),
            finished,
            params.n_trials,
            f"; best so far: trial {best.number}, {best.value:.4f}" if best else "",
        )
        if finished >= params.n_trials:
            study.stop()
        elif _real_failures(study) >= params.max_failures:
            log.error(
                "Study %r holds %d failed trials (tune.max_failures): stopping; "
                "see the 'failure' column of the trials table",
                params.study_name,
                _real_failures(study),
            )
            study.stop()

    study.optimize(
        objective,
        timeout=params.timeout_s,
        callbacks=[stop_when_done],
        catch=TRIAL_FAILURES,
        gc_after_trial=True,
    )
    return study


def _best(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return max(complete, key=lambda t: t.value if t.value is not None else -math.inf)


def tune(
    store: FeatureStore,
    recordings: pd.DataFrame,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: dict[str, Any] | None,
    params: TuneParams,
    align: AlignParams,
    tasks: list[TaskSpec],
    loso_below_subjects: int,
    folder: str | Path,
    embed_batch_size: int = 64,
) -> optuna.Study:
    """Run this worker's share of the study; returns the study."""
    base = merge(align.model_dump(mode="json"), params.fixed_and_inactive)
    searched_fixed = sorted(set(params.space) & set(dotted(params.fixed)))
    if searched_fixed:
        log.info("tune.fixed wins over tune.space for: %s", ", ".join(searched_fixed))
    AlignParams(**base)  # a misspelt tune.fixed setting fails here
    space = params.search_space
    space.check(base, lambda p: AlignParams(**p))
    chosen = _tasks(tasks, params.objective.tasks)
    scorer = ValidationScorer(
        store,
        recordings,
        segments,
        splits,
        chosen,
        params.objective.probe,
        loso_below_subjects,
        embed_batch_size,
    )
    train_subjects = set(splits.loc[splits["split"] == "train", "subject_id"])
    trial_reports = reports[reports["subject_id"].isin(train_subjects)]
    log.info(
        "Trials align on the %d reports of %d train subjects (of %d reports)",
        len(trial_reports),
        len(train_subjects),
        len(reports),
    )
    epochs = space.params.get("train.epochs")
    # Hyperband's budget: the searched epochs' upper bound, else the fixed epochs
    max_epochs = int(epochs.high) if epochs and epochs.high else base["train"]["epochs"]

    def make_objective(study: optuna.Study) -> AlignmentTrial:
        if baseline is not None and baseline_reference(study, baseline) is None:
            ref = scorer(load_encoder(baseline), align.train.device)
            study.set_user_attr(
                "baseline",
                {
                    "value": ref.value,
                    "per_task": ref.per_task,
                    "key": artifact_key(baseline),
                },
            )
            log.info("Baseline (SSL only) validation AUROC: %.4f", ref.value)
        return AlignmentTrial(
            store,
            segments,
            trial_reports,
            embeddings,
            baseline,
            base,
            space,
            scorer,
            Path(folder) / "trials" / params.study_name,
        )

    inputs = inputs_key(store, splits, trial_reports, base, params, chosen)
    return run_worker(params, folder, make_objective, max_epochs, inputs)


def inputs_key(
    store: FeatureStore,
    splits: pd.DataFrame,
    reports: pd.DataFrame,
    base: dict[str, Any],
    params: TuneParams,
    tasks: list[TaskSpec],
) -> str:
    """A digest of what a study's trials are scored on: the clips (the store's
    content), the splits, the reports aligned on, the fixed settings, the objective
    and its tasks."""
    h = hashlib.sha256(store.digest().encode())
    for table, cols in (
        (splits, ["subject_id", "split"]),
        (reports, ["unit_id", "report"]),
    ):
        h.update(pd.util.hash_pandas_object(table[cols], index=False).values.tobytes())
    h.update(
        json.dumps(
            {
                "base": base,
                "objective": params.objective.model_dump(mode="json"),
                "tasks": [t.model_dump(mode="json") for t in tasks],
            },
            sort_keys=True,
            default=str,
        ).encode()
    )
    return h.hexdigest()[:16]


class BaselineChangedError(ValueError):
    """A study is continued from another baseline encoder than it began with."""


def baseline_reference(
    study: optuna.Study, baseline: dict[str, Any]
) -> dict[str, Any] | None:
    """The study's stored baseline score, after checking it was this baseline's.

    Every trial aligns from the baseline's weights, so trials that began from a
    retrained baseline cannot be compared with the study's earlier ones.

    Raises:
        BaselineChangedError: The study was started from another baseline, naming
            both weight hashes and what to do.
    """
    ref = study.user_attrs.get("baseline")
    if ref is None:
        return None
    key = artifact_key(baseline)
    if ref.get("key") is None:
        log.warning(
            "Study %r does not record which baseline it began from (made by an "
            "older version); assuming it is the current one (%s)",
            study.study_name,
            key,
        )
    elif ref["key"] != key:
        raise BaselineChangedError(
            f"study {study.study_name!r} began from another baseline encoder "
            f"(weights {ref['key']}, now {key}): its trials aligned from the old "
            "weights and cannot be compared with new ones. Set tune.study_name to a "
            "new name to tune from the retrained baseline (the old study stays in "
            "its storage)."
        )
    return ref


def _tasks(tasks: list[TaskSpec], names: list[str] | None) -> list[TaskSpec]:
    """The objective's tasks: by name or OPERA id (``T7``, ``opera:icbhi``)."""
    if names is None:
        return [t for t in tasks if t.is_classification]
    return find_tasks(tasks, names, "tune.objective.tasks")
