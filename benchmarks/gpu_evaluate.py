"""GPU check of the evaluation path: frozen embeddings of the same clips on CPU (fp32)
and on CUDA (bf16 autocast) agree, and CUDA embedding throughput for the default
student and an OPERA-GT-sized one, with the CPU measured in the same run.

    python benchmarks/gpu_evaluate.py [--clips 2048] [--batch 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from acula_pipeline.audio.features import (
    FeatureShard,
    FeatureStore,
    write_feature_store,
)
from acula_pipeline.audio.frontend import FrontendCfg
from acula_pipeline.evaluation.embed import embed_segments
from acula_pipeline.models import MAEViT, MAEViTCfg


def store(root: Path, n: int) -> tuple[FeatureStore, list[str]]:
    cfg = FrontendCfg()
    ids = [f"clip{i:05d}" for i in range(n)]
    x = (
        np.random.default_rng(0)
        .random((n, cfg.n_frames, cfg.n_mels))
        .astype(np.float16)
    )
    meta = {
        "frontend": cfg.to_dict(),
        "shape": [cfg.n_frames, cfg.n_mels],
        "dtype": "float16",
        "is_synthetic": True,
    }
    write_feature_store(root, [FeatureShard(ids, x, None)], meta)
    return FeatureStore(root), ids


def timed(enc, st, ids, batch, device) -> tuple[np.ndarray, float]:
    embed_segments(enc, st, ids[:batch], batch, device, progress=False)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = embed_segments(enc, st, ids, batch, device, progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA device"
    with tempfile.TemporaryDirectory() as tmp:
        st, ids = store(Path(tmp) / "f", args.clips)
        for name, cfg in (
            ("default (192 × 4)", MAEViTCfg()),
            ("OPERA-GT-sized (384 × 12)", MAEViTCfg(dim=384, depth=12, heads=6)),
        ):
            torch.manual_seed(0)
            enc = MAEViT(cfg)
            n_cpu = min(256, args.clips)
            cpu, t_cpu = timed(enc, st, ids[:n_cpu], 64, "cpu")
            gpu, t_gpu = timed(enc, st, ids, args.batch, "cuda")
            cos = np.sum(cpu * gpu[:n_cpu], 1) / (
                np.linalg.norm(cpu, axis=1) * np.linalg.norm(gpu[:n_cpu], axis=1)
            )
            print(
                f"{name}: CUDA bf16 {args.clips / t_gpu:,.0f} clips/s, CPU fp32 "
                f"{n_cpu / t_cpu:,.0f} clips/s ({args.clips / t_gpu / (n_cpu / t_cpu):.0f}x); "
                f"CPU vs CUDA cosine min {cos.min():.4f}, mean {cos.mean():.5f}"
            )
            assert cos.min() > 0.99, "CUDA embeddings disagree with CPU"


if __name__ == "__main__":
    main()
