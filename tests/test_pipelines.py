"""Kedro plumbing: registry, parameter validation, and a real corpus → ingest run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.startup import bootstrap_project

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.pipelines.ingest.params import IngestParams

from .conftest import REPO
from .kedro_support import make_project, run

TINY = {
    "ingest": {
        "sources": {
            "synthetic": {
                "generate": {
                    "subjects": {"icbhi2017": 2, "circor2022": 2, "coswara": 2}
                }
            }
        }
    }
}


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of the project's configuration with its own empty data folder."""
    return make_project(tmp_path)


def test_registry():
    bootstrap_project(REPO)
    from kedro.framework.project import pipelines

    assert {"corpus", "ingest", "reports", "validate", "__default__"} <= set(pipelines)
    default = {n.name for n in pipelines["__default__"].nodes}
    assert {"generate_synthetic_corpus_node", "extract_features_node"} <= default


def test_enabled_source_without_root_fails_fast(project):
    bad = {"ingest": {"sources": {"icbhi2017": {"enabled": True}}}}
    with pytest.raises(
        Exception, match="ingest.sources.icbhi2017 is enabled but has no 'root'"
    ):
        run(project, ["ingest"], bad)


def test_params_file_is_valid():
    import yaml

    raw = yaml.safe_load((REPO / "conf/base/parameters_ingest.yml").read_text())
    params = IngestParams.model_validate(raw["ingest"])
    assert params.sources["synthetic"].enabled
    assert not any(s.enabled for n, s in params.sources.items() if n != "synthetic")
    assert params.frontend().n_frames == 256


@pytest.mark.slow
def test_corpus_and_ingest_end_to_end(project):
    run(project, ["corpus", "ingest"], TINY)
    data = project / "data"
    rec = pd.read_parquet(data / "02_intermediate/recordings.parquet")
    quarantine = pd.read_parquet(data / "02_intermediate/quarantine.parquet")
    quality = pd.read_parquet(data / "02_intermediate/audio_quality.parquet")
    seg = pd.read_parquet(data / "03_primary/segments.parquet")
    store = FeatureStore(data / "03_primary/features")
    assert rec["is_synthetic"].all() and rec["recording_id"].is_unique
    assert rec["subject_id"].nunique() == 6
    # The planted empty Coswara file is quarantined, not lost.
    assert len(quarantine) == 1 and "empty recording" in quarantine["reason"].iloc[0]
    assert len(quality) == len(rec) + 1
    assert set(seg["recording_id"]) == set(rec["recording_id"])
    assert len(store) == len(seg) and set(store.index["segment_id"]) == set(
        seg["segment_id"]
    )
    assert store.get(seg["segment_id"].iloc[0]).shape == (256, 64)
    assert store.meta["is_synthetic"] is True
    # Every scanned file is accounted for: accepted or quarantined.
    wavs = list((data / "01_raw/synthetic").rglob("*.wav"))
    assert len(wavs) == len(rec) + len(quarantine)
    assert (data / "08_reporting/ingest_overview.png").stat().st_size > 10_000
    split_per_subject = seg.groupby("subject_id")["split"].nunique()
    assert (split_per_subject == 1).all()


@pytest.mark.slow
def test_ingest_real_samples_enabled_by_params(project, real_samples):
    """Real datasets are enabled by parameters alone (as with `kedro run --params`)."""
    sources = {
        "synthetic": {"enabled": False},
        **{
            name: {"enabled": True, "root": str(real_samples / name)}
            for name in ("icbhi2017", "circor2022", "coswara")
        },
    }
    run(project, ["ingest"], {"ingest": {"sources": sources}})
    data = project / "data"
    rec = pd.read_parquet(data / "02_intermediate/recordings.parquet")
    quarantine = pd.read_parquet(data / "02_intermediate/quarantine.parquet")
    seg = pd.read_parquet(data / "03_primary/segments.parquet")
    assert rec["dataset"].value_counts().to_dict() == {
        "circor2022": 23,
        "coswara": 7,
        "icbhi2017": 4,
    }
    assert not rec["is_synthetic"].any()
    assert quarantine["record"].str.contains("9XKj7fAmvwPUas9GFPZuTpev7T03").sum() == 2
    assert (seg[seg["dataset"] == "icbhi2017"]["unit"] == "cycle").sum() == 43
    store = FeatureStore(data / "03_primary/features")
    assert len(store) == len(seg) and store.meta["is_synthetic"] is False


@pytest.mark.slow
def test_reports_pipeline_then_rerun_makes_no_backend_call(project, monkeypatch):
    from acula_pipeline.reports.backends.template import TemplateBackend

    run(project, ["corpus", "ingest", "reports"], TINY)
    data = project / "data"
    reports = pd.read_parquet(data / "04_feature/reports.parquet")
    summary = json.loads((data / "08_reporting/reports_summary.json").read_text())
    seg = pd.read_parquet(data / "03_primary/segments.parquet")
    assert summary["synthetic"] is True
    heldout = pd.read_parquet(data / "04_feature/heldout_reports.parquet")
    assert summary["heldout_reports"] == len(heldout) > 0
    assert summary["units"] == len(reports) + len(heldout)
    # per-run counters are logged, not written: they would change on a warm rerun
    assert "backend_calls" not in summary and "from_cache" not in summary
    # Leak-free default: no alignment report for a subject of the test split (the
    # subject table); their reports are held out, for retrieval only.
    splits = pd.read_parquet(data / "03_primary/splits.parquet")
    test_subjects = set(splits.loc[splits["split"] == "test", "subject_id"])
    assert test_subjects == set(seg.loc[seg["split"] == "test", "subject_id"])
    assert summary["excluded_for_evaluation"]["subjects"] == len(test_subjects)
    assert not set(reports["subject_id"]) & test_subjects
    assert set(heldout["subject_id"]) == test_subjects
    assert reports["check_labels_reflected"].all()
    assert (data / "08_reporting/reports_checks.png").stat().st_size > 5_000
    # The alignment corpus's make-up: every unit from the backend, per dataset.
    corpus = summary["corpus"]
    assert corpus["all"] == {
        "units": len(reports),
        "from_backend": len(reports),
        "fallback_template": 0,
        "dropped": 0,
        "fallback_share": 0.0,
    }
    assert set(corpus) - {"all"} == set(reports["dataset"])

    first_bytes = (data / "04_feature/reports.parquet").read_bytes()
    calls = []
    real = TemplateBackend.generate

    def counting(self, requests):
        calls.extend(requests)
        yield from real(self, requests)

    monkeypatch.setattr(TemplateBackend, "generate", counting)
    first_summary = (data / "08_reporting/reports_summary.json").read_bytes()
    run(project, ["reports"], TINY)
    assert calls == []
    # the summary is byte-identical too, so validate (which reads it) keeps still
    assert (data / "08_reporting/reports_summary.json").read_bytes() == first_summary
    # Served from the cache, the table is byte-identical: downstream stages keep still.
    assert (data / "04_feature/reports.parquet").read_bytes() == first_bytes


def test_a_pipeline_checks_its_inputs_before_any_node_runs(tmp_path):
    """Issue 21 #11: evaluate found its missing validation summary at its last
    node, after minutes of probing. Every input from an earlier pipeline is now
    checked first, each named with its path and the pipeline that makes it."""
    from acula_pipeline.hooks import MissingInputs

    root = make_project(tmp_path)
    with pytest.raises(MissingInputs) as err:
        run(root, ["evaluate"], {})
    text = str(err.value)
    assert "nothing was run" in text
    for name, maker in [
        ("validation_summary", "validate"),
        ("aligned_model", "align"),
        ("baseline_encoder", "pretrain"),
        ("segments", "ingest"),
        ("reports", "reports"),
    ]:
        assert f"{name} (" in text and f"--pipelines={maker}" in text, name
    assert not (root / "data/08_reporting").exists()  # nothing was written


def test_the_keys_valid_at_a_parameter_path_follow_models_mappings_and_lists():
    from pydantic import BaseModel, Field

    from acula_pipeline.cli import _model_keys

    class Leaf(BaseModel):
        enabled: bool = True
        root_dir: str | None = Field(default=None, alias="root")

    class Top(BaseModel):
        sources: dict[str, Leaf] = {}
        tasks: list[Leaf] = []
        leaf: Leaf | None = None
        n: int = 1

    assert _model_keys(Top, []) == ["leaf", "n", "sources", "tasks"]
    assert _model_keys(Top, ["sources", "kauh"]) == ["enabled", "root"]
    assert _model_keys(Top, ["tasks", "2"]) == ["enabled", "root"]
    assert _model_keys(Top, ["leaf"]) == ["enabled", "root"]
    assert _model_keys(Top, ["n"]) is None  # not a model
    assert _model_keys(Top, ["tasks", "first"]) is None
    assert _model_keys(Top, ["nope"]) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--pipelines=align", "--params=align.loss=clp"],
            "bad parameters: align: unknown alignment loss 'clp'; known: ['cka_feature'",
        ),
        (
            ["--pipelines=align", "--params=align.train.epochs=0"],
            "bad parameters: align.train.epochs: Input should be greater than or equal to 1",
        ),
        (
            ["--pipelines=align", "--params=align.train.batchsize=8"],
            "bad parameters: align.train.batchsize: no such key; did you mean "
            "'batch_size'? align.train takes batch_size, checkpoint_every,",
        ),
        (
            ["--pipelines=align", "--params=align.encoder.foo=1"],
            "align.encoder.foo: no such key; align.encoder takes name, options, path",
        ),
        (["--pipelines=evaluate"], "input(s) of this run are missing"),
    ],
)
def test_kedro_run_stops_bad_input_with_one_line(tmp_path, monkeypatch, args, message):
    """Issue 21 #7: a typo in --params gave a 154-line traceback with the one
    useful line at the bottom; the project's `kedro run` (acula_pipeline.cli)
    prints one line naming the key and the valid choices, exit status 2."""
    from click.testing import CliRunner

    from acula_pipeline.cli import cli

    root = make_project(tmp_path)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (root / "data/06_models").exists()  # nothing ran
