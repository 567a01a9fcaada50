"""One readable training loop (nanoGPT's habits) with checkpoint and resume.

AdamW with weight decay only on tensors of two or more dimensions (never on biases,
norms or temperatures), linear warm-up then cosine decay as a pure function of the
step, gradient accumulation, clipping, bf16 autocast on CUDA (a no-op on CPU),
seeded shuffling per epoch, and checkpoints holding model, optimizer, step, epoch,
position in the epoch, RNG state, curve and config: a rerun resumes where the last
checkpoint left off and, in deterministic mode on CPU, ends with the same weights.

Under ``torchrun`` the model is wrapped in DDP (``nccl`` on GPU, ``gloo`` on CPU),
each rank reads its share of every epoch's order, ``batch_size`` is per rank (the
global batch is ``batch_size × world size``), and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from acula_pipeline.models.losses import clamp_temperatures
from acula_pipeline.training import distributed as dist_

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; raised before the optimiser step applies it."""


class TrainCfg(BaseModel):
    """Optimisation settings of one training stage."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=3, ge=1)
    # Epochs the learning-rate schedule spans (null: ``epochs``). A run kept at
    # epoch k of an n-epoch schedule (a tuning trial's best epoch) is reproduced
    # with epochs: k, schedule_epochs: n: the same steps at the same rates.
    schedule_epochs: int | None = Field(default=None, ge=1)
    # Stop after this many optimiser steps (null: none), e.g. to try a large
    # student on a CPU: the run is then finished, and the learning-rate schedule
    # spans at most these steps.
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=32, ge=1)  # per process under torchrun
    grad_accum: int = Field(default=1, ge=1)  # micro-batches per optimiser step
    lr: float = Field(default=3e-4, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)  # cosine floor / peak
    warmup_steps: int = Field(default=10, ge=0)
    weight_decay: float = Field(default=0.05, ge=0)
    grad_clip: float = Field(default=1.0, ge=0)  # 0 = off
    device: str = "auto"  # auto → cuda if available, else cpu
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms
    checkpoint_every: int = Field(default=50, ge=1)  # optimiser steps
    num_workers: int = Field(default=0, ge=0)  # data-loader processes (0: inline)
    # torch.compile the step: faster steps after a one-off compilation (about a
    # minute on 2 CPU cores), worth it for long runs, not for the default one.
    compile: bool = False
    progress: bool = True
    # auto: continue this configuration's checkpoint (a finished run is reused,
    # trained no further, and the log says so); never: train afresh, replacing it.
    resume: Literal["auto", "never"] = "auto"

    @model_validator(mode="after")
    def _schedule_covers_the_run(self) -> TrainCfg:
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ValueError(
                f"schedule_epochs ({self.schedule_epochs}) must be at least epochs "
                f"({self.epochs}), or null"
            )
        return self


def autocast(device: str) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA, nothing on CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def configure_optimizer(
    model: nn.Module, cfg: TrainCfg, fused: bool
) -> torch.optim.AdamW:
    """AdamW; decay only on weights of two or more dimensions."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    # fused kernels on CUDA; elsewhere the multi-tensor (foreach) path, a few per
    # cent faster than the per-tensor loop on 2 CPU cores.
    return torch.optim.AdamW(
        groups,
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=fused,
        foreach=None if fused else True,
    )


def lr_at(step: int, total: int, cfg: TrainCfg) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(total - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def move(batch: Any, device: str) -> Any:
    """Tensors (inside tuples, lists and dicts) onto ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move(v, device) for v in batch)
    return batch


def batch_len(batch: Any) -> int:
    """Examples in a batch (its first tensor's leading size)."""
    while isinstance(batch, list | tuple | dict):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(batch)


class CheckpointRefused(RuntimeError):
    """A checkpoint holds more than tensors and plain data; it is not loaded."""


class Tracker(Protocol):
    """Experiment tracking (``acula_pipeline.tracking.DVCLiveTracker``)."""

    def log_step(self, row: Mapping[str, Any]) -> None: ...

    def finish(self, curve: Sequence[Mapping[str, Any]]) -> None: ...


class Trainer:
    """Trains ``model``, whose ``forward(batch)`` returns ``{"loss": ..., terms}``."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainCfg,
        checkpoint_dir: str | Path,
        config: dict[str, Any],
        on_step: Callable[[int], None] | None = None,
        on_epoch: Callable[[int], bool | None] | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = dist_.init_distributed(cfg.device)
        if cfg.deterministic and self.device.startswith("cuda"):
            # cuBLAS is only deterministic with a fixed workspace (read when its
            # handle is made, so before the first matrix product of this process).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.rank, self.world = dist_.rank(), dist_.world_size()
        self.model = model.to(self.device)
        # Some parameters sit idle in some steps (an MAE's final norm while
        # pretraining, its decoder when λ_ssl = 0, wav2vec 2.0's layer drop).
        self.forward: nn.Module = (
            DistributedDataParallel(
                self.model,
                device_ids=[self.device] if self.device.startswith("cuda") else None,
                find_unused_parameters=True,
            )
            if self.world > 1
            else self.model
        )
        if cfg.compile:
            self.forward = torch.compile(self.forward)  # type: ignore[assignment]
        self.dir = Path(checkpoint_dir)
        self.config = config
        self.on_step = (
            on_step  # called after each optimiser step (tests interrupt here)
        )
        # called with the number of finished epochs after each one (tuning scores
        # the model here; an exception it raises, e.g. a pruned trial, ends fit;
        # early stopping returns True, which ends training there for good)
        self.on_epoch = on_epoch
        # logs each step as it is trained, and the whole curve at the end (rank 0)
        self.tracker = tracker if dist_.rank() == 0 else None
        self.opt = configure_optimizer(
            self.model, cfg, fused=self.device.startswith("cuda")
        )
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.curve: list[dict[str, float]] = []
        self.stopped = False  # ended early by ``on_epoch``; a resumed run stays ended
        # the epoch callback's own state (early stopping's best weights and losses),
        # saved and restored with the checkpoint
        self.extra: dict[str, Any] = {}

    # -- checkpoints

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "last.pt"

    def save_checkpoint(self) -> None:
        """Rank 0 writes; every rank waits until the file is complete."""
        if self.rank == 0:
            self._write_checkpoint()
        dist_.barrier()

    def _write_checkpoint(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all()
            if torch.cuda.is_available()
            else [],
            "curve": self.curve,
            "config": self.config,
            "stopped": self.stopped,
            "extra": self.extra,
        }
        # A temporary name of its own (two writers never share one), then an atomic
        # move: a kill never leaves half a file. The checkpoint it replaces is kept
        # as previous.pt, the fallback when last.pt cannot be read.
        fd, name = tempfile.mkstemp(dir=self.dir, prefix=".last.", suffix=".pt")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
            if self.checkpoint_path.exists():
                self.checkpoint_path.replace(self.previous_path)
            tmp.replace(self.checkpoint_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @property
    def previous_path(self) -> Path:
        return self.dir / "previous.pt"

    def _read_checkpoint(self, path: Path) -> dict[str, Any] | None:
        """A checkpoint's state, loaded without running code from it.

        ``weights_only``: tensors and plain Python data only; a file that holds
        anything else (a pickled object, as a crafted checkpoint would) is refused
        with its path named. A damaged file (truncated, empty) is set aside with a
        warning and None is returned.

        Raises:
            CheckpointRefused: The file holds objects that are not plain data.
        """
        try:
            # On the CPU: RNG states must stay CPU byte tensors; load_state_dict
            # copies weights and optimizer moments onto the parameters' device.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise CheckpointRefused(
                f"checkpoint {path} holds objects that are not tensors or plain data; "
                "refusing to load it (code could run from it): delete it to start "
                f"afresh ({str(exc).splitlines()[0][:160]})"
            ) from exc
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
            aside = path.with_suffix(".corrupt")
            log.warning(
                "Checkpoint %s is unreadable (%s); moved to %s",
                path,
                str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__,
                aside,
            )
            if self.rank == 0:
                path.replace(aside)
            return None
        if not isinstance(state, dict) or "config" not in state:
            raise CheckpointRefused(f"checkpoint {path} is not one of ours")
        return state

    def load_checkpoint(self) -> bool:
        if self.cfg.resume == "never":
            if self.checkpoint_path.exists() or self.previous_path.exists():
                log.info(
                    "train.resume = never: training afresh; the checkpoint in %s "
                    "will be replaced",
                    self.dir,
                )
            return False
        state = None
        for path in (self.checkpoint_path, self.previous_path):
            if path.exists():
                state = self._read_checkpoint(path)
                if state is not None:
                    break
        if state is None:
            return False
        if state["config"] != self.config:
            log.warning(
                "Checkpoint %s was made with another configuration; starting afresh",
                self.checkpoint_path,
            )
            return False
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.curve = state["curve"]
        self.stopped = bool(state.get("stopped", False))
        self.extra = state.get("extra", {})
        if self.stopped or self.epoch >= self.cfg.epochs:
            log.info(
                "Checkpoint %s holds a finished run of this configuration (%d "
                "epochs, step %d): its weights are reused and nothing is trained; "
                "set train.resume=never (e.g. --params=align.train.resume=never) to "
                "train afresh",
                path,
                self.epoch,
                self.step,
            )
        else:
            log.info("Resumed from %s at step %d", path, self.step)
        return True

    # -- the loop

    def fit(
        self, dataset: Dataset[Any], collate: Callable[[list[Any]], Any] | None = None
    ) -> list[dict[str, float]]:
        """Train for ``cfg.epochs`` epochs; returns the per-step curve."""
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(self.cfg.deterministic or before)
        try:
            return self._fit(dataset, collate)
        finally:
            torch.use_deterministic_algorithms(before)  # a process-wide switch

    def _fit(
        self, dataset: Dataset[Any], collate: Callable[[list[Any]], Any] | None
    ) -> list[dict[str, float]]:
        cfg = self.cfg
        if self.device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        n = len(dataset)  # type: ignore[arg-type]
        micro = math.ceil(math.ceil(n / self.world) / cfg.batch_size)
        per_epoch = math.ceil(micro / cfg.grad_accum)
        total = per_epoch * cfg.epochs
        horizon = per_epoch * (cfg.schedule_epochs or cfg.epochs)  # of the lr schedule
        if cfg.max_steps is not None:
            total, horizon = min(total, cfg.max_steps), min(horizon, cfg.max_steps)
        if not self.load_checkpoint():
            torch.manual_seed(cfg.seed + self.rank)  # ranks mask and drop differently
        bar = tqdm(
            total=total,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not cfg.progress or self.rank != 0,
        )
        t0, seen = time.perf_counter(), 0
        while self.epoch < cfg.epochs and not self.stopped:
            if self._capped():  # reached by the last, partial step of an epoch
                self._stop_at_cap()
                break
            self.model.train()  # an epoch callback may have evaluated the model
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(cfg.seed + self.epoch)
            )
            order = dist_.shard(order, self.rank, self.world)
            # Resume inside an epoch: skip the micro-batches already trained on.
            start = self.batch_in_epoch * cfg.grad_accum * cfg.batch_size
            loader = DataLoader(
                Subset(dataset, order[start:].tolist()),
                batch_size=cfg.batch_size,
                shuffle=False,
                collate_fn=collate,
                num_workers=cfg.num_workers,
                pin_memory=self.device.startswith("cuda"),
                # Its own generator: creating a loader must not draw from the global
                # RNG, or a resumed run would mask and drop out differently.
                generator=torch.Generator().manual_seed(cfg.seed),
            )
            acc: dict[str, float] = {}
            k = 0
            left = len(loader)
            for batch in loader:
                left -= 1
                k += 1
                # DDP: all-reduce gradients only on the last micro-batch of a step.
                sync = k % cfg.grad_accum == 0 or left == 0
                no_sync = getattr(self.forward, "no_sync", None)
                with nullcontext() if sync or no_sync is None else no_sync():
                    with autocast(self.device):
                        terms = self.forward(move(batch, self.device))
                    (terms["loss"] / cfg.grad_accum).backward()
                for name, v in terms.items():
                    acc[name] = acc.get(name, 0.0) + float(v.detach()) / cfg.grad_accum
                seen += batch_len(batch) * self.world
                if k % cfg.grad_accum:
                    continue
                self._optimizer_step(horizon, acc, seen / (time.perf_counter() - t0))
                acc, k = {}, 0
                bar.update(1)
                bar.set_postfix(loss=f"{self.curve[-1]['loss']:.4f}", refresh=False)
                if self.on_step:
                    self.on_step(self.step)
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    break
            if self._capped():
                self._stop_at_cap()
                break
            if k:  # a last, partial accumulation
                self._optimizer_step(
                    horizon,
                    {n_: v * cfg.grad_accum / k for n_, v in acc.items()},
                    seen / (time.perf_counter() - t0),
                )
                bar.update(1)
            self.epoch += 1
            self.batch_in_epoch = 0
            if self.on_epoch and self.on_epoch(self.epoch):
                self.stopped = True
                log.info("Training stopped early after epoch %d", self.epoch)
        bar.close()
        self.save_checkpoint()
        if self.tracker is not None:
            self.tracker.finish(self.curve)
        return self.curve

    def _capped(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def _stop_at_cap(self) -> None:
        self.stopped = True
        log.info(
            "Training stopped at train.max_steps = %d (in epoch %d of %d)",
            self.step,
            self.epoch + 1,
            self.cfg.epochs,
        )

    def _optimizer_step(
        self, horizon: int, terms: dict[str, float], rate: float
    ) -> None:
        cfg = self.cfg
        terms = dist_.mean_over_ranks(terms, self.device)  # every rank sees the same
        if not math.isfinite(terms["loss"]):
            raise NonFiniteLossError(
                f"loss is {terms['loss']} at optimiser step {self.step + 1} "
                f"(epoch {self.epoch + 1}); terms "
                + ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
                + " (lower train.lr, or check the inputs)"
            )
        lr = lr_at(self.step, horizon, cfg)
        for g in self.opt.param_groups:
            g["lr"] = lr
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        for m in self.model.modules():
            clamp_temperatures(m)
        self.step += 1
        self.batch_in_epoch += 1
        self.curve.append(
            {
                "step": self.step,
                "epoch": self.epoch,
                "lr": lr,
                **terms,
                "clips_per_s": rate,
            }
        )
        if self.tracker is not None:
            self.tracker.log_step(self.curve[-1])
        if self.step % cfg.checkpoint_every == 0:
            self.save_checkpoint()
