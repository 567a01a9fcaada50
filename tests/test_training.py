"""The training engine: schedule, optimiser groups, kill-and-resume, teacher cache."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from acula_pipeline.models import MAEViT, MAEViTCfg
from acula_pipeline.training.engine import TrainCfg, Trainer, configure_optimizer, lr_at
from acula_pipeline.training.objectives import AlignObjective

TINY = MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2)


def data(n=40):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(
        torch.rand(n, 256, 64, generator=g), torch.randn(n, 24, generator=g)
    )


def objective():
    torch.manual_seed(0)
    return AlignObjective(MAEViT(TINY), teacher_dim=24, loss="clip")


CFG = dict(
    epochs=2,
    batch_size=8,
    lr=1e-3,
    warmup_steps=2,
    checkpoint_every=2,
    deterministic=True,
    progress=False,
)


def test_lr_schedule():
    cfg = TrainCfg(lr=1.0, warmup_steps=4, min_lr_ratio=0.1)
    assert [lr_at(s, 20, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, 20, cfg) == pytest.approx(1.0)
    assert lr_at(20, 20, cfg) == pytest.approx(0.1)
    assert lr_at(12, 20, cfg) == pytest.approx(0.55)


def test_no_decay_on_biases_norms_and_temperature():
    model = objective()
    opt = configure_optimizer(model, TrainCfg(), fused=False)
    decay, other = opt.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.dim() >= 2 for p in decay["params"])
    assert "loss.logit_scale" in {names[id(p)] for p in other["params"]}
    assert other["weight_decay"] == 0.0


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    full = objective()
    Trainer(full, TrainCfg(**CFG), tmp_path / "a", {"x": 1}).fit(data())

    class Killed(Exception):
        pass

    def kill(step):
        if step == 4:
            raise Killed

    part = objective()
    with pytest.raises(Killed):
        Trainer(part, TrainCfg(**CFG), tmp_path / "b", {"x": 1}, kill).fit(data())
    resumed = objective()  # fresh weights: everything comes from the checkpoint
    trainer = Trainer(resumed, TrainCfg(**CFG), tmp_path / "b", {"x": 1})
    curve = trainer.fit(data())
    assert trainer.step == 10 and len(curve) == 10
    assert not torch.are_deterministic_algorithms_enabled()  # restored after fit
    for (name, a), b in zip(
        full.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_compiled_training_step(tmp_path):
    """train.compile: the same loop through torch.compile trains and checkpoints."""
    model = objective()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainCfg(**{**CFG, "deterministic": False, "epochs": 1}, compile=True)
    curve = Trainer(model, cfg, tmp_path, {"x": 1}).fit(data(16))
    assert len(curve) == 2 and all(
        torch.isfinite(torch.tensor(r["loss"])) for r in curve
    )
    after = model.state_dict()["student.patch_embed.weight"].cpu()
    assert not torch.equal(before["student.patch_embed.weight"].cpu(), after)
    assert (tmp_path / "last.pt").exists()


def test_epoch_callback_can_end_training_for_good(tmp_path):
    """on_epoch returning True ends training after that epoch; the checkpoint says
    so, and a rerun resumes as ended (with the callback's saved state)."""
    cfg = TrainCfg(**{**CFG, "epochs": 5})

    def stop_after_two(trainer):
        def on_epoch(epoch):
            trainer.extra["seen"] = [*trainer.extra.get("seen", []), epoch]
            return epoch >= 2

        return on_epoch

    t = Trainer(objective(), cfg, tmp_path, {"x": 1})
    t.on_epoch = stop_after_two(t)
    curve = t.fit(data())
    assert t.stopped and t.epoch == 2 and len(curve) == 10  # 5 steps an epoch
    again = Trainer(objective(), cfg, tmp_path, {"x": 1})
    assert again.fit(data()) == curve and again.stopped
    assert again.extra == {"seen": [1, 2]}


def test_pretrain_stops_early_and_keeps_the_best_epoch(tmp_path, monkeypatch):
    """Early stopping: the hold-out split's clips are not trained on, the losses
    measured on them are recorded, training ends ``patience`` epochs after the best
    one, and the artifact holds the best epoch's weights."""
    from acula_pipeline.models import load_encoder
    from acula_pipeline.training import stages

    from .tiny_audio import make_store

    store, segments, _ = make_store(tmp_path / "store", waveforms=False, n=24)
    segments.loc[segments.index[-8:], "split"] = "val"
    params = stages.PretrainParams(
        student={"dim": 32, "depth": 1, "heads": 2, "decoder_dim": 16},
        early_stopping={"enabled": True, "patience": 2},
        train={**CFG, "epochs": 10, "deterministic": False},
    )
    # a scripted validation signal: best at epoch 2, then worse
    losses = iter([0.5, 0.3, 0.4, 0.45, 0.2])
    seen: list[list[str]] = []
    states: list[dict] = []

    def fake(model, store_, ids, seed, device, batch_size=64):
        seen.append(ids)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(losses)

    monkeypatch.setattr(stages, "validation_ssl_loss", fake)
    trained: list[list[str]] = []
    real_dataset = stages.ClipDataset

    def spy(store_, ids, *a, **k):
        trained.append(list(ids))
        return real_dataset(store_, ids, *a, **k)

    monkeypatch.setattr(stages, "ClipDataset", spy)
    art, curve = stages.pretrain(store, segments, params, tmp_path / "ckpt")
    held = sorted(segments.loc[segments["split"] == "val", "segment_id"])
    assert all(ids == held for ids in seen) and len(seen) == 4  # stopped after 4
    assert not set(trained[0]) & set(held) and len(trained[0]) == 16
    es = art["config"]["early_stopping"]
    assert es == {
        "val_losses": [0.5, 0.3, 0.4, 0.45],
        "best_epoch": 2,
        "epochs_run": 4,
        "stopped_early": True,
    }
    kept = load_encoder(art).state_dict()
    for k, v in kept.items():
        assert torch.equal(v, states[1][k]), k  # epoch 2's weights
    assert curve["epoch"].max() == 3  # four epochs ran (0-based in the curve)


def test_early_stopping_refuses_the_evaluation_split():
    from pydantic import ValidationError

    from acula_pipeline.training.stages import PretrainParams

    with pytest.raises(ValidationError, match="held out for evaluation"):
        PretrainParams(early_stopping={"enabled": True, "holdout_split": "test"})
    PretrainParams(early_stopping={"enabled": False, "holdout_split": "test"})


def test_validation_ssl_loss_uses_fixed_masks(tmp_path):
    from acula_pipeline.training.stages import validation_ssl_loss

    from .tiny_audio import make_store

    store, segments, _ = make_store(tmp_path / "store", waveforms=False, n=10)
    torch.manual_seed(0)
    model = MAEViT(TINY).train()
    ids = list(segments["segment_id"])
    a = validation_ssl_loss(model, store, ids, 3, "cpu", batch_size=4)
    assert a == validation_ssl_loss(model, store, ids, 3, "cpu", batch_size=4)
    assert a != validation_ssl_loss(model, store, ids, 4, "cpu", batch_size=4)
    assert model.training  # the mode it came in with


def test_max_steps_ends_the_run_mid_epoch_and_its_schedule_fits_the_steps(tmp_path):
    """train.max_steps stops after that many optimiser steps, inside an epoch too;
    the lr schedule ends at its floor on the last step; a rerun reuses the run."""
    cfg = TrainCfg(**{**CFG, "epochs": 5, "max_steps": 7})  # 5 steps an epoch
    t = Trainer(objective(), cfg, tmp_path, {"x": 1})
    curve = t.fit(data())
    assert len(curve) == 7 and t.stopped and t.epoch == 1
    assert [c["epoch"] for c in curve] == [0] * 5 + [1] * 2
    assert curve[-1]["lr"] == pytest.approx(lr_at(6, 7, cfg))
    assert lr_at(7, 7, cfg) == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    again = Trainer(objective(), cfg, tmp_path, {"x": 1})
    assert again.fit(data()) == curve and again.step == 7
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        TrainCfg(max_steps=0)
    # An epoch's last step made of fewer micro-batches than grad_accum (5
    # micro-batches, 2 per step: 3 steps an epoch) reaching the cap ends the run too.
    accum = TrainCfg(**{**CFG, "epochs": 5, "grad_accum": 2, "max_steps": 3})
    t = Trainer(objective(), accum, tmp_path / "accum", {"x": 1})
    assert len(t.fit(data())) == 3 and t.stopped and t.step == 3


def test_only_rank_zero_writes_the_dvclive_folder(tmp_path, monkeypatch):
    """Under torchrun every rank runs the align nodes; a second rank rewriting the
    same DVCLive folder raced the first (it removed metrics.json while rank 0's
    DVCLive read it), so only rank 0 tracks, the untrained control included."""
    from acula_pipeline.training import stages

    monkeypatch.setattr(stages, "is_main_process", lambda: False)
    assert stages._tracker(tmp_path / "control") is None
    params = stages.AlignParams(ssl_control=False)
    stages.ssl_control(None, None, None, None, None, params, tmp_path, tmp_path / "c")
    assert not (tmp_path / "c").exists()
    monkeypatch.setattr(stages, "is_main_process", lambda: True)
    stages.ssl_control(None, None, None, None, None, params, tmp_path, tmp_path / "c")
    assert (tmp_path / "c" / "plots" / "metrics").is_dir()


def test_run_only_settings_do_not_change_the_run_key():
    from acula_pipeline.training.stages import AlignParams, _what_shapes_the_model

    a = AlignParams()
    b = AlignParams(train={"progress": False, "num_workers": 4, "compile": True})
    c = AlignParams(train={"lr": 1e-3})
    assert _what_shapes_the_model(a) == _what_shapes_the_model(b)
    assert _what_shapes_the_model(a) != _what_shapes_the_model(c)


def test_changed_config_starts_afresh(tmp_path):
    Trainer(objective(), TrainCfg(**CFG), tmp_path, {"x": 1}).fit(data())
    t = Trainer(objective(), TrainCfg(**CFG), tmp_path, {"x": 2})
    assert not t.load_checkpoint()


@pytest.mark.slow
def test_pretrain_and_align_pipelines(tmp_path, monkeypatch):
    """corpus → … → validate → pretrain → align on a tiny project; the second align
    run asks the teacher for nothing and resumes the finished run."""
    import json

    import pandas as pd

    from acula_pipeline.catalog_datasets import ModelArtifactDataset
    from acula_pipeline.models import MAEViT, load_encoder

    from .kedro_support import make_project, run

    project = make_project(tmp_path)
    one_epoch = {"epochs": 1, "progress": False, "batch_size": 16}
    params = {
        "ingest": {
            "sources": {
                "synthetic": {
                    "generate": {
                        "subjects": {"icbhi2017": 2, "circor2022": 2, "coswara": 3}
                    }
                }
            }
        },
        "pretrain": {"train": one_epoch},
        "align": {"train": one_epoch},
    }
    run(
        project,
        ["corpus", "ingest", "reports", "validate", "pretrain", "align"],
        params,
    )
    d = project / "data"
    base = ModelArtifactDataset(str(d / "06_models/baseline_encoder")).load()
    assert isinstance(load_encoder(base), MAEViT)
    aligned = ModelArtifactDataset(str(d / "06_models/aligned")).load()
    assert isinstance(load_encoder(aligned), MAEViT)
    assert aligned["config"]["teacher"]["dim"] == 384
    assert not torch.equal(
        aligned["state_dict"]["student.patch_embed.weight"],
        base["state_dict"]["patch_embed.weight"],
    )
    curve = pd.read_csv(d / "08_reporting/align_curve.csv")
    assert {"step", "lr", "loss", "align", "ssl"} <= set(curve.columns)
    assert "clips_per_s" not in curve.columns  # a timing: a rerun writes other bytes
    assert curve["loss"].notna().all() and len(curve) > 0
    cache = list((d / "05_model_input/teacher_cache").glob("*.npz"))
    assert len(cache) == 1

    # The SSL-only control: the align run with lambda_align 0 and nothing else
    # changed, hence the same optimiser steps; its student moved from the baseline
    # by SSL alone, and differently from the aligned one.
    control = ModelArtifactDataset(str(d / "06_models/ssl_control")).load()
    cfg = control["config"]
    assert cfg["kind"] == "ssl_control" and cfg["params"]["lambda_align"] == 0.0
    ours, theirs = dict(cfg["params"]), dict(aligned["config"]["params"])
    assert ours.pop("lambda_align") == 0.0 and theirs.pop("lambda_align") == 1.0
    assert ours == theirs and cfg["data"] == aligned["config"]["data"]
    assert cfg["trained_subjects"] == aligned["config"]["trained_subjects"]
    control_curve = pd.read_csv(d / "08_reporting/control_curve.csv")
    assert control_curve["step"].tolist() == curve["step"].tolist()
    assert (control_curve["align"] == 0).all() and (control_curve["ssl"] > 0).all()
    student = control["state_dict"]["student.patch_embed.weight"]
    assert not torch.equal(student, base["state_dict"]["patch_embed.weight"])
    assert not torch.equal(student, aligned["state_dict"]["student.patch_embed.weight"])

    from acula_pipeline.training import stages

    calls = []
    real = stages.EmbeddingCache.embed

    def spy(self, texts, batch_size=64):
        out = real(self, texts, batch_size)
        calls.append(self.forward_texts)
        return out

    monkeypatch.setattr(stages.EmbeddingCache, "embed", spy)
    run(project, ["align"], params)
    assert calls == [0]  # every report embedding came from the cache
    again = ModelArtifactDataset(str(d / "06_models/aligned")).load()
    for k, v in aligned["state_dict"].items():
        assert torch.equal(v, again["state_dict"][k]), k
    assert json.loads((d / "06_models/aligned/config.json").read_text())["is_synthetic"]

    # The README's multi-process command: two gloo ranks run the align pipeline;
    # rank 0 writes the model, the curve has one row per global step.
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "kedro",
            "run",
            "--pipelines=align",
            "--params=align.train.epochs=1,align.train.batch_size=8,"
            "align.train.progress=false,align.train.seed=1,align.ssl_control=false",
        ],
        cwd=project,
        env=env,
        check=True,
        timeout=600,
    )
    ddp = ModelArtifactDataset(str(d / "06_models/aligned")).load()
    assert ddp["config"]["params"]["train"]["seed"] == 1
    off = ModelArtifactDataset(str(d / "06_models/ssl_control")).load()
    assert off["config"] == {"kind": "ssl_control", "disabled": True}
    assert not off["state_dict"]
    from acula_pipeline.training.data import alignment_pairs

    n = len(
        alignment_pairs(
            pd.read_parquet(d / "03_primary/segments.parquet"),
            pd.read_parquet(d / "04_feature/reports.parquet"),
        )
    )
    curve = pd.read_csv(d / "08_reporting/align_curve.csv")
    import math

    assert len(curve) == math.ceil(
        math.ceil(n / 2) / 8
    )  # per rank ⌈n/2⌉ clips, 8/batch
    assert not torch.equal(
        ddp["state_dict"]["student.patch_embed.weight"],
        aligned["state_dict"]["student.patch_embed.weight"],
    )


def _stub_teacher(tmp_path):
    """A 3-d teacher that encodes every text as ones, with a folder of its own."""
    import numpy as np

    class Teacher:
        path, dim = tmp_path / "teacher", 3

        def encode(self, texts, batch_size=64):
            return np.ones((len(texts), 3))

    Teacher.path.mkdir()
    return Teacher


def test_two_processes_saving_the_teacher_cache_at_once(tmp_path, monkeypatch):
    """Two writers interleaved (as two tune workers were): the second saves
    completely while the first is between writing its file and moving it into
    place. Each needs a temporary file of its own; with one shared name the first
    found its file gone (FileNotFoundError)."""
    import numpy as np

    from acula_pipeline.training import teacher_cache
    from acula_pipeline.training.teacher_cache import EmbeddingCache

    Teacher = _stub_teacher(tmp_path)
    first = EmbeddingCache(tmp_path / "c", Teacher(), "mean")
    second = EmbeddingCache(tmp_path / "c", Teacher(), "mean")
    real = np.savez
    interleaved = []

    def savez(file, **arrays):
        real(file, **arrays)
        if not interleaved:  # the first writer, before its move: the other saves
            interleaved.append(True)
            second.embed(["b"])

    monkeypatch.setattr(teacher_cache.np, "savez", savez)
    first.embed(["a"])
    assert interleaved and first.path.exists()
    assert [p.name for p in first.folder.iterdir()] == [first.path.name]  # no tmp left
    again = EmbeddingCache(tmp_path / "c", Teacher(), "mean")
    again.embed(["a"])
    assert again.forward_texts == 0  # the last writer's file, complete


def test_damaged_teacher_cache_is_set_aside(tmp_path, caplog):

    from acula_pipeline.training.teacher_cache import EmbeddingCache

    Teacher = _stub_teacher(tmp_path)
    first = EmbeddingCache(tmp_path / "c", Teacher(), "mean")
    first.embed(["a", "b"])
    first.path.write_bytes(b"not an npz")
    again = EmbeddingCache(tmp_path / "c", Teacher(), "mean")
    assert "unreadable" in caplog.text and str(first.path) in caplog.text
    assert first.path.with_suffix(".corrupt").exists()
    again.embed(["a"])
    assert again.forward_texts == 1 and again.path.exists()


def test_a_finished_run_is_reused_unless_resume_is_never(tmp_path, caplog):
    """Issue 21 #5: a rerun of a finished run "resumed" at its last step and
    trained nothing, silently, with no way to ask for a fresh run."""
    first = Trainer(objective(), TrainCfg(**CFG), tmp_path, {"x": 1})
    curve = first.fit(data())
    with caplog.at_level("INFO", logger="acula_pipeline"):
        again = Trainer(objective(), TrainCfg(**CFG), tmp_path, {"x": 1})
        assert again.fit(data()) == curve and again.step == first.step
    assert "holds a finished run of this configuration" in caplog.text
    assert "train.resume=never" in caplog.text
    fresh = Trainer(objective(), TrainCfg(**CFG, resume="never"), tmp_path, {"x": 1})
    assert not fresh.load_checkpoint()
    redone = fresh.fit(data())
    assert len(redone) == len(curve) and fresh.step == first.step  # trained again
    # the setting is how a run goes, not what it learns: same run key
    from acula_pipeline.training.stages import AlignParams, _what_shapes_the_model

    assert _what_shapes_the_model(AlignParams()) == _what_shapes_the_model(
        AlignParams(train={"resume": "never"})
    )


def test_dvclive_logs_each_step_live_and_the_same_files_however_the_run_went(
    tmp_path,
):
    """Issue 21 #2: an experiment tracker. DVCLive gets each optimiser step while
    the run trains (read here mid-run), and the folder holds the same files after a
    straight run, a killed and resumed one, and a finished run reused."""
    from acula_pipeline.tracking import DVCLiveTracker

    seen = {}

    def peek(step):
        if step == 3:
            tsv = tmp_path / "live_a/plots/metrics/loss.tsv"
            seen["rows"] = len(tsv.read_text().splitlines()) - 1

    straight = Trainer(
        objective(),
        TrainCfg(**CFG),
        tmp_path / "a",
        {"x": 1},
        peek,
        tracker=DVCLiveTracker(tmp_path / "live_a"),
    )
    curve = straight.fit(data())
    assert seen["rows"] == 3  # written as it trained
    files = {
        p.name: p.read_text() for p in (tmp_path / "live_a/plots/metrics").glob("*.tsv")
    }
    assert set(files) == {"loss.tsv", "align.tsv", "ssl.tsv", "lr.tsv"}
    rows = files["loss.tsv"].splitlines()
    assert rows[0] == "step\tloss" and len(rows) == len(curve) + 1
    assert float(rows[-1].split("\t")[1]) == pytest.approx(curve[-1]["loss"])
    assert not (tmp_path / "live_a/metrics.json").exists()  # a live view only

    class Killed(Exception):
        pass

    def kill(step):
        if step == 4:
            raise Killed

    with pytest.raises(Killed):
        Trainer(
            objective(),
            TrainCfg(**CFG),
            tmp_path / "b",
            {"x": 1},
            kill,
            tracker=DVCLiveTracker(tmp_path / "live_b"),
        ).fit(data())
    for folder in ("live_b", "live_c"):  # resumed; then reused, nothing trained
        Trainer(
            objective(),
            TrainCfg(**CFG),
            tmp_path / "b",
            {"x": 1},
            tracker=DVCLiveTracker(tmp_path / folder),
        ).fit(data())
        again = {
            p.name: p.read_text()
            for p in (tmp_path / folder / "plots/metrics").glob("*.tsv")
        }
        assert again == files, folder


def test_a_run_stopped_at_epoch_k_of_a_longer_schedule_matches_that_epoch(tmp_path):
    """Issue 21 #6: a tuning trial is scored at its best epoch; `epochs: k,
    schedule_epochs: n` trains exactly the first k epochs of the n-epoch run (the
    same learning rates), so applying the trial's best epoch reproduces it."""
    snapshots = {}
    full = objective()

    def keep(epoch):
        snapshots[epoch] = {k: v.clone() for k, v in full.state_dict().items()}

    trainer = Trainer(full, TrainCfg(**CFG), tmp_path / "a", {"x": 1}, on_epoch=keep)
    curve = trainer.fit(data())
    short = objective()
    cfg = TrainCfg(**{**CFG, "epochs": 1, "schedule_epochs": 2})
    part = Trainer(short, cfg, tmp_path / "b", {"x": 2}).fit(data())
    assert [r["lr"] for r in part] == [r["lr"] for r in curve[: len(part)]]
    for name, value in short.state_dict().items():
        assert torch.equal(value, snapshots[1][name]), name
    # without the schedule, one epoch decays faster: another model
    plain = objective()
    Trainer(plain, TrainCfg(**{**CFG, "epochs": 1}), tmp_path / "c", {"x": 3}).fit(
        data()
    )
    assert any(
        not torch.equal(v, snapshots[1][k]) for k, v in plain.state_dict().items()
    )
    with pytest.raises(ValueError, match="schedule_epochs"):
        TrainCfg(**{**CFG, "epochs": 3, "schedule_epochs": 2})
