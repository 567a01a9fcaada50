"""Each student through the real ``align`` stage on the available device (CUDA: bf16
autocast, TF32): MAE-ViT, tiny Hugging Face audio models (wav2vec 2.0, Whisper, AST,
CLAP) and a TorchScript module, against random stand-in teacher embeddings (no text
model needed). Prints clips/s from the training curve and peak GPU memory; a check
that the training path is device-agnostic, not a speed claim (the models are tiny).

    PYTHONPATH=src:. python benchmarks/gpu_encoders.py [--clips 64] [--batch 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.tiny_audio import make_store, tiny_hf_audio  # noqa: E402

from acula_pipeline.training.stages import AlignParams, EncoderParams, align  # noqa: E402


class LogMelNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.Linear(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.enc(x)).mean(dim=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    print("device:", torch.cuda.get_device_name() if cuda else "CPU")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store, segments, reports = make_store(root / "f", n=args.clips)
        emb = {
            "unit_id": reports["unit_id"].tolist(),
            "vectors": np.random.default_rng(0).standard_normal((args.clips, 384)),
            "teacher": {"name": "random", "path": "-", "key": "random", "dim": 384},
        }
        torch.jit.script(LogMelNet()).save(str(root / "net.pt"))
        students = {
            "mae_vit": {"name": "mae_vit"},
            "torchscript": {"name": "torchscript", "path": str(root / "net.pt")},
        }
        for kind in ("wav2vec2", "whisper", "ast", "clap"):
            students[f"hf_audio/{kind}"] = {
                "name": "hf_audio",
                "path": str(tiny_hf_audio(kind, root / kind)),
            }
        for name, enc in students.items():
            params = AlignParams(
                encoder=EncoderParams(**enc),
                train={"epochs": 2, "batch_size": args.batch, "progress": False},
            )
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            artifact, curve = align(
                store, segments, reports, emb, None, params, root / f"ckpt_{name}"
            )
            wall = time.perf_counter() - t0
            ok = bool(np.isfinite(curve["loss"]).all())
            mem = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
            print(
                f"{name:22s} steps {len(curve):3d}  loss {curve['loss'].iloc[0]:.4f} -> "
                f"{curve['loss'].iloc[-1]:.4f}  finite {ok}  "
                f"{curve['clips_per_s'].iloc[-1]:7.0f} clips/s  wall {wall:5.1f} s  "
                f"peak mem {mem:.2f} GiB  lambda_ssl {artifact['config']['lambda_ssl']}"
            )
            assert ok, name


if __name__ == "__main__":
    main()
