"""Throughput of one alignment training step (MAE-ViT student, heads, AcuLa loss).

The step is the training engine's own: ``AlignObjective`` (masked-reconstruction loss
+ the student's clip embedding → projection heads → alignment loss against cached
teacher embeddings), backward, gradient clipping, AdamW from ``configure_optimizer``,
temperature clamping. Prints clips per second, the step's FLOPs (counted by torch's
FlopCounterMode) and the achieved FLOP/s as a fraction of a plain matrix-multiply peak
(fp32 on CPU; bf16 on CUDA, where the step runs under bf16 autocast with TF32 on).

The peak is measured in the same run, interleaved with the step: rounds of (peak,
steps) alternate and the reported fraction is the median of the per-round ratios, so
a machine whose speed drifts (shared CPUs, clock changes) is compared with itself.
``--compile`` also measures the step under ``torch.compile`` (``train.compile: true``).
The share of time spent waiting for data is measured reading real clips from the
feature store of a ``make run`` (``--features``) while running the same step.

    python benchmarks/train_throughput.py [--device auto] [--batch 32] [--steps 5]
        [--rounds 5] [--dim 192 --depth 4 --heads 3] [--loss cka_feature] [--compile]
        [--encoder opera_ct|opera_ce|opera_gt]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import (
    FlopCounterMode,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.models import MAEViT, MAEViTCfg, build_encoder
from acula_pipeline.models.losses import clamp_temperatures
from acula_pipeline.training.data import ClipDataset
from acula_pipeline.training.engine import TrainCfg, autocast, configure_optimizer
from acula_pipeline.training.objectives import AlignObjective


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: torch.dtype, n: int, reps: int) -> float:
    """FLOP/s of a plain n × n × n matrix product on this device and dtype."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
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


def _cpu_flash(
    q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    return sdpa_flop_count(q, k, v)


def _cpu_flash_bwd(
    grad: Any, q: Any, k: Any, v: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    return sdpa_backward_flop_count(grad, q, k, v)


# FlopCounterMode knows the CUDA attention kernels but not the CPU flash kernel;
# without these the CPU figure would leave attention's matrix products out.
CPU_ATTENTION = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_bwd,
}


class Bench:
    """The engine's step on fixed tensors (or a given batch of clips)."""

    def __init__(self, args: argparse.Namespace, device: str, compiled: bool) -> None:
        torch.manual_seed(0)
        self.cfg = MAEViTCfg(dim=args.dim, depth=args.depth, heads=args.heads)
        student = (
            build_encoder({"name": args.encoder}) if args.encoder else MAEViT(self.cfg)
        )
        self.model = AlignObjective(
            student, teacher_dim=args.teacher_dim, loss=args.loss
        ).to(device)
        self.forward: Any = torch.compile(self.model) if compiled else self.model
        self.opt = configure_optimizer(
            self.model, TrainCfg(), fused=device.startswith("cuda")
        )
        self.device = device
        self.x = torch.rand(
            args.batch, self.cfg.n_frames, self.cfg.n_mels, device=device
        )
        self.t = torch.randn(args.batch, args.teacher_dim, device=device)

    def step(self, batch: Any = None) -> float:
        x = self.x if batch is None else batch[0].to(self.device, non_blocking=True)
        with autocast(self.device):
            terms = self.forward((x, self.t[: len(x)]))
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        clamp_temperatures(self.model.loss)
        return float(terms["loss"].detach())

    def measure(
        self, steps: int, rounds: int, peak: Callable[[], float]
    ) -> tuple[float, float, float]:
        """(median step seconds, median peak FLOP/s, median per-round FLOP ratio)."""
        counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION)
        with counter:
            self.step()
        flops = counter.get_total_flops()
        times, peaks, ratios = [], [], []
        for _ in range(rounds):
            p = peak()
            ts = []
            for _ in range(steps):
                t0 = time.perf_counter()
                self.step()
                sync(self.device)
                ts.append(time.perf_counter() - t0)
            dt = statistics.median(ts)
            times.append(dt)
            peaks.append(p)
            ratios.append(flops / dt / p)
        self.flops = flops
        return (
            statistics.median(times),
            statistics.median(peaks),
            statistics.median(ratios),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--teacher-dim", type=int, default=384)
    ap.add_argument("--loss", default="cka_feature")
    ap.add_argument(
        "--encoder",
        default=None,
        help="a registered student instead of the MAE-ViT (opera_ct, opera_ce, "
        "opera_gt: random weights, the published architecture)",
    )
    ap.add_argument(
        "--compile", action="store_true", help="also time the step under torch.compile"
    )
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
    peak_dtype = torch.bfloat16 if cuda else torch.float32

    def peak() -> float:
        return matmul_peak(
            device, peak_dtype, 8192 if cuda else 1024, 20 if cuda else 8
        )

    name = (
        torch.cuda.get_device_name()
        if cuda
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(f"device: {name}; torch {torch.__version__}")
    for compiled in (False, True) if args.compile else (False,):
        bench = Bench(args, device, compiled)
        t0 = time.perf_counter()
        for _ in range(2):  # warm-up (and compilation)
            bench.step()
        sync(device)
        warm = time.perf_counter() - t0
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        dt, pk, ratio = bench.measure(args.steps, args.rounds, peak)
        n_params = sum(p.numel() for p in bench.model.student.parameters())
        student = args.encoder or f"MAE-ViT dim {args.dim}, depth {args.depth}"
        print(
            f"\n{'torch.compile' if compiled else 'eager'}: {student}, "
            f"{n_params / 1e6:.2f} M params; batch {args.batch}; "
            f"loss {args.loss} + the student's SSL loss"
            + ("; bf16 autocast, TF32" if cuda else "; fp32")
        )
        if compiled:
            print(f"compilation + 2 warm-up steps: {warm:.1f} s")
        print(
            f"step time (median over {args.rounds} rounds of {args.steps}): "
            f"{dt * 1000:.1f} ms = {args.batch / dt:.0f} clips/s"
        )
        print(
            f"FLOPs per step: {bench.flops / 1e9:.2f} GFLOP -> "
            f"{bench.flops / dt / 1e12:.3f} TFLOP/s achieved"
        )
        print(
            f"plain {'bf16' if cuda else 'fp32'} matmul peak, measured between rounds: "
            f"{pk / 1e12:.3f} TFLOP/s (median); step reaches {ratio:.0%} of it "
            "(median of per-round ratios; target >= 60 % on CPU)"
        )
        if cuda:
            print(
                f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
            )
        else:
            import resource

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"peak resident memory of this process: {rss:.2f} GiB")
        if not compiled:
            wait = data_wait(args.features, args.batch, args.steps * 2, bench.step)
            if wait is not None:
                print(
                    f"reading clips from {args.features} (memory-mapped shards, main "
                    f"process): {wait:.1%} of step time spent waiting for data "
                    "(target <= 10 %)"
                )


if __name__ == "__main__":
    main()
