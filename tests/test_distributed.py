"""Data-parallel training: two gloo ranks under torchrun on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acula_pipeline.training import distributed as dist_

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_shard_splits_each_global_batch_across_ranks():
    order = torch.arange(10)
    shards = [dist_.shard(order, r, 2) for r in range(2)]
    assert shards[0].tolist() == [0, 2, 4, 6, 8] and shards[1].tolist() == [
        1,
        3,
        5,
        7,
        9,
    ]
    # batch k of every rank together is global batch k (here per-rank batch 2)
    assert sorted(shards[0][:2].tolist() + shards[1][:2].tolist()) == [0, 1, 2, 3]
    padded = [dist_.shard(torch.arange(5), r, 2) for r in range(2)]
    assert [len(p) for p in padded] == [3, 3]  # equal steps on every rank


def test_single_process_is_not_distributed():
    assert not dist_.is_distributed() and dist_.world_size() == 1
    assert dist_.init_distributed("cpu") == "cpu"
    x = torch.ones(3, 2)
    assert dist_.gather_global(x) is x


@pytest.mark.slow
def test_two_rank_torchrun_matches_single_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    ddp.mkdir()
    single.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    subprocess.run(
        [*cmd, "--nproc_per_node=2", str(WORKER), str(ddp), "4"],
        env=env,
        check=True,
        timeout=300,
    )
    subprocess.run(
        [sys.executable, str(WORKER), str(single), "8"],
        env=env,
        check=True,
        timeout=300,
    )
    for case in ("clip", "cka", "joint"):
        r0 = torch.load(ddp / f"{case}_rank0.pt")
        r1 = torch.load(ddp / f"{case}_rank1.pt")
        assert r0["world"] == r1["world"] == 2
        assert len(r0["curve"]) == 4  # 16 clips, global batch 8, 2 epochs
        for k, v in r0["state"].items():
            assert torch.equal(v, r1["state"][k]), (case, k)  # identical on both ranks
        # the logged loss is the global one on both ranks
        assert r0["curve"][-1]["loss"] == r1["curve"][-1]["loss"]
        if case == "joint":  # random masks and dropout: no single-process twin
            continue
        ref = torch.load(single / f"{case}_rank0.pt")
        assert ref["world"] == 1
        assert r0["grads"].keys() == ref["grads"].keys()
        # The global-batch gradient, not 1/world of it: equal up to float32
        # summation order (tensors whose true gradient is 0, e.g. a bias CKA's
        # centring removes, are held to the scale of the whole gradient).
        total = torch.cat([g.flatten() for g in ref["grads"].values()]).norm()
        for k, g in ref["grads"].items():
            err = (r0["grads"][k] - g).norm()
            assert err <= 1e-3 * g.norm() + 1e-6 * total, (case, k, float(err))
        # Weights after 4 AdamW steps. Adam turns gradient entries that are zero up
        # to rounding (a bias CKA's centring removes, a head bias with a tiny
        # gradient) into ±lr steps of random sign, so single entries may differ by a
        # step; the weight matrices' displacement from the initial weights must
        # agree, tensor by tensor, and the whole model's too.
        diff = moved = 0.0
        for k, v in ref["state"].items():
            d = float((r0["state"][k] - v).norm() ** 2)
            m = float((v - ref["init"][k]).norm() ** 2)
            diff, moved = diff + d, moved + m
            if v.dim() >= 2:
                assert d**0.5 <= 0.05 * m**0.5 + 1e-6, (case, k)
        assert diff**0.5 <= 0.05 * moved**0.5, case
    # rank 0 alone wrote the checkpoint
    assert (ddp / "ckpt_clip" / "last.pt").exists()
