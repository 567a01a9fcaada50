"""Throughput of one alignment training step (MAE-ViT student, heads, AcuLa loss).

A step is: masked-reconstruction loss + the student's clip embedding → projection
heads → alignment loss against cached teacher embeddings, backward, AdamW. Prints
clips per second, the step's FLOPs (counted by torch's FlopCounterMode), the achieved
FLOP/s as a fraction of a plain matrix-multiply peak measured in the same run (fp32 on
CPU; bf16 on CUDA, where the step runs under bf16 autocast with TF32 on), and peak
GPU memory. The step is timed on random tensors already on the device; the share of
time spent waiting for data is then measured separately, reading real clips from the
feature store of a ``make run`` (``--features``) while running the same step.

    python benchmarks/train_throughput.py [--device auto] [--batch 32] [--steps 10]
        [--dim 192 --depth 4 --heads 3] [--loss cka_feature] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.models import LOSSES, MAEViT, MAEViTCfg, ProjectionHead
from acula_pipeline.training.data import ClipDataset


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: torch.dtype, n: int, reps: int) -> float:
    """FLOP/s of a plain n × n × n matrix product on this device and dtype."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def data_wait(
    features: str, batch: int, steps: int, step_on: Callable[[Any], Any]
) -> float | None:
    """Share of wall time spent fetching batches from the real feature store."""
    if not Path(features, "index.parquet").exists():
        return None
    store = FeatureStore(features)
    ids = store.index["segment_id"].tolist()
    loader = DataLoader(ClipDataset(store, ids), batch_size=batch, shuffle=True)
    it = iter(loader)
    waited = total = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        t1 = time.perf_counter()
        step_on(b)
        total += time.perf_counter() - t0
        waited += t1 - t0
    return waited / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--teacher-dim", type=int, default=384)
    ap.add_argument("--loss", default="cka_feature")
    ap.add_argument("--compile", action="store_true", help="torch.compile the student")
    ap.add_argument(
        "--features",
        default="data/03_primary/features",
        help="feature store for the data-wait measurement (skipped if absent)",
    )
    args = ap.parse_args()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    cfg = MAEViTCfg(dim=args.dim, depth=args.depth, heads=args.heads)
    student = MAEViT(cfg).to(device)
    ssl_loss, encode = student.ssl_loss, student.encode_audio
    if args.compile:  # the methods, not forward(), are what a step calls
        ssl_loss, encode = torch.compile(ssl_loss), torch.compile(encode)
    audio_head = ProjectionHead(cfg.dim).to(device)
    text_head = ProjectionHead(args.teacher_dim).to(device)
    loss_fn = LOSSES[args.loss]().to(device)
    params = [
        *student.parameters(),
        *audio_head.parameters(),
        *text_head.parameters(),
        *loss_fn.parameters(),
    ]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=cuda)
    x = torch.rand(args.batch, cfg.n_frames, cfg.n_mels, device=device)
    t = torch.randn(args.batch, args.teacher_dim, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def step(batch: Any = None) -> float:
        xb = x if batch is None else batch[0].to(device, non_blocking=True)
        with autocast:
            ssl = ssl_loss(xb)
            align = loss_fn(audio_head(encode(xb)), text_head(t[: len(xb)]))
            loss = align + ssl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return float(loss.detach())

    for _ in range(2):
        step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    wait = data_wait(args.features, args.batch, args.steps, step_on=step)
    peak_dtype = torch.bfloat16 if cuda else torch.float32
    peak = matmul_peak(device, peak_dtype, 8192 if cuda else 1024, 20 if cuda else 10)
    n_params = sum(p.numel() for p in student.parameters())
    name = (
        torch.cuda.get_device_name()
        if cuda
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(f"device: {name}; torch {torch.__version__}")
    print(
        f"student: MAE-ViT dim {cfg.dim}, depth {cfg.depth}, {n_params / 1e6:.2f} M params; "
        f"batch {args.batch}; loss {args.loss} + masked reconstruction"
        + ("; bf16 autocast, TF32" if cuda else "; fp32")
        + ("; torch.compile" if args.compile else "")
    )
    print(
        f"step time (median of {args.steps}): {dt * 1000:.1f} ms = {args.batch / dt:.0f} clips/s"
    )
    print(
        f"FLOPs per step: {flops / 1e9:.2f} GFLOP -> {flops / dt / 1e12:.3f} TFLOP/s achieved"
    )
    print(
        f"plain {'bf16' if cuda else 'fp32'} matmul peak here: {peak / 1e12:.2f} TFLOP/s; "
        f"step reaches {flops / dt / peak:.0%} of it"
    )
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if wait is not None:
        print(
            f"reading clips from {args.features} (memory-mapped shards, main process): "
            f"{wait:.1%} of step time spent waiting for data (target <= 10 %)"
        )


if __name__ == "__main__":
    main()
