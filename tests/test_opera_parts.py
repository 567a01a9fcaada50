"""Issue 22's first parts: OPERA checkpoints read without running code from them,
and the COLA objective OPERA-CT/CE were pretrained with."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from acula_pipeline.models.cola import ColaHead, cola_loss
from acula_pipeline.models.lightning import (
    UnsafeCheckpoint,
    lightning_state_dict,
    read_checkpoint,
)


def _lightning_like(state: dict, hparams) -> dict:
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": state,
        "hyper_parameters": hparams,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}],
        "lr_schedulers": [],
        "callbacks": {"ModelCheckpoint{...}": {"best_model_score": torch.tensor(0.3)}},
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4}}}},
    }


def test_a_lightning_checkpoint_is_read_as_plain_data(tmp_path, monkeypatch):
    """Lightning pickles its hyper-parameters as an AttributeDict: mapped by name to
    a plain dict, without importing (or having) Lightning."""
    fake = types.ModuleType("lightning_fabric.utilities.data")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = "lightning_fabric.utilities.data"
    AttributeDict.__qualname__ = "AttributeDict"
    fake.AttributeDict = AttributeDict
    for name in ("lightning_fabric", "lightning_fabric.utilities"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "lightning_fabric.utilities.data", fake)
    state = {
        "encoder.cnn1.weight": torch.randn(3, 1, 3, 3),
        "g.weight": torch.randn(512, 1280),
    }
    path = tmp_path / "encoder-operaCE.ckpt"
    torch.save(_lightning_like(state, AttributeDict(encoder="efficientnet")), path)
    monkeypatch.delitem(sys.modules, "lightning_fabric.utilities.data")
    ckpt = read_checkpoint(path)
    assert ckpt["hyper_parameters"] == {"encoder": "efficientnet"}
    weights = lightning_state_dict(path, prefix="encoder.")
    assert list(weights) == ["cnn1.weight"]
    assert torch.equal(weights["cnn1.weight"], state["encoder.cnn1.weight"])
    with pytest.raises(UnsafeCheckpoint, match="no weights under 'student.'"):
        lightning_state_dict(path, prefix="student.")
    odd = tmp_path / "odd.ckpt"
    torch.save({"state_dict": {"g.weight": torch.zeros(2), "g.note": "x"}}, odd)
    with pytest.raises(UnsafeCheckpoint, match="odd.ckpt.*not tensors: g.note"):
        lightning_state_dict(odd)


class Payload:
    """An object a pickle would rebuild by calling code."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_carrying_an_object_is_refused_with_its_path(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Payload()}, path)
    with pytest.raises(UnsafeCheckpoint) as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and "not tensors or plain data" in str(err.value)
    assert "this must never run" not in capsys.readouterr().out
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UnsafeCheckpoint, match="junk.ckpt"):
        read_checkpoint(tmp_path / "junk.ckpt")
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        read_checkpoint(tmp_path / "nope.ckpt")


def test_cola_loss_is_the_cross_entropy_of_the_bilinear_similarities():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    logits = z1 @ z2.t()
    by_hand = -torch.stack(
        [logits[i, i] - torch.logsumexp(logits[i], dim=0) for i in range(6)]
    ).mean()
    assert torch.allclose(cola_loss(z1, z2), by_hand, atol=1e-6)
    # matched pairs far apart from the rest: near zero; shuffled: large
    anchors = 10 * torch.eye(6, 8)
    assert cola_loss(anchors, anchors) < 1e-3
    assert cola_loss(anchors, anchors[torch.tensor([1, 0, 3, 2, 5, 4])]) > 10
    with pytest.raises(ValueError, match="two \\(batch, dim\\) views"):
        cola_loss(z1, z2[:3])


def test_cola_head_has_operas_layout_and_learns():
    head = ColaHead(1280, 512)
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        "g.weight": (512, 1280),
        "g.bias": (512,),
        "layer_norm.weight": (512,),
        "layer_norm.bias": (512,),
        "linear.weight": (512, 512),
    }
    torch.manual_seed(0)
    small = ColaHead(16, 8, dropout=0.0)
    views = torch.randn(12, 16)
    noisy = views + 0.05 * torch.randn(12, 16)
    opt = torch.optim.Adam(small.parameters(), lr=1e-2)
    first = float(small(views, noisy).detach())
    for _ in range(100):
        opt.zero_grad()
        loss = small(views, noisy)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 4
    # the same as OPERA's forward: linear(project(h1)) @ project(h2)ᵀ, then CE
    small.eval()
    p1, p2 = small.linear(small.project(views)), small.project(noisy)
    want = F.cross_entropy(p1 @ p2.t(), torch.arange(12))
    assert torch.allclose(small(views, noisy), want)
