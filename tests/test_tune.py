"""The tune pipeline: Optuna studies over the align settings.

Fast unit tests of the search space, the engine's epoch callback and NaN guard, and
the recovery of interrupted trials; then studies on a tiny synthetic project (built
once): a 3-trial study with its outputs and the `apply` command, a killed study that
resumes, two workers on one storage, pruning, and a trial whose loss turns NaN.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml
from optuna.trial import TrialState

from acula_pipeline.training.engine import NonFiniteLossError, TrainCfg, Trainer
from acula_pipeline.training.stages import AlignParams
from acula_pipeline.tuning.space import ParamSpec, SearchSpace, nested
from acula_pipeline.tuning.study import (
    JOURNAL_FILE,
    TuneParams,
    open_storage,
    recover_interrupted,
)

from .conftest import REPO
from .kedro_support import make_project, run

PYTHON = os.path.abspath(sys.executable)  # workers run in the project folder
FAST = {"epochs": 1, "progress": False, "batch_size": 16}
TINY = {"icbhi2017": 10, "circor2022": 10, "coswara": 10}


# -- the search space


def test_space_samples_conditional_settings_only_when_they_apply():
    space = SearchSpace(
        params={
            "loss": ParamSpec(type="categorical", choices=["cka_feature", "clip"]),
            "temperature": ParamSpec(
                type="float", low=0.02, high=0.2, log=True, when={"loss": ["clip"]}
            ),
            "train.epochs": ParamSpec(type="int", low=1, high=3),
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {"cka_feature": 0, "clip": 0}
    for _ in range(20):
        values = space.suggest(study.ask())
        seen[values["loss"]] += 1
        assert ("temperature" in values) == (values["loss"] == "clip")
        assert values["train.epochs"] in (1, 2, 3)
        if "temperature" in values:
            assert 0.02 <= values["temperature"] <= 0.2
    assert seen["cka_feature"] and seen["clip"]
    assert nested({"train.lr": 1e-4, "loss": "clip"}) == {
        "train": {"lr": 1e-4},
        "loss": "clip",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "categorical", "choices": []}, "non-empty 'choices'"),
        ({"type": "float", "low": 1.0, "high": 0.5}, "low < high"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale"),
        ({"type": "int", "low": 1.5, "high": 3}, "whole-number"),
        ({"type": "float", "choices": [1, 2]}, "not 'choices'"),
    ],
)
def test_param_spec_rejects_inconsistent_definitions(spec, message):
    with pytest.raises(ValueError, match=message):
        ParamSpec(**spec)


def test_space_check_names_the_bad_setting():
    base = AlignParams().model_dump(mode="json")
    check = lambda p: AlignParams(**p)  # noqa: E731
    with pytest.raises(ValueError, match="tune.space.train.lrr: no such align"):
        SearchSpace(
            params={"train.lrr": ParamSpec(type="float", low=0.1, high=1)}
        ).check(base, check)
    with pytest.raises(ValueError, match="train.batch_size = 0 is not a valid"):
        SearchSpace(
            params={"train.batch_size": ParamSpec(type="int", low=0, high=8)}
        ).check(base, check)
    # a temperature is only valid with a contrastive loss: 'when' supplies one
    SearchSpace(
        params={
            "loss": ParamSpec(type="categorical", choices=["cka_feature", "clip"]),
            "temperature": ParamSpec(
                type="float", low=0.05, high=0.1, when={"loss": ["clip"]}
            ),
        }
    ).check(base, check)
    with pytest.raises(ValueError, match="must be a searched setting listed before"):
        SearchSpace(
            params={
                "temperature": ParamSpec(
                    type="float", low=0.05, high=0.1, when={"loss": ["clip"]}
                ),
                "loss": ParamSpec(type="categorical", choices=["clip"]),
            }
        )


def test_an_inactive_conditional_setting_takes_its_inactive_value(tmp_path):
    space = SearchSpace(
        params={
            "loss": ParamSpec(type="categorical", choices=["cka_feature", "clip"]),
            "temperature": ParamSpec(
                type="float",
                low=0.02,
                high=0.2,
                when={"loss": ["clip"]},
                inactive=None,
            ),
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        values = space.suggest(trial)
        if values["loss"] == "cka_feature":
            assert values["temperature"] is None
            assert "temperature" not in trial.params  # not sampled
    # A base left with a temperature (an earlier clip result) stays valid for CKA
    # trials: the inactive value replaces it. Without 'inactive' the check fails.
    base = AlignParams(loss="clip", temperature=0.05).model_dump(mode="json")
    check = lambda p: AlignParams(**p)  # noqa: E731
    space.check(base, check)
    plain = SearchSpace(
        params={
            "loss": space.params["loss"],
            "temperature": ParamSpec(
                type="float", low=0.02, high=0.2, when={"loss": ["clip"]}
            ),
        }
    )
    with pytest.raises(ValueError, match="loss = 'cka_feature' is not a valid"):
        plain.check(base, check)
    with pytest.raises(ValueError, match="'inactive' needs a 'when'"):
        ParamSpec(type="float", low=0, high=1, inactive=None)

    # apply writes the inactive value too: the file stays valid
    from acula_pipeline.tuning.apply import apply_best

    target = tmp_path / "parameters_align.yml"
    text = (REPO / "params.yaml").read_text()
    text = text.replace("  loss: cka_feature ", "  loss: clip        ", 1)
    text = text.replace("  temperature: null ", "  temperature: 0.05 ", 1)
    target.write_text(text)
    assert AlignParams(**yaml.safe_load(text)["align"]).temperature == 0.05
    best = tmp_path / "best_params.json"
    settings = {"loss": "cka_feature", "temperature": None}
    best.write_text(
        json.dumps({"best": {"params": {"loss": "cka_feature"}, "settings": settings}})
    )
    changes = apply_best(best, target)
    assert changes == {"loss": ("clip", "cka_feature"), "temperature": (0.05, None)}
    # bad input: the error names the file, and nothing is written
    before = target.read_text()
    best.write_text("{not json")
    with pytest.raises(ValueError, match=r"best_params.json: not a JSON file"):
        apply_best(best, target)
    best.write_text(json.dumps({"study": "s"}))
    with pytest.raises(ValueError, match="not a best_params.json written by"):
        apply_best(best, target)
    best.write_text(json.dumps({"best": {"settings": {"loss": "cka"}}}))
    with pytest.raises(ValueError, match="parameters_align.yml: with the settings"):
        apply_best(best, target)
    assert target.read_text() == before
    align = AlignParams(**yaml.safe_load(target.read_text())["align"])
    assert align.loss == "cka_feature" and align.temperature is None


def test_align_params_temperature_and_mask_ratio():
    assert AlignParams(loss="clip", temperature=0.05).loss_options() == {
        "init_scale": pytest.approx(20.0)
    }
    with pytest.raises(ValueError, match="has no temperature"):
        AlignParams(loss="cka_feature", temperature=0.05)
    with pytest.raises(ValueError, match="unknown alignment loss"):
        AlignParams(loss="cka")
    with pytest.raises(ValueError):
        AlignParams(mask_ratio=1.0)


def test_tune_is_registered_but_not_in_the_default_run():
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(REPO)
    tune = {n.name for n in pipelines["tune"].nodes}
    assert {"run_study_node", "tuning_outputs_node"} <= tune
    assert not tune & {n.name for n in pipelines["__default__"].nodes}


def test_repo_tune_params_are_valid():
    raw = yaml.safe_load((REPO / "conf/base/parameters_tune.yml").read_text())
    params = TuneParams.model_validate(raw["tune"])
    align = yaml.safe_load((REPO / "params.yaml").read_text())
    from acula_pipeline.tuning.space import merge

    base = merge(AlignParams(**align["align"]).model_dump(mode="json"), params.fixed)
    params.search_space.check(base, lambda p: AlignParams(**p))
    assert params.sampler.seed == 0 and params.sampler.name == "tpe"


def test_a_study_refuses_to_continue_from_a_retrained_baseline(caplog):
    from acula_pipeline.evaluation.run import artifact_key
    from acula_pipeline.tuning.study import BaselineChangedError, baseline_reference

    def artifact(seed: int) -> dict:
        torch.manual_seed(seed)
        return {"config": {"encoder": "x"}, "state_dict": {"w": torch.randn(3)}}

    old, new = artifact(0), artifact(1)
    study = optuna.create_study(study_name="s", direction="maximize")
    assert baseline_reference(study, old) is None  # a new study: score the baseline
    ref = {"value": 0.6, "per_task": {"t": 0.6}, "key": artifact_key(old)}
    study.set_user_attr("baseline", ref)
    assert baseline_reference(study, old) == ref
    with pytest.raises(BaselineChangedError) as err:
        baseline_reference(study, new)
    message = str(err.value)
    assert artifact_key(old) in message and artifact_key(new) in message
    assert "study 's'" in message and "tune.study_name" in message
    # A study from before the key was stored: accepted, with a warning.
    study.set_user_attr("baseline", {"value": 0.6, "per_task": {"t": 0.6}})
    with caplog.at_level("WARNING", logger="acula_pipeline"):
        assert baseline_reference(study, new)["value"] == 0.6
    assert "does not record which baseline" in caplog.text


def test_pruners_and_sampler_from_the_parameters():
    from acula_pipeline.tuning.study import (
        PrunerCfg,
        SamplerCfg,
        make_pruner,
        make_sampler,
    )

    hb = make_pruner(PrunerCfg(name="hyperband", min_resource=1), max_epochs=6)
    assert isinstance(hb, optuna.pruners.HyperbandPruner)
    assert hb._max_resource == 6  # the epoch budget's upper bound
    assert isinstance(make_pruner(PrunerCfg(), 6), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(PrunerCfg(name="none"), 6), optuna.pruners.NopPruner)

    def first_values(seed):
        study = optuna.create_study(sampler=make_sampler(SamplerCfg(seed=seed)))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(3)]

    assert first_values(0) == first_values(0)  # the seed fixes the proposals
    assert first_values(0) != first_values(1)
    assert len(set(first_values(0))) == 3  # each trial draws its own


# -- the engine: epoch callback and the NaN guard


class _Toy(torch.nn.Module):
    def __init__(self, nan_at_step: int | None = None) -> None:
        super().__init__()
        self.w = torch.nn.Linear(4, 1)
        self.calls, self.nan_at = 0, nan_at_step

    def forward(self, batch):
        self.calls += 1
        loss = self.w(batch[0]).pow(2).mean()
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return {"loss": loss}


def test_trainer_calls_on_epoch_and_stops_on_a_nan_loss(tmp_path):
    data = torch.utils.data.TensorDataset(torch.randn(16, 4))
    cfg = TrainCfg(epochs=3, batch_size=8, progress=False, warmup_steps=0)
    epochs: list[int] = []
    Trainer(_Toy(), cfg, tmp_path / "a", {}, on_epoch=epochs.append).fit(data)
    assert epochs == [1, 2, 3]

    toy = _Toy(nan_at_step=3)
    trainer = Trainer(toy, cfg, tmp_path / "b", {})
    with pytest.raises(NonFiniteLossError, match="loss is nan at optimiser step 3"):
        trainer.fit(data)
    assert torch.isfinite(toy.w.weight).all()  # the NaN step was never applied
    assert trainer.step == 2


def test_killed_workers_trials_are_failed_with_the_reason_and_retried(tmp_path):
    storage = open_storage(None, tmp_path, 60)
    study = optuna.create_study(study_name="s", storage=storage)
    done = study.ask()
    done.suggest_float("x", 0, 1)
    study.tell(done, 0.5)
    trial = study.ask()
    x = trial.suggest_float("x", 0, 1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    import socket

    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": gone.pid})
    mine = study.ask()  # this process's own running trial is left alone
    mine.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    assert (tmp_path / JOURNAL_FILE).exists()

    assert recover_interrupted(study) == [trial.number]
    trials = study.get_trials()
    failed = trials[trial.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["failure"].startswith("interrupted: worker")
    assert trials[mine.number].state == TrialState.RUNNING
    assert trials[done.number].state == TrialState.COMPLETE
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert len(queued) == 1 and queued[0].user_attrs["retry_of"] == trial.number
    assert queued[0].system_attrs["fixed_params"] == {"x": x}  # run with these
    assert recover_interrupted(study) == []  # queued once only
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_worker_runs_to_the_study_target_and_a_rerun_adds_nothing(tmp_path, kind):
    from acula_pipeline.tuning.study import run_worker

    url = f"sqlite:///{tmp_path / 'optuna.db'}" if kind == "sqlite" else None
    params = TuneParams(
        study_name="w",
        storage=url,
        n_trials=4,
        space={"x": ParamSpec(type="float", low=0, high=1)},
    )

    def make_objective(study):
        return lambda trial: trial.suggest_float("x", 0, 1)

    study = run_worker(params, tmp_path, make_objective, max_epochs=1)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    again = run_worker(params, tmp_path, make_objective, max_epochs=1)
    assert len(again.trials) == 4  # the target was reached: nothing more to run
    more = run_worker(
        params.model_copy(update={"n_trials": 6}), tmp_path, make_objective, 1
    )
    assert len(more.trials) == 6
    assert len({t.params["x"] for t in more.trials}) == 6
    if kind == "sqlite":
        from optuna.storages._heartbeat import is_heartbeat_enabled

        assert (tmp_path / "optuna.db").exists() and not (
            tmp_path / JOURNAL_FILE
        ).exists()
        assert is_heartbeat_enabled(more._storage)  # killed trials fail across machines
    else:
        assert (tmp_path / JOURNAL_FILE).exists()


# -- studies on a tiny project


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A tiny synthetic project run through ingest … pretrain (what tune reads)."""
    root = make_project(tmp_path_factory.mktemp("tune") / "project")
    params = {
        "ingest": {"sources": {"synthetic": {"generate": {"subjects": TINY}}}},
        "pretrain": {"train": FAST},
    }
    run(root, ["corpus", "ingest", "reports", "validate", "pretrain"], params)
    return root


def _project(prepared: Path, dst: Path, **tune) -> Path:
    """A copy of the prepared project whose parameters_tune.yml is ``tune`` over a
    small default (2 settings, probes of one seed)."""
    shutil.copytree(prepared, dst, ignore=shutil.ignore_patterns("tuning"))
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(dst)
    cfg = {
        "study_name": "t",
        "n_trials": 3,
        "pruner": {"name": "none"},
        "objective": {"probe": {"epochs": 4, "seeds": [0], "bootstrap": 0}},
        "fixed": {"train": {**FAST, "checkpoint_every": 1000}},
        "space": {
            "train.lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
            "loss": {"type": "categorical", "choices": ["cka_feature", "clip"]},
            "temperature": {
                "type": "float",
                "low": 0.03,
                "high": 0.1,
                "when": {"loss": ["clip"]},
            },
        },
    } | tune
    (dst / "conf/base/parameters_tune.yml").write_text(
        yaml.safe_dump({"tune": cfg}, sort_keys=False)
    )
    return dst


def _study(project: Path, name: str = "t") -> optuna.Study:
    storage = open_storage(None, project / "data/06_models/tuning", 60)
    return optuna.load_study(study_name=name, storage=storage)


def _worker(project: Path, log: Path) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [PYTHON, "-m", "kedro", "run", "--pipelines=tune"],
        cwd=project,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.slow
def test_three_trial_study_writes_best_params_and_plots(prepared, tmp_path):
    project = _project(prepared, tmp_path / "p")
    run(project, ["tune"], {})
    out = project / "data/08_reporting/tuning"
    best = json.loads((out / "best_params.json").read_text())
    trials = pd.read_csv(out / "trials.csv")
    assert best["trials"]["complete"] == 3 == len(trials)
    assert best["synthetic"] is True and "test split never read" in best["objective"]
    complete = trials[trials["state"] == "complete"]
    top = complete.loc[complete["value"].idxmax()]
    assert best["best"]["trial"] == top["number"]
    assert best["best"]["value"] == pytest.approx(top["value"])
    assert 0.0 <= best["best"]["value"] <= 1.0
    params = best["best"]["params"]
    assert {"train.lr", "loss"} <= set(params) <= {"train.lr", "loss", "temperature"}
    assert ("temperature" in params) == (params["loss"] == "clip")
    assert best["best"]["align"]["train"]["lr"] == params["train.lr"]
    assert best["baseline"]["value"] == pytest.approx(
        sum(best["baseline"]["per_task"].values()) / len(best["baseline"]["per_task"])
    )
    assert len(best["baseline"]["key"]) == 16  # the baseline weights' hash
    # the objective never looks at a test subject's units
    assert set(best["best"]["val_auroc_by_task"]) == set(best["baseline"]["per_task"])
    for png in (
        "optimization_history",
        "param_importances",
        "parallel_coordinate",
        "intermediate_values",
    ):
        data = (out / f"{png}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png

    # Rerunning continues the same study: it already holds 3 finished trials.
    run(project, ["tune"], {})
    assert len(_study(project).trials) == 3

    # `apply` writes the best settings into the align parameters, comments kept.
    target = tmp_path / "parameters_align.yml"
    shutil.copy(REPO / "params.yaml", target)
    cmd = [sys.executable, "-m", "acula_pipeline.tuning", "apply"]
    args = ["--best", str(out / "best_params.json"), "--params", str(target)]
    done = subprocess.run(cmd + args, capture_output=True, text=True, check=True)
    assert "align.train.lr" in done.stdout and "dvc repro" in done.stdout
    text = target.read_text()
    assert "# AcuLa alignment" in text and "# cka_feature | cka_linear" in text
    before = (REPO / "params.yaml").read_text().splitlines()
    after = text.splitlines()
    assert len(after) == len(before)  # one line per setting, as before
    changed = [a for a, b in zip(after, before, strict=True) if a != b]
    assert 1 <= len(changed) <= 3 and "path: null" in text  # only searched values
    align = AlignParams(**yaml.safe_load(text)["align"])
    assert align.train.lr == pytest.approx(params["train.lr"])
    assert align.loss == params["loss"]
    again = subprocess.run(cmd + args, capture_output=True, text=True, check=True)
    assert "nothing changed" in again.stdout
    missing = subprocess.run(
        cmd + ["--best", str(tmp_path / "none.json"), "--params", str(target)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "run `kedro run --pipeline=tune`" in (
        missing.stderr
    )
    _dashboard_lists(project / "data/06_models/tuning" / JOURNAL_FILE, "t")


def _dashboard_lists(journal: Path, study: str) -> None:
    """optuna-dashboard (as the README starts it) serves the study from the file."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(PYTHON).parent / "optuna-dashboard"
    server = subprocess.Popen(
        [str(exe), str(journal), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = None
        for _ in range(60):
            try:
                url = f"http://127.0.0.1:{port}/api/studies"
                with urllib.request.urlopen(url, timeout=2) as r:
                    body = json.load(r)
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, "optuna-dashboard did not answer"
        (summary,) = body["study_summaries"]
        assert summary["study_name"] == study
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_a_killed_study_resumes_without_losing_or_repeating_trials(prepared, tmp_path):
    project = _project(
        prepared,
        tmp_path / "p",
        fixed={"train": {**FAST, "epochs": 3, "checkpoint_every": 1000}},
    )
    log = tmp_path / "first.log"
    worker = _worker(project, log)
    deadline = time.monotonic() + 240
    running = None
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.5)
        if not (project / "data/06_models/tuning" / JOURNAL_FILE).exists():
            continue
        try:
            study = _study(project)
        except KeyError:  # the study is not created yet
            continue
        states = [t.state for t in study.trials]
        if TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING:
            running = study.trials[-1].number
            break
    assert running is not None, log.read_text()[-3000:]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    first = {
        t.number: (t.params, t.value)
        for t in _study(project).trials
        if t.state == TrialState.COMPLETE
    }

    second = _worker(project, tmp_path / "second.log")
    assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    trials = _study(project).trials
    assert [t.number for t in trials] == list(range(len(trials)))
    for number, (params, value) in first.items():  # nothing lost or changed
        assert trials[number].state == TrialState.COMPLETE
        assert (trials[number].params, trials[number].value) == (params, value)
    killed = trials[running]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["failure"].startswith("interrupted: worker")
    retry = [t for t in trials if t.user_attrs.get("retry_of") == running]
    assert len(retry) == 1 and retry[0].params == killed.params
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    new = [t for t in complete if t.number not in first]
    for t in new:  # no completed trial was run again
        assert t.params not in [p for p, _ in first.values()]
    best = json.loads(
        (project / "data/08_reporting/tuning/best_params.json").read_text()
    )
    assert best["trials"] == {
        "complete": 3,
        "pruned": 0,
        "fail": 1,
        "running": 0,
        "waiting": 0,
    }


@pytest.mark.slow
def test_two_workers_share_one_storage(prepared, tmp_path):
    project = _project(prepared, tmp_path / "p", n_trials=6)
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    workers = [_worker(project, log) for log in logs]
    for w, log in zip(workers, logs, strict=True):
        assert w.wait(timeout=400) == 0, log.read_text()[-3000:]
    trials = _study(project).trials
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers) == len(trials)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(trials) >= 6  # both may start the last trial together
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) == 2, "both workers ran trials"
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == len(params), "each trial drew its own settings"


def _script_scores(monkeypatch, values: list[float]) -> None:
    """The validation scorer returns ``values`` in turn (the baseline first)."""
    from acula_pipeline.tuning import objective

    script = iter(values)

    def scripted(self, encoder, device):
        v = next(script)
        return objective.Score(v, {"task/dataset": v})

    monkeypatch.setattr(objective.ValidationScorer, "_score", scripted)


@pytest.mark.slow
def test_a_trial_with_a_poor_intermediate_value_is_pruned(
    prepared, tmp_path, monkeypatch
):

    # The scorer is scripted (the baseline, then each trial's epochs), so that
    # the fourth trial's first epoch is far below the others' at that epoch.
    _script_scores(monkeypatch, [0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1])
    project = _project(
        prepared,
        tmp_path / "p",
        n_trials=4,
        pruner={"name": "median", "n_startup_trials": 3, "n_warmup_steps": 0},
        fixed={"train": {**FAST, "epochs": 2, "checkpoint_every": 1000}},
    )
    run(project, ["tune"], {})
    trials = _study(project).trials
    assert [t.state for t in trials[:3]] == [TrialState.COMPLETE] * 3
    assert trials[3].state == TrialState.PRUNED
    assert trials[3].intermediate_values == {1: 0.1}  # stopped after one epoch
    assert all(t.intermediate_values == {1: 0.9, 2: 0.9} for t in trials[:3])
    best = json.loads(
        (project / "data/08_reporting/tuning/best_params.json").read_text()
    )
    assert best["trials"]["pruned"] == 1 and best["trials"]["complete"] == 3


@pytest.mark.slow
def test_a_trial_whose_loss_turns_nan_fails_and_the_study_finishes(
    prepared, tmp_path, monkeypatch
):
    from acula_pipeline.training.objectives import AlignObjective

    made = []
    init, forward = AlignObjective.__init__, AlignObjective.forward

    def counted_init(self, *a, **k):
        init(self, *a, **k)
        self.index = len(made)
        made.append(self)

    def poisoned(self, batch):
        terms = forward(self, batch)
        if self.index == 1:  # the second trial's loss is NaN from its first step
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(AlignObjective, "__init__", counted_init)
    monkeypatch.setattr(AlignObjective, "forward", poisoned)
    project = _project(prepared, tmp_path / "p", n_trials=2)
    run(project, ["tune"], {})
    trials = _study(project).trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert (
        trials[1]
        .user_attrs["failure"]
        .startswith("NonFiniteLossError: loss is nan at optimiser step 1")
    )
    table = pd.read_csv(project / "data/08_reporting/tuning/trials.csv")
    assert table.loc[1, "state"] == "fail" and "NonFiniteLossError" in str(
        table.loc[1, "failure"]
    )


@pytest.mark.slow
def test_align_temperature_and_mask_ratio_reach_the_model(prepared):
    import numpy as np

    from acula_pipeline.audio.features import FeatureStore
    from acula_pipeline.catalog_datasets import ModelArtifactDataset
    from acula_pipeline.training.stages import prepare_alignment

    d = prepared / "data"
    reports = pd.read_parquet(d / "04_feature/reports.parquet")
    embeddings = {
        "unit_id": reports["unit_id"].tolist(),
        "vectors": np.random.default_rng(0).normal(size=(len(reports), 8)),
        "teacher": {"name": "fake", "path": "-", "key": "k", "dim": 8},
    }
    baseline = ModelArtifactDataset(str(d / "06_models/baseline_encoder")).load()
    assert baseline["config"]["encoder"]["mask_ratio"] == 0.7
    params = AlignParams(loss="clip", temperature=0.05, mask_ratio=0.5)
    run_ = prepare_alignment(
        FeatureStore(d / "03_primary/features"),
        pd.read_parquet(d / "03_primary/segments.parquet"),
        reports,
        embeddings,
        baseline,
        params,
    )
    assert run_.model.student.cfg.mask_ratio == 0.5
    assert run_.config["encoder"]["mask_ratio"] == 0.5  # recorded with the model
    assert float(run_.model.loss.logit_scale.detach().exp()) == pytest.approx(20.0)
    assert run_.config["params"]["temperature"] == 0.05


def test_a_study_refuses_to_continue_on_other_inputs(tmp_path):
    """Issue "Harden", the same fault elsewhere: a study is a cache of scores keyed
    by its name only, so a rerun on new clips, splits or reports counted and
    compared trials scored on the old ones (and found "nothing to run")."""
    from acula_pipeline.tuning.study import InputsChangedError, run_worker

    params = TuneParams(
        study_name="i", n_trials=2, space={"x": ParamSpec(type="float", low=0, high=1)}
    )

    def make_objective(study):
        return lambda trial: trial.suggest_float("x", 0, 1)

    study = run_worker(params, tmp_path, make_objective, 1, inputs="aaaa")
    assert study.user_attrs["inputs"] == "aaaa" and len(study.trials) == 2
    assert len(run_worker(params, tmp_path, make_objective, 1, "aaaa").trials) == 2
    with pytest.raises(InputsChangedError, match="aaaa, now bbbb") as err:
        run_worker(params, tmp_path, make_objective, 1, inputs="bbbb")
    assert "tune.study_name" in str(err.value)
    fresh = params.model_copy(update={"study_name": "j"})
    assert len(run_worker(fresh, tmp_path, make_objective, 1, "bbbb").trials) == 2


def test_a_fixed_setting_wins_over_the_search_space():
    """Issue 21 #6: `tune.fixed.train.epochs=1` was ignored (the trial sampled 5
    epochs from the space). A fixed setting is now taken out of the space, and a
    condition on it is decided by its fixed value."""
    space = {
        "train.lr": ParamSpec(type="float", low=1e-4, high=1e-2, log=True),
        "loss": ParamSpec(type="categorical", choices=["cka_feature", "clip"]),
        "temperature": ParamSpec(
            type="float", low=0.02, high=0.2, when={"loss": ["clip"]}, inactive=None
        ),
        "train.epochs": ParamSpec(type="int", low=2, high=6),
    }
    p = TuneParams(space=space, fixed={"train": {"epochs": 1}, "loss": "cka_feature"})
    assert list(p.search_space.params) == ["train.lr"]
    assert p.fixed_and_inactive == {
        "train": {"epochs": 1},
        "loss": "cka_feature",
        "temperature": None,
    }
    clip = TuneParams(space=space, fixed={"loss": "clip"})
    kept = clip.search_space.params
    assert list(kept) == ["train.lr", "temperature", "train.epochs"]
    assert kept["temperature"].when == {}  # always sampled: the loss is clip
    study = optuna.create_study()
    values = clip.search_space.suggest(study.ask())
    assert set(values) == {"train.lr", "temperature", "train.epochs"}
    with pytest.raises(ValueError, match="nothing is left to search"):
        TuneParams(
            space={"train.epochs": space["train.epochs"]},
            fixed={"train": {"epochs": 1}},
        )


def _postgres_url() -> str:
    """A PostgreSQL server's URL: .ci/run starts Debian's server on 127.0.0.1 and
    sets ACULA_POSTGRES_URL (and ACULA_REQUIRE_POSTGRES, so that CI cannot skip)."""
    url = os.environ.get("ACULA_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("ACULA_REQUIRE_POSTGRES"):
        pytest.fail("ACULA_REQUIRE_POSTGRES is set but ACULA_POSTGRES_URL is not")
    pytest.skip(
        "no PostgreSQL server (.ci/run starts one and sets ACULA_POSTGRES_URL, "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"
    )


_PG_WORKER = """
import sys, time
from acula_pipeline.tuning.study import ParamSpec, TuneParams, _worker, run_worker

params = TuneParams(
    study_name=sys.argv[2],
    storage=sys.argv[1],
    n_trials=8,
    space={"x": ParamSpec(type="float", low=0, high=1)},
)

def make_objective(study):
    def objective(trial):
        trial.set_user_attr("worker", _worker())  # as AlignmentTrial does
        time.sleep(0.3)  # both workers are in the study at once
        return trial.suggest_float("x", 0, 1)
    return objective

run_worker(params, sys.argv[3], make_objective, max_epochs=1)
"""


def test_two_workers_share_a_study_on_a_postgresql_server(tmp_path):
    """Issue 21: Optuna's RDB storage against a real PostgreSQL server, two worker
    processes on one study: every trial once, both workers ran some, heartbeats on
    (a killed worker's trial is failed from another machine)."""
    import uuid

    from optuna.storages._heartbeat import is_heartbeat_enabled

    url = _postgres_url()
    name = f"pg-{uuid.uuid4().hex[:8]}"
    workers = [
        subprocess.Popen(
            [PYTHON, "-c", _PG_WORKER, url, name, str(tmp_path / f"w{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    for w in workers:
        out, _ = w.communicate(timeout=300)
        assert w.returncode == 0, out[-3000:]
    storage = open_storage(url, tmp_path, 60)
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.trials
    assert 8 <= len(trials) <= 9  # both may start the last trial together
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2
    assert is_heartbeat_enabled(storage)
    assert not list(tmp_path.rglob(JOURNAL_FILE))  # an RDB study: no journal file


def test_a_worker_retries_when_another_creates_the_rdb_tables(monkeypatch, tmp_path):
    """Found on PostgreSQL: two workers opening a fresh database at once race to
    create Optuna's tables, and the loser failed on a duplicate type."""
    from sqlalchemy.exc import IntegrityError

    from acula_pipeline.tuning import study as study_mod

    calls = []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise IntegrityError(
                "CREATE TYPE studydirection",
                {},
                Exception('type "studydirection" already exists'),
            )
        return "storage"

    monkeypatch.setattr(study_mod, "RDBStorage", racing)
    monkeypatch.setattr(study_mod.time, "sleep", lambda s: None)
    assert open_storage("postgresql+psycopg://h/db", tmp_path, 60) == "storage"
    assert len(calls) == 2


@pytest.mark.slow
def test_a_trial_is_scored_at_its_best_epoch_and_apply_reproduces_it(
    prepared, tmp_path, monkeypatch
):
    """Issue 21 #6: a trial was scored on its last epoch (0.806) rather than its
    best (0.829). It is now scored at its best, and best_params.json (and so
    tune-apply) stops the same schedule there: epochs 2 of schedule_epochs 3."""
    from acula_pipeline.tuning.apply import apply_best

    _script_scores(monkeypatch, [0.5, 0.7, 0.9, 0.8])  # the baseline, epochs 1–3
    project = _project(
        prepared,
        tmp_path / "p",
        n_trials=1,
        fixed={"train": {**FAST, "epochs": 3, "checkpoint_every": 1000}},
    )
    run(project, ["tune"], {})
    (trial,) = _study(project).trials
    assert trial.value == 0.9 and trial.user_attrs["best_epoch"] == 2
    assert trial.intermediate_values == {1: 0.7, 2: 0.9, 3: 0.8}
    best = json.loads(
        (project / "data/08_reporting/tuning/best_params.json").read_text()
    )["best"]
    assert best["value"] == 0.9 and best["best_epoch"] == 2
    assert best["settings"]["train.epochs"] == 2
    assert best["settings"]["train.schedule_epochs"] == 3
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    apply_best(project / "data/08_reporting/tuning/best_params.json", target)
    train = yaml.safe_load(target.read_text())["align"]["train"]
    assert (train["epochs"], train["schedule_epochs"]) == (2, 3)
