"""`dvc repro` reproduces and then does nothing; `kedro viz build` renders the lineage data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

BIN = Path(sys.executable).parent


def sh(args: list[str], cwd: Path) -> str:
    env = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "KEDRO_LOGGING_CONFIG": str(cwd / "conf" / "logging.yml"),
    }
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout + done.stderr


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """The project's tracked files in a fresh git repository, with a tiny corpus."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    dst = tmp_path / "clone"
    for f in files:
        if (REPO / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dst / f)
    params = dst / "conf/base/parameters_ingest.yml"
    conf = yaml.safe_load(params.read_text())
    conf["ingest"]["sources"]["synthetic"]["generate"]["subjects"] = {
        "icbhi2017": 2,
        "circor2022": 2,
        "coswara": 2,
    }
    params.write_text(yaml.safe_dump(conf, sort_keys=False))
    for stage in ("pretrain", "align"):
        p = dst / f"conf/base/parameters_{stage}.yml"
        conf = yaml.safe_load(p.read_text())
        conf[stage]["train"] |= {"epochs": 1, "progress": False}
        p.write_text(yaml.safe_dump(conf, sort_keys=False))
    (dst / "dvc.lock").unlink(missing_ok=True)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "t"],
    ):
        sh(cmd, dst)
    return dst


@pytest.mark.slow
def test_dvc_repro_then_noop(clone):
    first = sh(["dvc", "repro"], clone)
    assert "Running stage 'corpus'" in first and "Running stage 'ingest'" in first
    assert (clone / "data/03_primary/features/index.parquet").exists()
    metrics = json.loads((clone / "data/08_reporting/ingest_summary.json").read_text())
    assert metrics["quarantined"] == 1
    assert (clone / "data/08_reporting/ingest_overview.png").exists()
    assert "Running stage 'reports'" in first
    reports = json.loads((clone / "data/08_reporting/reports_summary.json").read_text())
    assert reports["synthetic"] and reports["reports"] > 0
    assert reports["backend_calls"] == reports["units"]
    assert (clone / "data/04_feature/report_cache/reports.sqlite").exists()
    assert "Running stage 'validate'" in first
    summary = json.loads(
        (clone / "data/08_reporting/validation_summary.json").read_text()
    )
    assert summary["success"], summary
    assert (clone / "data/08_reporting/validation/index.html").exists()
    assert "Running stage 'pretrain'" in first and "Running stage 'align'" in first
    for model in ("baseline_encoder", "aligned"):
        assert (clone / f"data/06_models/{model}/model.safetensors").exists()
    config = json.loads((clone / "data/06_models/aligned/config.json").read_text())
    assert config["is_synthetic"] and config["teacher"]["dim"] == 384
    assert "Running stage 'evaluate'" in first
    m = json.loads((clone / "data/08_reporting/metrics.json").read_text())
    assert m["synthetic"] and m["leakage_audit_ok"]
    assert "SYNTHETIC" in (clone / "data/08_reporting/results.md").read_text()
    shown = sh(["dvc", "metrics", "show"], clone)
    assert "leakage_audit_ok" in shown and "metrics.json" in shown
    sh(["dvc", "plots", "show", "-o", "plots_out"], clone)
    page = (clone / "plots_out/index.html").read_text()
    assert "align_curve.csv" in page and "before_after" in page
    second = sh(["dvc", "repro"], clone)
    assert "Running stage" not in second
    assert "Data and pipelines are up to date" in second


@pytest.mark.slow
def test_kedro_viz_build_offline(clone):
    sh(["kedro", "viz", "build"], clone)
    assert (clone / "build/index.html").exists()
    graph = json.loads((clone / "build/api/main").read_text())
    assert graph["layers"] == [
        "raw",
        "intermediate",
        "primary",
        "feature",
        "model_input",
        "models",
        "model_output",
        "reporting",
    ]
    names = {n["name"] for n in graph["nodes"]}
    assert {
        "generate_synthetic_corpus_node",
        "scan_sources_node",
        "extract_features_node",
        "segment_features",
        "recordings",
        "quarantine",
        "generate_reports_node",
        "reports",
        "validate_recordings_node",
        "validate_reports_node",
        "validation_gate_node",
        "pretrain_encoder_node",
        "align_encoder_node",
        "aligned_model",
        "audit_leakage_node",
        "run_probes_node",
        "write_results_node",
        "evaluation_metrics",
    } <= names
