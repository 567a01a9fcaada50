"""Shared fixtures: offline environment, the real-sample excerpts, tiny synthetic corpora."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(_k, _v)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _own_digest_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """File digests (``runtime.file_digest``) are remembered in a folder of the
    session's, not the user's ``~/.cache``; child processes inherit it."""
    os.environ["ACULA_CACHE_DIR"] = str(tmp_path_factory.mktemp("acula_cache"))


REAL = Path(
    os.environ.get("ACULA_REAL_SAMPLES", REPO.parent / "shared" / "real_samples")
)


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """``../shared/real_samples``; CI must have it, elsewhere its absence skips."""
    if not REAL.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real samples not found at {REAL} (set ACULA_REAL_SAMPLES)")
        pytest.skip(f"real samples not found at {REAL} (set ACULA_REAL_SAMPLES)")
    return REAL


@pytest.fixture()
def real_copy(real_samples: Path, tmp_path: Path):
    """Copy one real-sample dataset into a writable folder (the originals are read-only)."""

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(real_samples / name, dst)
        for p in [dst, *dst.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        return dst

    return copy


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic corpus with 3 subjects per dataset (written once per session)."""
    from acula_pipeline.audio.synthetic import SyntheticCfg, SyntheticCorpus

    root = tmp_path_factory.mktemp("corpus") / "synthetic"
    cfg = SyntheticCfg(
        subjects={"icbhi2017": 3, "circor2022": 3, "coswara": 3}, workers=2
    )
    SyntheticCorpus(cfg).write(root)
    return root


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project after a whole default run (corpus → … → evaluate) on a tiny
    synthetic corpus: the outputs the ``acula`` commands and the notebook read."""
    from .kedro_support import make_project, run

    root = make_project(tmp_path_factory.mktemp("small_run") / "project")
    fast = {"epochs": 1, "progress": False, "batch_size": 16}
    gen = {"subjects": {"icbhi2017": 12, "circor2022": 12, "coswara": 12}}
    run(
        root,
        ["corpus", "ingest", "reports", "validate", "pretrain", "align", "evaluate"],
        {
            "ingest": {"sources": {"synthetic": {"generate": gen}}},
            "pretrain": {"train": fast},
            "align": {"train": fast},
            "evaluate": {
                "probe": {"epochs": 4, "seeds": [0], "bootstrap": 20},
                "embed": {"progress": False},
            },
        },
    )
    return root
