"""The ``transformers`` report backend on CPU and on CUDA (bfloat16), same run.

Builds a randomly initialised Llama-shaped causal LM from a config (nothing is
downloaded; the text it writes is noise, so every report falls back to the template),
writes reports for the same units on each device, and prints reports per second and
the CUDA/CPU ratio. It checks the GPU path end to end: model and batches on the
device, bfloat16 weights, left-padded batched generation, token counts, the cache.

    python benchmarks/reports_local_lm.py --units units.parquet [--n 64] [--batch 16]

``--units`` is a parquet of alignment units (``acula_pipeline.reports.build_units``);
without it the units come from ``data/`` of a ``make run``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from acula_pipeline.reports import (
    ReportCache,
    ReportsParams,
    build_units,
    write_reports,
)
from acula_pipeline.reports.backends.local_lm import TransformersBackend

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.tiny_lm

from tests.tiny_lm import tiny_causal_lm  # noqa: E402


def load_units(path: str | None) -> pd.DataFrame:
    if path:
        return pd.read_parquet(path)
    data = REPO / "data"
    return build_units(
        pd.read_parquet(data / "02_intermediate/recordings.parquet"),
        pd.read_parquet(data / "03_primary/segments.parquet"),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", default=None)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    units = load_units(args.units)
    units = units[units["age_years"].notna()].head(args.n)  # distinct prompts
    raw = yaml.safe_load((REPO / "conf/base/parameters_reports.yml").read_text())
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        tiny_causal_lm(model, args.hidden, args.layers)
        for device in devices:
            p = ReportsParams.model_validate(
                raw["reports"]
                | {
                    "backend": "transformers",
                    "progress": False,
                    "retry_failed": False,
                    "transformers": {
                        "model_path": str(model),
                        "device": device,
                        "batch_size": args.batch,
                        "max_new_tokens": args.new_tokens,
                        "max_input_tokens": 4096,
                    },
                }
            )
            backend = TransformersBackend(p.transformers)
            # Warm-up (model load, CUDA context, kernels) outside the timing.
            write_reports(units.head(2), p, ReportCache(Path(tmp) / "warm"), backend)
            cache = Path(tmp) / f"cache_{device}"
            t0 = time.perf_counter()
            run = write_reports(units, p, ReportCache(cache), backend)
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            calls = run.stats["backend_calls"]
            rates[device] = calls / dt
            print(
                f"{device}: {calls} generations in {dt:.2f} s = {rates[device]:.1f}/s; "
                f"{run.stats['backend_completion_tokens']} new tokens, "
                f"{run.stats['backend_batches']} batches (warm-up included in counts); "
                f"sources {run.reports['source'].value_counts().to_dict()}"
            )
            again = write_reports(units, p, ReportCache(cache), backend)
            assert again.stats["backend_calls"] == 0, (
                "rerun must be served by the cache"
            )
    if "cuda" in rates:
        print(f"cuda vs cpu: {rates['cuda'] / rates['cpu']:.1f}x")
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
