"""The evaluate pipeline end to end: on a small synthetic project (every output, the
leakage audit failing on a planted overlap, a disabled source skipped with a reason)
and on the real CirCor excerpt in ../shared/real_samples (the path must work; the
numbers are meaningless at 7 patients)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from .kedro_support import make_project, run

FAST = {"epochs": 1, "progress": False, "batch_size": 16}
PROBE = {"epochs": 8, "seeds": [0, 1], "bootstrap": 50}
TRAINING = ["ingest", "reports", "validate", "pretrain", "align"]


def _outputs(d: Path) -> dict:
    return json.loads((d / "08_reporting/metrics_detail.json").read_text())


@pytest.mark.slow
def test_evaluate_on_a_small_synthetic_project(tmp_path, caplog):
    from acula_pipeline.catalog_datasets import ModelArtifactDataset
    from acula_pipeline.evaluation.splits import LeakageError

    project = make_project(tmp_path)
    params = {
        "ingest": {
            "sources": {
                "synthetic": {
                    "generate": {
                        "subjects": {"icbhi2017": 10, "circor2022": 10, "coswara": 10}
                    }
                }
            }
        },
        "pretrain": {"train": FAST},
        "align": {"train": FAST},
        "evaluate": {
            "probe": PROBE,
            "embed": {"progress": False},
            # one more training seed: baseline, aligned and control retrained
            "train_seeds": [1],
            # an extra encoder: an untrained MAE-ViT, compared beside the four rows
            "encoders": {
                "random": {
                    "name": "mae_vit",
                    "options": {"dim": 32, "depth": 1, "heads": 2, "decoder_dim": 16},
                }
            },
        },
    }
    # The registry's tasks of sources not enabled (KAUH's T10, …): skipped and said
    # so, not dropped.
    with caplog.at_level(logging.INFO):
        run(project, ["corpus", *TRAINING, "evaluate"], params)
    d = project / "data"
    m = _outputs(d)
    assert m["synthetic"] is True and m["leakage_audit_ok"] is True
    seeded = ("baseline", "control", "aligned")
    assert {*seeded, *(f"{e}@1" for e in seeded), "logmel_stats", "random"} == set(
        m["probes"]["murmur"]["synthetic_circor2022"]
    )
    # one row per encoder: the pipeline's models and seed 1's, averaged
    row = m["summary"]["murmur/synthetic_circor2022"]
    assert set(row) == {*seeded, "logmel_stats", "random"}
    assert row["aligned"]["train_seeds"] == 2 and "train_std" in row["aligned"]
    assert row["logmel_stats"]["train_seeds"] == 1
    runs = [
        m["probes"]["murmur"]["synthetic_circor2022"][e]["auroc"]
        for e in ("aligned", "aligned@1")
    ]
    assert row["aligned"]["auroc"] == pytest.approx(sum(runs) / 2, abs=2e-4)
    assert (
        row["aligned"]["ci95_low"]
        <= row["aligned"]["auroc"]
        <= row["aligned"]["ci95_high"]
    )
    diff = m["differences"]["murmur/synthetic_circor2022"]
    assert set(diff) == {
        "baseline_minus_logmel_stats",
        "aligned_minus_baseline",
        "aligned_minus_control",
    }
    assert all(
        v["verdict"] in ("helped", "hurt", "no evidence either way")
        for v in diff.values()
    )
    murmur = m["probes"]["murmur"]["synthetic_circor2022"]["aligned"]
    assert 0.0 <= murmur["auroc"] <= 1.0 and murmur["protocol"] == "loso"  # 10 < 20
    rec = pd.read_parquet(d / "02_intermediate/recordings.parquet")
    circor = rec[rec["adapter"] == "circor2022"]
    unknown = int((~circor["murmur"].isin(["Absent", "Present"])).sum())
    assert murmur["left_out"] == unknown  # "Unknown" murmur: counted, not lost
    assert murmur["n"] + murmur["left_out"] == len(circor)
    assert m["probes"]["age"]["synthetic_coswara"]["baseline"]["mae"] > 0
    head = m["mean_auroc"]
    assert head["tasks"] >= 3 and head["delta"] == pytest.approx(
        head["aligned"] - head["baseline"], abs=2e-4
    )
    # one summary line, not a block per task and encoder (issue 21 #7)
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1, [r.getMessage() for r in skipped]
    line = skipped[0].getMessage()
    assert "of sources not enabled" in line and "(kauh)" in line
    assert m["skipped_tasks"] >= 1
    # metrics.json: the headline for DVC, flat and short (issue 21 #4)
    headline = json.loads((d / "08_reporting/metrics.json").read_text())
    assert set(headline) == {
        "aligned",
        "baseline",
        "control",
        "logmel",
        "delta",
        "delta_lo",
        "delta_hi",
    }
    paired = head["differences"]["aligned_minus_baseline"]
    assert (
        headline["aligned"] == head["aligned"] and headline["delta"] == paired["delta"]
    )
    assert (headline["delta_lo"], headline["delta_hi"]) == (
        paired["ci95_low"],
        paired["ci95_high"],
    )
    # results.json: per task and encoder, with the settings (#2)
    compact = json.loads((d / "08_reporting/results.json").read_text())
    assert set(compact) == {
        "synthetic",
        "mean_auroc",
        "tasks",
        "leakage_audit_ok",
        "params",
    }
    cell = compact["tasks"]["murmur/synthetic_circor2022"]["aligned"]
    assert cell == {
        "auroc": row["aligned"]["auroc"],
        "lo": row["aligned"]["ci95_low"],
        "hi": row["aligned"]["ci95_high"],
    }
    assert (
        compact["params"]["loss"] == m["params"]["loss"]
        and compact["params"]["align_epochs"] == FAST["epochs"]
    )
    numbers = len(json.dumps(compact["tasks"]).split(","))
    assert numbers < 3 * 5 * len(compact["tasks"]) + 1  # metric, lo, hi per encoder
    settings = f"loss={compact['params']['loss']}"
    table = (d / "08_reporting/results.md").read_text()
    html = (d / "08_reporting/evaluation_report.html").read_text()
    assert settings in table and settings in html
    assert "SYNTHETIC" in html and "Leakage audit" in html and "passed" in html
    assert "kauh" in html and "Great Expectations" in html
    assert html.count("data:image/png;base64,") == 3
    table = (d / "08_reporting/results.md").read_text()
    assert table.startswith("### Results (SYNTHETIC") and "| murmur |" in table
    header = next(line for line in table.splitlines() if line.startswith("| task"))
    assert header.endswith("| aligned | random |")  # the extra encoder's column
    assert "retrained with seeds [1]" in table and "over 2 seeds" in table
    roc = pd.read_csv(d / "08_reporting/roc/murmur--synthetic_circor2022.csv")
    assert (
        list(roc.columns)
        == ["fpr", "baseline", "control", "aligned", "logmel_stats", "random"]
        and len(roc) == 101
    )
    for png in ("before_after", "roc_curves", "embedding_map"):
        assert (d / f"08_reporting/{png}.png").stat().st_size > 10_000
    emb = pd.read_parquet(
        d
        / "07_model_output/task_embeddings/murmur/synthetic_circor2022/aligned.parquet"
    )
    assert {"key", "subject", "split", "y", "embedding"} <= set(emb.columns)
    assert len(m["zero_shot"]) >= 1 and all(
        0 <= v <= 1 for v in m["zero_shot"].values()
    )
    assert m["retrieval"], "retrieval on held-out test reports"
    for r in m["retrieval"].values():
        assert 1 <= r["median_rank"] <= r["queries"]
    cached = list((d / "07_model_output/embedding_cache").glob("*.npy"))
    assert len(cached) == 8  # one per encoder (3 trained twice, 2 untrained)

    # A rerun with other probe settings reuses the clip embeddings.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run(
            project,
            ["evaluate"],
            params
            | {"evaluate": params["evaluate"] | {"probe": PROBE | {"seeds": [3]}}},
        )
    assert "Embedding " not in caplog.text
    assert caplog.text.count("clips from") == 8  # each encoder's, from the cache
    # seed 1's models came back from their finished checkpoints, untrained
    assert caplog.text.count("holds a finished run of this configuration") == 3

    # Plant an overlap: the aligned model claims a test subject. The audit fails the
    # run, naming it; paper_like reports it instead.
    splits = pd.read_parquet(d / "03_primary/splits.parquet")
    victim = splits.loc[splits["split"] == "test", "subject_id"].iloc[0]
    ds = ModelArtifactDataset(str(d / "06_models/aligned"))
    art = ds.load()
    art["config"]["trained_subjects"] = sorted(
        [*art["config"]["trained_subjects"], victim]
    )
    ds.save(art)
    one_seed = params | {"evaluate": params["evaluate"] | {"train_seeds": []}}
    with pytest.raises(LeakageError, match=victim):
        run(project, ["evaluate"], one_seed)
    run(
        project,
        ["evaluate"],
        one_seed | {"reports": {"leakage": {"paper_like": True}}},
    )
    audit = json.loads((d / "08_reporting/leakage_audit.json").read_text())
    assert audit["paper_like"] and audit["test_subjects_in_alignment_audio"] == [victim]
    assert _outputs(d)["leakage_audit_ok"] is False
    assert "overlap" in (d / "08_reporting/evaluation_report.html").read_text()


@pytest.mark.slow
def test_evaluate_real_circor_samples(tmp_path, real_samples):
    """CirCor murmur, present vs absent, end to end on the 7 real patients."""
    project = make_project(tmp_path)
    params = {
        "ingest": {
            "sources": {
                "synthetic": {"enabled": False},
                "circor2022": {
                    "enabled": True,
                    "root": str(real_samples / "circor2022"),
                },
            }
        },
        "pretrain": {"train": FAST},
        "align": {"train": FAST},
        "evaluate": {
            "probe": PROBE,
            "embed": {"progress": False},
            "tasks": [
                {
                    "name": "murmur",
                    "adapter": "circor2022",
                    "target": "murmur",
                    "classes": {"Absent": 0, "Present": 1},
                    "descriptions": [
                        "No heart murmur is heard.",
                        "A heart murmur is heard.",
                    ],
                }
            ],
        },
    }
    run(project, [*TRAINING, "evaluate"], params)
    d = project / "data"
    m = _outputs(d)
    assert m["synthetic"] is False and m["leakage_audit_ok"] is True
    res = m["probes"]["murmur"]["circor2022"]
    rec = pd.read_parquet(d / "02_intermediate/recordings.parquet")
    labelled = rec[rec["murmur"].isin(["Absent", "Present"])]
    for enc in ("baseline", "aligned"):
        assert res[enc]["protocol"] == "loso"  # 7 patients: leave one out
        assert res[enc]["n"] == len(labelled)  # every labelled recording scored
        assert 0.0 <= res[enc]["auroc"] <= 1.0
    table = (d / "08_reporting/results.md").read_text()
    assert "SYNTHETIC" not in table and "| murmur | circor2022 | loso |" in table
