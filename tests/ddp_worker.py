"""Run by ``torchrun`` in test_distributed.py: trains tiny objectives, saves weights.

``python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_worker.py OUT``
writes ``OUT/<case>_rank<r>.pt``; without torchrun it is the single-process
reference, trained on the combined batch (``--batch`` twice the per-rank batch).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acula_pipeline.models import HeadCfg, MAEViT, MAEViTCfg  # noqa: E402
from acula_pipeline.training import AlignObjective, TrainCfg, Trainer  # noqa: E402
from acula_pipeline.training.distributed import world_size  # noqa: E402

TINY = MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2)
CASES = {
    # name: (loss, lambda_ssl, head dropout); the first two are deterministic, so a
    # single process on the combined batch must match; the last one is random.
    "clip": ("clip", 0.0, 0.0),
    "cka": ("cka_feature", 0.0, 0.0),
    "joint": ("cka_feature", 1.0, 0.2),
}


def data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(
        torch.rand(16, 256, 64, generator=g), torch.randn(16, 24, generator=g)
    )


def main(out: Path, batch: int) -> None:
    rank = int(os.environ.get("RANK", "0"))
    for name, (loss, lambda_ssl, dropout) in CASES.items():
        torch.manual_seed(0)
        model = AlignObjective(
            MAEViT(TINY),
            teacher_dim=24,
            loss=loss,
            head=HeadCfg(hidden=32, out=16, dropout=dropout),
            lambda_ssl=lambda_ssl,
        )
        cfg = TrainCfg(
            epochs=2, batch_size=batch, lr=1e-3, warmup_steps=1, progress=False
        )
        init = {k: v.clone() for k, v in model.state_dict().items()}
        trainer = Trainer(model, cfg, out / f"ckpt_{name}", {"case": name})
        # Gradients of one step on the first global batch (8 clips), through the
        # DDP wrapper: Adam would hide a wrongly scaled gradient, these do not.
        x, t = data()[: 8 * 1]
        world = world_size()
        terms = trainer.forward((x[rank::world], t[rank::world]))
        terms["loss"].backward()
        grads = {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }
        model.zero_grad(set_to_none=True)
        curve = trainer.fit(data())
        torch.save(
            {
                "state": model.state_dict(),
                "init": init,
                "grads": grads,
                "curve": curve,
                "world": trainer.world,
            },
            out / f"{name}_rank{rank}.pt",
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
