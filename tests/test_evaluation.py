"""Evaluation core: metrics against scikit-learn and hand-computed references, and
the OPERA linear probe on embeddings whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, roc_auc_score

from acula_pipeline.evaluation.metrics import (
    auroc,
    mae,
    retrieval_metrics,
    retrieval_ranks,
)
from acula_pipeline.evaluation.probes import ProbeCfg, Split, run_probe

FAST = ProbeCfg(epochs=30, seeds=[0, 1, 2, 3, 4], bootstrap=200, lr=1e-2)


def test_auroc_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    s = rng.random(50)
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert auroc(y, np.stack([1 - s, s], 1)) == pytest.approx(roc_auc_score(y, s))
    y3 = rng.integers(0, 3, 60)
    p3 = rng.dirichlet(np.ones(3), 60)
    ref = roc_auc_score(y3, p3, multi_class="ovr", average="macro")
    assert auroc(y3, p3) == pytest.approx(ref)
    # ties, and labels other than 0/1 (the larger one is positive)
    yt, st = rng.integers(0, 2, 80), np.round(rng.random(80), 1)
    assert auroc(yt, st) == pytest.approx(roc_auc_score(yt, st))
    assert auroc(yt + 3, st) == pytest.approx(roc_auc_score(yt + 3, st))
    # a hand-computed case: 3 of 4 positive-negative pairs ordered right
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])) == 0.75
    with pytest.raises(ValueError, match="two classes"):
        auroc(np.zeros(5), np.arange(5.0))


def test_mae():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    assert mae(y, p) == pytest.approx(0.5) == mean_absolute_error(y, p)


def test_retrieval_against_hand_computed_ranks():
    sim = np.array(
        [
            [0.9, 0.1, 0.2],  # correct item 0 ranks 1
            [0.5, 0.4, 0.6],  # correct item 1 ranks 3
            [0.3, 0.8, 0.7],  # correct item 2 ranks 2
        ]
    )
    assert retrieval_ranks(sim, [0, 1, 2]).tolist() == [1, 3, 2]
    m = retrieval_metrics(sim, [0, 1, 2], ks=(1, 2, 3))
    assert m == {"R@1": 1 / 3, "R@2": 2 / 3, "R@3": 1.0, "median_rank": 2.0}


def blobs(centres, n, seed):
    """``n`` points around the given class centres (unit noise), labels 0 … k−1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(centres), n)
    return Split(centres[y] + rng.normal(0, 1, (n, centres.shape[1])), y)


def test_probe_separates_separable_embeddings():
    centres = np.random.default_rng(0).normal(0, 4.0, (2, 16))
    tr, va, te = (blobs(centres, n, seed) for n, seed in ((200, 1), (80, 2), (200, 3)))
    res = run_probe(tr, va, te, FAST)
    assert res.metric == "auroc" and len(res.per_seed) == 5
    assert res.mean > 0.99
    # the kept epoch's validation AUROC, per seed (what tuning may optimise)
    assert res.val_per_seed is not None and len(res.val_per_seed) == 5
    assert min(res.val_per_seed) > 0.99


def test_probe_is_at_chance_on_shuffled_labels():
    rng = np.random.default_rng(0)
    mk = lambda n: Split(rng.normal(0, 1, (n, 16)), rng.integers(0, 2, n))  # noqa: E731
    res = run_probe(mk(300), mk(100), mk(400), FAST)
    assert abs(res.mean - 0.5) < 0.1, res.per_seed


def test_multiclass_and_regression_probes():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4.0, (3, 8))
    splits = (blobs(centres, n, seed) for n, seed in ((150, 4), (60, 5), (150, 6)))
    assert run_probe(*splits, FAST).mean > 0.98
    w = rng.normal(0, 1, 8)

    def lin(n):
        x = rng.normal(0, 1, (n, 8))
        return Split(x, 50 + 10 * (x @ w) + rng.normal(0, 0.5, n))

    res = run_probe(lin(300), lin(100), lin(200), FAST, kind="regression")
    spread = float(np.abs(lin(200).y - 50).mean())
    assert res.metric == "mae" and res.mean < 0.2 * spread, (res.mean, spread)


def test_embeddings_are_batched_frozen_and_pooled(tmp_path):
    import torch

    from acula_pipeline.evaluation.embed import embed_segments, pool_by
    from acula_pipeline.models import MAEViT, MAEViTCfg

    from .tiny_audio import make_store

    store, segments, _ = make_store(tmp_path / "f", waveforms=False, n=6)
    enc = MAEViT(MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2))
    enc.train()
    ids = segments["segment_id"].tolist()
    a = embed_segments(enc, store, ids, batch_size=4, device="cpu", progress=False)
    b = embed_segments(
        enc, store, ids[::-1], batch_size=5, device="cpu", progress=False
    )
    assert a.shape == (6, 32) and enc.training  # the mode is restored
    np.testing.assert_allclose(a, b[::-1], rtol=1e-5, atol=1e-6)  # order, batching
    with torch.no_grad():
        one = enc.eval().encode_audio(
            torch.from_numpy(store.get(ids[2]).astype(np.float32))[None]
        )
    np.testing.assert_allclose(a[2], one[0].numpy(), rtol=1e-5, atol=1e-6)
    keys, pooled = pool_by(["r1", "r0", "r1", "r0", "r2", "r1"], a)
    assert keys == ["r0", "r1", "r2"]
    np.testing.assert_allclose(pooled[1], a[[0, 2, 5]].mean(0), rtol=1e-6)


def _recordings(n_subjects=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_subjects):
        label = "Present" if i % 4 == 0 else "Absent"  # 25 % positives
        for k in range(rng.integers(1, 4)):  # several recordings per subject
            rows.append(
                {
                    "recording_id": f"c/{i}_{k}",
                    "subject_id": f"circor:{i}",
                    "dataset": "circor2022",
                    "adapter": "circor2022",
                    "murmur": label,
                    "official_split": None,
                }
            )
    for i in range(20):
        rows.append(
            {
                "recording_id": f"i/{i}",
                "subject_id": f"icbhi:{i}",
                "dataset": "icbhi2017",
                "adapter": "icbhi2017",
                "murmur": None,
                "official_split": "test" if i < 8 else "train",
            }
        )
    return pd.DataFrame(rows)


def test_splits_are_subject_disjoint_stratified_seeded_and_official():
    from acula_pipeline.evaluation.splits import SplitParams, make_splits

    rec = _recordings()
    params = SplitParams(stratify={"circor2022": "murmur"})
    s = make_splits(rec, params)
    assert s["subject_id"].is_unique and set(s["subject_id"]) == set(rec["subject_id"])
    circor = s[s.dataset == "circor2022"]
    for split in ("train", "val", "test"):  # both classes in every split
        assert set(circor.loc[circor.split == split, "stratum"]) == {
            "Absent",
            "Present",
        }
    assert 0.1 < (circor.split == "test").mean() < 0.3
    icbhi = s[s.dataset == "icbhi2017"].set_index("subject_id")["split"]
    assert (icbhi[[f"icbhi:{i}" for i in range(8)]] == "test").all()  # official test
    assert set(icbhi[[f"icbhi:{i}" for i in range(8, 20)]]) == {"train", "val"}
    assert s.equals(make_splits(rec, params))  # seeded
    assert not s.equals(make_splits(rec, SplitParams(seed=1, stratify=params.stratify)))


def test_leakage_audit_fails_on_a_planted_overlap():
    from acula_pipeline.evaluation.splits import (
        LeakageError,
        SplitParams,
        leakage_audit,
        make_splits,
        require_no_leak,
    )

    s = make_splits(_recordings(), SplitParams())
    train = s.loc[s.split == "train", "subject_id"].tolist()
    test = s.loc[s.split == "test", "subject_id"].tolist()
    clean = leakage_audit(s, train, train)
    assert clean["ok"]
    require_no_leak(clean)
    leaked = leakage_audit(s, train + test[:1], train)
    assert not leaked["ok"] and leaked["test_subjects_in_alignment_audio"] == test[:1]
    with pytest.raises(LeakageError, match=test[0]):
        require_no_leak(leaked)
    with pytest.raises(LeakageError, match="reports used for alignment"):
        require_no_leak(leakage_audit(s, train, train + test[-1:]))


def test_task_data_splits_units_and_skips_with_a_reason(caplog):
    from acula_pipeline.evaluation.splits import SplitParams, make_splits
    from acula_pipeline.evaluation.tasks import TaskSpec, task_data

    rec = _recordings()
    rec.loc[0, "murmur"] = "Unknown"  # a value outside the class map: left out
    splits = make_splits(rec, SplitParams(stratify={"circor2022": "murmur"}))
    rng = np.random.default_rng(0)
    emb = {r: rng.normal(0, 1, 4) for r in rec["recording_id"]}
    segments = pd.DataFrame(columns=["segment_id", "recording_id", "unit"])
    spec = TaskSpec(
        name="murmur",
        adapter="circor2022",
        target="murmur",
        classes={"Absent": 0, "Present": 1},
        split="fixed",
    )
    (td,) = task_data(spec, rec, segments, splits, emb)
    assert td.skipped is None and td.dataset == "circor2022" and td.protocol == "fixed"
    n = int((rec.adapter == "circor2022").sum())
    assert td.counts["left_out"] == 1
    assert td.counts["train"] + td.counts["val"] + td.counts["test"] == n - 1
    assert set(td.split("test").y) == {0, 1}
    subj = task_data(
        spec.model_copy(update={"unit": "subject"}), rec, segments, splits, emb
    )[0]
    assert sum(subj.counts[s] for s in ("train", "val", "test")) == 40
    # auto: 40 subjects with both classes in every split → the fixed split;
    # fewer subjects than loso_below_subjects → leave one subject out
    auto = spec.model_copy(update={"split": "auto"})
    assert task_data(auto, rec, segments, splits, emb)[0].protocol == "fixed"
    small = task_data(auto, rec, segments, splits, emb, loso_below_subjects=50)[0]
    assert small.protocol == "loso" and small.counts["loso"] == n - 1
    # each skip at DEBUG (the evaluate stage says them all in one line)
    with caplog.at_level("DEBUG", logger="acula_pipeline.evaluation.tasks"):
        (off,) = task_data(
            spec.model_copy(update={"adapter": "coswara"}), rec, segments, splits, emb
        )
    assert off.protocol is None and "source not enabled" in off.skipped
    assert "skipped" in caplog.text and "coswara" in caplog.text


def test_task_where_keeps_only_the_named_recording_types():
    from acula_pipeline.evaluation.splits import SplitParams, make_splits
    from acula_pipeline.evaluation.tasks import TaskSpec, task_data

    rec = _recordings()
    circor = rec["adapter"] == "circor2022"
    rec["recording_type"] = np.where(np.arange(len(rec)) % 2, "cough", "exhalation")
    splits = make_splits(rec, SplitParams())
    emb = {r: np.zeros(4) for r in rec["recording_id"]}
    segments = pd.DataFrame(columns=["segment_id", "recording_id", "unit"])
    spec = TaskSpec(
        name="murmur_cough",
        adapter="circor2022",
        target="murmur",
        classes={"Absent": 0, "Present": 1},
        split="loso",
        where={"recording_type": ["cough"]},
    )
    (td,) = task_data(spec, rec, segments, splits, emb)
    kept = rec[circor & (rec["recording_type"] == "cough")]["recording_id"]
    assert set(td.frame["key"]) == set(kept) and 0 < len(kept) < circor.sum()
    (none,) = task_data(
        spec.model_copy(update={"where": {"recording_type": ["sentence"]}}),
        rec,
        segments,
        splits,
        emb,
    )
    assert "match {'recording_type': ['sentence']}" in none.skipped
    with pytest.raises(KeyError, match="'where' names 'nope'"):
        task_data(
            spec.model_copy(update={"where": {"nope": ["x"]}}),
            rec,
            segments,
            splits,
            emb,
        )


def test_task_spec_rejects_inconsistent_definitions():
    from acula_pipeline.evaluation.tasks import TaskSpec

    with pytest.raises(ValueError, match="needs classes"):
        TaskSpec(name="x", adapter="a", target="t")
    with pytest.raises(ValueError, match="multiclass with 2 classes"):
        TaskSpec(
            name="x",
            adapter="a",
            target="t",
            kind="multiclass",
            classes={"a": 0, "b": 1},
        )
    with pytest.raises(ValueError, match="scored by mae"):
        TaskSpec(name="x", adapter="a", target="t", kind="regression", metric="auroc")
    with pytest.raises(ValueError, match="1 descriptions for 2 classes"):
        TaskSpec(
            name="x",
            adapter="a",
            target="t",
            classes={"a": 0, "b": 1},
            descriptions=["d"],
        )
    t = TaskSpec(name="x", adapter="a", target="t", kind="regression")
    assert t.metric == "mae" and not t.is_classification


def test_cycle_task_uses_each_cycle_clip():
    from acula_pipeline.evaluation.tasks import TaskSpec, task_data, unit_embeddings

    rec = pd.DataFrame(
        {
            "recording_id": ["i/1", "i/2", "i/3", "i/4"],
            "subject_id": ["s1", "s2", "s3", "s4"],
            "dataset": "icbhi2017",
            "adapter": "icbhi2017",
        }
    )
    seg = pd.DataFrame(
        {
            "segment_id": [f"i/{r}#c{c}" for r in range(1, 5) for c in range(3)],
            "recording_id": [f"i/{r}" for r in range(1, 5) for _ in range(3)],
            "unit": "cycle",
            "crackles": [True, False, None] * 4,
        }
    )
    vec = np.arange(12, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    per_cycle = unit_embeddings("cycle", seg, seg["segment_id"].tolist(), vec)
    per_rec = unit_embeddings("recording", seg, seg["segment_id"].tolist(), vec)
    np.testing.assert_allclose(per_rec["i/2"], vec[3:6].mean(0))
    splits = pd.DataFrame({"subject_id": ["s1", "s2", "s3", "s4"], "split": "train"})
    spec = TaskSpec(
        name="crackles",
        adapter="icbhi2017",
        unit="cycle",
        target="crackles",
        classes={"False": 0, "True": 1},
        split="loso",
    )
    (td,) = task_data(spec, rec, seg, splits, per_cycle)
    assert td.counts["left_out"] == 4 and len(td.frame) == 8  # None: no label
    row = td.frame.set_index("key").loc["i/3#c0"]
    assert row["y"] == 1 and row["subject"] == "s3"
    np.testing.assert_allclose(td.x[td.frame["key"] == "i/3#c0"][0], vec[6])


def test_loso_probe_pools_held_out_predictions():
    from acula_pipeline.evaluation.probes import run_loso

    centres = np.random.default_rng(0).normal(0, 4.0, (2, 16))
    data = blobs(centres, 60, 5)
    groups = np.repeat(np.arange(12), 5)
    res = run_loso(data, groups, FAST)
    assert res.mean > 0.99 and len(res.test_y) == 60
    assert res.val_per_seed is None  # no validation split under leave-one-out
    # Uninformative embeddings, 4 of 30 subjects positive: near chance. (Without
    # class-balanced folds the pooled AUROC of this case is about 0.17.)
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 3)
    y = np.repeat((np.arange(30) < 4).astype(int), 3)
    noise = Split(rng.normal(0, 1, (90, 64)) + 2.0, y)
    res = run_loso(noise, groups, ProbeCfg(epochs=32, seeds=[0, 1], bootstrap=0))
    assert 0.3 < res.mean < 0.7, res.mean


def test_zero_shot_and_retrieval_through_the_heads():
    import torch

    from acula_pipeline.evaluation.zero_shot import (
        SharedSpace,
        report_retrieval,
        zero_shot_scores,
    )
    from acula_pipeline.models import HeadCfg, MAEViT, MAEViTCfg
    from acula_pipeline.training.objectives import AlignObjective

    torch.manual_seed(0)
    cfg = HeadCfg(hidden=16, out=8, dropout=0.0)
    model = AlignObjective(
        MAEViT(MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2)),
        teacher_dim=12,
        head=cfg,
    )
    artifact = {
        "state_dict": model.state_dict(),
        "config": {
            "params": {"head": cfg.__dict__, "loss": "clip"},
            "teacher": {"dim": 12},
        },
    }
    space = SharedSpace(artifact)
    rng = np.random.default_rng(0)
    audio, text = rng.normal(0, 1, (5, 32)), rng.normal(0, 1, (3, 12))
    scores = zero_shot_scores(space, audio, text)
    with torch.no_grad():
        a = torch.nn.functional.normalize(
            model.audio_head(torch.tensor(audio).float()), dim=-1
        )
        t = torch.nn.functional.normalize(
            model.text_head(torch.tensor(text).float()), dim=-1
        )
    np.testing.assert_allclose(scores, (a @ t.T).numpy(), rtol=1e-5, atol=1e-6)
    # retrieval ranks the same similarities (clips × reports) as the heads give
    reports = rng.normal(0, 1, (5, 12))
    with torch.no_grad():
        r = torch.nn.functional.normalize(
            model.text_head(torch.tensor(reports).float()), dim=-1
        )
    expected = retrieval_metrics((a @ r.T).numpy(), [4, 3, 2, 1, 0], (1, 3))
    got = report_retrieval(space, audio, reports, [4, 3, 2, 1, 0], (1, 3))
    assert got == expected and set(got) == {"R@1", "R@3", "median_rank"}
    # CKA-trained heads: both sides centred over the compared set first
    artifact["config"]["params"]["loss"] = "cka_linear"
    with torch.no_grad():
        ca = model.audio_head(torch.tensor(audio).float())
        ct = model.text_head(torch.tensor(text).float())
    ca = torch.nn.functional.normalize(ca - ca.mean(0), dim=-1)
    ct = torch.nn.functional.normalize(ct - ct.mean(0), dim=-1)
    np.testing.assert_allclose(
        zero_shot_scores(SharedSpace(artifact), audio, text),
        (ca @ ct.T).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_results_table_and_figures():
    from acula_pipeline.evaluation.comparison import compare, overall
    from acula_pipeline.evaluation.report import (
        before_after_chart,
        embedding_map,
        results_table,
        roc_figure,
        roc_table,
    )
    from acula_pipeline.evaluation.uncertainty import ClusterBootstrap

    records = comparison_records()
    comps = compare(records, ClusterBootstrap(draws=300, seed=0))
    md = results_table(comps, overall(comps), synthetic=True, provenance="Data: x.")
    assert "SYNTHETIC" in md.splitlines()[0] and "Data: x." in md
    header = next(line for line in md.splitlines() if line.startswith("| task"))
    assert header.split("|")[6:10] == [
        " no learning (log-mel stats) ",
        " baseline (SSL) ",
        " SSL-only control ",
        " aligned ",
    ]
    murmur = next(line for line in md.splitlines() if line.startswith("| murmur"))
    assert "| fixed | 80 (40) | AUROC |" in murmur
    assert "mean over 2 classification task(s)" in md
    assert "aligned − baseline (SSL)" in md and "**helped**" in md
    assert "SYNTHETIC" not in results_table(comps, overall(comps), synthetic=False)
    fig = before_after_chart(comps, synthetic=True)
    # 4 encoders × 2 AUROC tasks (the MAE task is not charted)
    assert len(fig.axes[0].patches) == 8 and "SYNTHETIC" in fig.axes[0].get_title()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    fig = roc_figure(
        {"baseline": (y, rng.random(40)), "aligned": (y, y + 0.1)}, "murmur"
    )
    assert len(fig.axes[0].lines) == 3  # two curves and the chance diagonal
    fig = embedding_map(
        [
            (
                "t",
                {
                    "baseline": rng.normal(size=(40, 8)),
                    "aligned": rng.normal(size=(40, 8)),
                },
                y.astype(str),
            )
        ],
        synthetic=True,
    )
    assert len(fig.axes) == 2 and all(len(ax.collections) == 2 for ax in fig.axes)
    table = roc_table({"baseline": (y, rng.random(40)), "aligned": (y, y + 0.1)})
    assert list(table.columns) == ["fpr", "baseline", "aligned"] and len(table) == 101
    assert table["aligned"].iloc[0] == 1.0 and table["baseline"].iloc[-1] == 1.0


def test_artifact_key_follows_weights_and_takes_scalars():
    import torch

    from acula_pipeline.evaluation.run import artifact_key

    art = {
        "config": {"loss": "clip"},
        "state_dict": {"w": torch.ones(2, 3), "logit_scale": torch.tensor(2.0)},
    }
    key = artifact_key(art)
    assert key == artifact_key(art)
    art["state_dict"]["logit_scale"] = torch.tensor(2.5)
    assert artifact_key(art) != key  # a changed scalar is a new encoder state


def comparison_records(n_subjects: int = 40, per: int = 2, seed: int = 0):
    """Probe records of two AUROC tasks (sharing one dataset) and one MAE task:
    aligned informative, control identical to aligned, baseline and the reference
    uninformative; 2 recordings per test subject, 3 probe seeds."""
    from acula_pipeline.evaluation.probes import ProbeResult
    from acula_pipeline.evaluation.run import ProbeRecord
    from acula_pipeline.evaluation.tasks import TaskData, TaskSpec

    rng = np.random.default_rng(seed)
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], per)
    records = []
    for name, dataset, kind in (
        ("murmur", "circor2022", "binary"),
        ("outcome", "circor2022", "binary"),
        ("age", "coswara", "regression"),
    ):
        y = np.repeat(rng.integers(0, 2, n_subjects), per)
        if kind == "regression":
            y = np.repeat(rng.normal(40, 10, n_subjects), per)
            spec = TaskSpec(name=name, adapter="x", target="t", kind="regression")
        else:
            spec = TaskSpec(
                name=name, adapter="x", target="t", classes={"a": 0, "b": 1}
            )
        frame = pd.DataFrame(
            {
                "key": [f"u{i}" for i in range(len(y))],
                "subject": subjects,
                "split": "test",
                "y": y,
            }
        )
        data = TaskData(name, dataset, "fixed", frame, np.zeros((len(y), 2)))
        good = y + rng.normal(0, 0.3 if kind != "regression" else 1.0, (3, len(y)))
        bad = rng.normal(0, 1, (3, len(y))) + (40 if kind == "regression" else 0)
        for enc, out in (
            ("logmel_stats", bad),
            ("baseline", bad[::-1]),
            ("control", good),
            ("aligned", good),
        ):
            if kind != "regression":
                p = 1 / (1 + np.exp(-out))
                out = np.stack([1 - p, p], axis=-1)
                per_seed = [auroc(y, o) for o in out]
                metric = "auroc"
            else:
                per_seed = [mae(y, o) for o in out]
                metric = "mae"
            res = ProbeResult(
                metric=metric,
                per_seed=per_seed,
                mean=float(np.mean(per_seed)),
                std=float(np.std(per_seed)),
                outputs=out,
                test_y=y,
            )
            records.append(ProbeRecord(spec, data, enc, res))
    return records


def test_verdicts_follow_the_patient_level_interval():
    from acula_pipeline.evaluation.comparison import compare, overall
    from acula_pipeline.evaluation.outputs import metrics
    from acula_pipeline.evaluation.uncertainty import ClusterBootstrap

    comps = compare(comparison_records(), ClusterBootstrap(draws=400, seed=0))
    murmur = next(c for c in comps if c.task == "murmur")
    by = {(d.a, d.b): d for d in murmur.diffs}
    assert by[("aligned", "baseline")].verdict == "helped"
    assert by[("aligned", "baseline")].ci.low > 0
    # identical outputs: a difference of exactly zero in every draw
    same = by[("aligned", "control")]
    assert same.ci.point == same.ci.low == same.ci.high == 0
    assert same.verdict == "no evidence either way"
    age = next(c for c in comps if c.task == "age")
    aged = {(d.a, d.b): d for d in age.diffs}
    # MAE: lower is better, so a negative difference helped
    assert aged[("aligned", "baseline")].ci.high < 0
    assert aged[("aligned", "baseline")].verdict == "helped"
    # the two CirCor tasks share draws: 40 subjects in one pool
    assert murmur.n_subjects == 40 and murmur.n_units == 80
    head = overall(comps)
    assert head is not None and head.tasks == 2
    hd = {(d.a, d.b): d for d in head.diffs}
    assert hd[("aligned", "baseline")].verdict == "helped"
    m = metrics(comparison_records(), comps, head, [], [], {"ok": True}, True)
    entry = m["probes"]["murmur"]["circor2022"]["aligned"]
    assert entry["ci95_low"] < entry["auroc"] < entry["ci95_high"]
    assert entry["n_subjects"] == 40
    diff = m["differences"]["murmur/circor2022"]["aligned_minus_baseline"]
    assert diff["verdict"] == "helped" and diff["ci95_low"] > 0
    assert m["mean_auroc"]["differences"]["aligned_minus_control"]["delta"] == 0


def test_training_seeds_form_one_row_whose_interval_includes_them():
    import dataclasses

    from acula_pipeline.evaluation.comparison import compare
    from acula_pipeline.evaluation.uncertainty import ClusterBootstrap

    boot = ClusterBootstrap(draws=400, seed=0)
    one = comparison_records()
    same = one + [
        dataclasses.replace(r, encoder=f"{r.encoder}@{s}")
        for s in (1, 2)
        for r in one
        if r.encoder != "logmel_stats"
    ]
    a = {c.task: c for c in compare(one, boot)}["murmur"].scores["aligned"]
    b = {c.task: c for c in compare(same, boot)}["murmur"]
    # three identical training seeds: the same row, interval and verdicts
    assert b.scores["aligned"].train_seeds == 3 and b.scores["aligned"].train_std == 0
    assert b.scores["aligned"].mean == pytest.approx(a.mean)
    assert (b.scores["aligned"].ci.low, b.scores["aligned"].ci.high) == pytest.approx(
        (a.ci.low, a.ci.high)
    )
    assert b.scores["logmel_stats"].train_seeds == 1
    # seeds that disagree: the mean is over seeds and the interval widens
    varied = one + [
        dataclasses.replace(r, encoder=f"{r.encoder}@{s}")
        for s, other in (
            (1, comparison_records(seed=5)),
            (2, comparison_records(seed=9)),
        )
        for r in other
        if r.encoder == "aligned"
    ]
    # (the other seeds' records have other labels: give them this task's units)
    for r in varied[len(one) :]:
        mine = next(
            x for x in one if x.encoder == "aligned" and x.spec.name == r.spec.name
        )
        r.data = mine.data
        outs = mine.result.outputs[::-1] * 0.5 + r.result.outputs * 0.5
        y = mine.result.test_y
        per_seed = [auroc(y, o) if r.spec.kind == "binary" else mae(y, o) for o in outs]
        r.result = dataclasses.replace(
            r.result,
            outputs=outs,
            test_y=y,
            per_seed=per_seed,
            mean=float(np.mean(per_seed)),
        )
    c = {c.task: c for c in compare(varied, boot)}["murmur"].scores["aligned"]
    assert c.train_seeds == 3 and c.train_std > 0
    assert c.ci.high - c.ci.low > a.ci.high - a.ci.low


def test_a_training_seed_equal_to_the_pipelines_own_is_refused():
    from acula_pipeline.evaluation.run import retrain_with_seeds
    from acula_pipeline.training.stages import AlignParams, PretrainParams

    with pytest.raises(ValueError, match="the seed the pipeline's own models"):
        retrain_with_seeds(
            None, None, None, None, {}, PretrainParams(), AlignParams(), [2, 0], "x"
        )


def test_draws_without_a_value_are_counted_in_metrics():
    from acula_pipeline.evaluation.comparison import compare, overall
    from acula_pipeline.evaluation.outputs import metrics
    from acula_pipeline.evaluation.uncertainty import ClusterBootstrap

    # 3 subjects, one of them the only positive: a third of the draws lack it
    records = comparison_records(n_subjects=3, per=1, seed=1)
    for r in records:
        if r.spec.kind == "binary":
            r.result.test_y[:] = [1, 0, 0]
    comps = compare(records, ClusterBootstrap(draws=300, seed=0))
    m = metrics(records, comps, overall(comps), [], [], {"ok": True}, True)
    entry = m["summary"]["murmur/circor2022"]["aligned"]
    assert 50 < entry["draws_undefined"] < 150  # about 300 × (2/3)³ ≈ 89


def test_the_settings_line_says_a_step_cap_and_a_skipped_pretrain():
    from types import SimpleNamespace

    from acula_pipeline.evaluation.outputs import describe_settings, run_settings

    params = SimpleNamespace(
        score_on="test", probe=SimpleNamespace(seeds=[0]), train_seeds=[]
    )
    own = {"params": {"encoder": {"name": "baseline"}, "train": {"epochs": 3}}}
    base = {"params": {"train": {"epochs": 5}}}
    line = describe_settings(run_settings(own, base, params))
    assert "pretrain_epochs=5" in line and "max_steps" not in line
    opera = {
        "params": {
            "encoder": {"name": "opera_ct"},
            "train": {"epochs": 3, "max_steps": 20},
        }
    }
    line = describe_settings(run_settings(opera, base, params))
    assert "align_epochs=3, align_max_steps=20" in line
    assert "pretrain_epochs=none (align starts from the student)" in line
