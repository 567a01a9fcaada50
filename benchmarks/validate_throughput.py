"""Validation speed: the ``recordings`` suite on a 10,000-row table.

The Great Expectations suite (every expectation of ``recordings_suite``, paths checked)
against the same rules written as plain pandas, on the same table in the same run;
prints both times and the ratio. The issue's bar: seconds, not minutes.

    python benchmarks/validate_throughput.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from acula_pipeline.audio.synthetic import SyntheticCfg, SyntheticCorpus
from acula_pipeline.sources import scan_source, scans_to_frames
from acula_pipeline.validation import GXSession, ValidateParams
from acula_pipeline.validation.suites import RecordingsCfg, recordings_suite

REPO = Path(__file__).resolve().parents[1]


def table(rows: int, corpus: Path) -> pd.DataFrame:
    scans = [
        scan_source(a, corpus / a, f"synthetic_{a}", True)
        for a in ("icbhi2017", "circor2022", "coswara")
    ]
    base, _, _ = scans_to_frames(scans)
    reps = -(-rows // len(base))
    out = pd.concat([base] * reps, ignore_index=True).head(rows)
    out["recording_id"] = [f"{r}~{i}" for i, r in enumerate(out["recording_id"])]
    return out


def pandas_rules(t: pd.DataFrame, cfg: RecordingsCfg) -> int:
    """The same rules in plain pandas; returns the number of failed rules."""
    failed = int(t["recording_id"].duplicated().any())
    for c in ("subject_id", "path", "dataset", "modality", "sample_rate", "duration_s"):
        failed += int(t[c].isna().any())
    failed += int(~t["adapter"].isin(list(cfg.by_adapter)).all())
    for adapter, b in cfg.by_adapter.items():
        g = t[t["adapter"] == adapter]
        failed += int(~g["modality"].isin(b.modalities).all())
        failed += int(~g["sample_rate"].between(*b.sample_rate).all())
        failed += int(~g["duration_s"].between(*b.duration_s).all())
    failed += int(not all(Path(p).is_file() for p in t["path"]))
    return failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args()
    raw = yaml.safe_load((REPO / "conf/base/parameters_validate.yml").read_text())
    cfg = ValidateParams.model_validate(raw["validate"]).recordings
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "synthetic"
        SyntheticCorpus(
            SyntheticCfg(
                subjects={k: 3 for k in ("icbhi2017", "circor2022", "coswara")}
            )
        ).write(corpus)
        t = table(args.rows, corpus)
        session = GXSession(docs_dir=None)
        t0 = time.perf_counter()
        res = session.validate("recordings", *recordings_suite(t, cfg))
        gx_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_failed = pandas_rules(t.assign(adapter=t["adapter"]), cfg)
        pd_s = time.perf_counter() - t0
    print(f"recordings suite on {len(t):,} rows, {res.evaluated} expectations")
    print(f"  Great Expectations: {gx_s:6.2f} s ({len(res.failures)} failed)")
    print(f"  plain pandas:       {pd_s:6.2f} s ({n_failed} failed)")
    print(f"  GX / pandas: {gx_s / pd_s:.0f}x the time of the bare rules")


if __name__ == "__main__":
    main()
