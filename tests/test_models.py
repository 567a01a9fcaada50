"""Losses against plain references (forward and gradients); the MAE-ViT; teachers."""

from __future__ import annotations

import math

import pytest
import torch

from acula_pipeline.models import LOSSES, MAEViT, MAEViTCfg, ProjectionHead
from acula_pipeline.models.losses import clamp_temperatures
from acula_pipeline.models.teachers import TEACHERS

from .tiny_lm import tiny_bert, tiny_causal_lm


def _inputs(n=12, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    return a, t


def ref_cka_feature(a, t):
    x = a - a.sum(0) / len(a)
    y = t - t.sum(0) / len(t)
    gx = torch.einsum("ni,nj->ij", x, x)
    gy = torch.einsum("ni,nj->ij", y, y)
    return 1 - (gx * gy).sum() / torch.sqrt((gx * gx).sum() * (gy * gy).sum())


def ref_cka_linear(a, t):
    """Sample-space HSIC with an explicit centring matrix."""
    n = len(a)
    h = torch.eye(n, dtype=a.dtype) - torch.ones(n, n, dtype=a.dtype) / n
    k, l_ = a @ a.T, t @ t.T

    def hsic(p, q):
        return torch.trace(p @ h @ q @ h)

    return 1 - hsic(k, l_) / torch.sqrt(hsic(k, k) * hsic(l_, l_))


def ref_clip(a, t, log_scale):
    a = a / a.norm(dim=1, keepdim=True)
    t = t / t.norm(dim=1, keepdim=True)
    s = log_scale.exp()
    n = len(a)
    total = 0
    for i in range(n):
        row = torch.stack([s * a[i] @ t[j] for j in range(n)])
        col = torch.stack([s * a[j] @ t[i] for j in range(n)])
        total = (
            total
            - (row[i] - torch.logsumexp(row, 0))
            - (col[i] - torch.logsumexp(col, 0))
        )
    return total / (2 * n)


def ref_siglip(a, t, log_scale, bias):
    a = a / a.norm(dim=1, keepdim=True)
    t = t / t.norm(dim=1, keepdim=True)
    n = len(a)
    total = 0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            logit = log_scale.exp() * a[i] @ t[j] + bias
            total = total - torch.nn.functional.logsigmoid(z * logit)
    return total / n


def _grads(fn, a, t, params=()):
    loss = fn(a, t)
    grads = torch.autograd.grad(loss, [a, t, *params])
    return loss.detach(), grads


@pytest.mark.parametrize("name", ["cka_feature", "cka_linear"])
def test_cka_losses_match_reference(name):
    a, t = _inputs()
    ref = {"cka_feature": ref_cka_feature, "cka_linear": ref_cka_linear}[name]
    loss = LOSSES[name]()
    # The module computes in float32; compare against the float64 reference.
    l1, g1 = _grads(lambda x, y: loss(x, y), a, t)
    l2, g2 = _grads(ref, a, t)
    assert torch.allclose(l1.double(), l2, atol=1e-5)
    for x, y in zip(g1, g2, strict=True):
        assert torch.allclose(x.double(), y, atol=1e-5)
    assert 0 <= float(l1) <= 1
    assert float(loss(a, a).detach()) == pytest.approx(0.0, abs=1e-5)  # identical


def test_clip_matches_reference():
    a, t = _inputs()
    loss = LOSSES["clip"]()
    assert loss.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    l1, g1 = _grads(loss, a, t, [loss.logit_scale])
    l2, g2 = _grads(
        lambda x, y: ref_clip(x, y, loss.logit_scale), a, t, [loss.logit_scale]
    )
    assert torch.allclose(l1, l2.float(), atol=1e-5)
    for x, y in zip(g1, g2, strict=True):
        assert torch.allclose(x.double(), y.double(), atol=1e-5)


def test_siglip_matches_reference():
    a, t = _inputs()
    loss = LOSSES["siglip"]()
    assert loss.logit_scale.exp().item() == pytest.approx(10.0)
    assert loss.logit_bias.item() == -10.0
    params = [loss.logit_scale, loss.logit_bias]
    l1, g1 = _grads(loss, a, t, params)
    l2, g2 = _grads(lambda x, y: ref_siglip(x, y, *params), a, t, params)
    assert torch.allclose(l1, l2.float(), atol=1e-5)
    for x, y in zip(g1, g2, strict=True):
        assert torch.allclose(x.double(), y.double(), atol=1e-4)


def test_temperature_is_capped():
    loss = LOSSES["clip"]()
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)
    clamp_temperatures(loss)
    assert loss.logit_scale.item() == pytest.approx(math.log(100))


def test_cka_feature_needs_equal_widths():
    with pytest.raises(ValueError, match="equal widths"):
        LOSSES["cka_feature"]()(torch.randn(4, 3), torch.randn(4, 5))


def test_mae_vit_shapes_and_masked_loss():
    torch.manual_seed(0)
    cfg = MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2)
    model = MAEViT(cfg)
    x = torch.rand(3, 256, 64)
    assert cfg.n_patches == 64
    assert model.patchify(x).shape == (3, 64, 256)
    # patchify is a pure rearrangement
    assert torch.equal(model.patchify(x)[0, 0], x[0, :16, :16].reshape(-1))
    emb = model.encode_audio(x)
    assert emb.shape == (3, 32)
    assert torch.allclose(
        model.encode_audio(x, normalize=True).norm(dim=1), torch.ones(3)
    )
    g = torch.Generator().manual_seed(1)
    loss = model.ssl_loss(x, generator=g)
    loss.backward()
    assert loss.item() > 0 and model.patch_embed.weight.grad is not None
    head = ProjectionHead(32)
    assert head(emb).shape == (3, 512)


def zero_decoder_loss(model: MAEViT) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The model's SSL loss on seeded clips with a decoder that predicts zeros; also
    the clips and which patches were masked (the same seed redrawn)."""

    class Zeros(torch.nn.Module):
        def forward(self, h):
            return torch.zeros(*h.shape[:2], 256)

    model.dec_out = Zeros()
    x = torch.rand(2, 256, 64)
    loss = model.ssl_loss(x, generator=torch.Generator().manual_seed(3))
    noise = torch.rand(2, 64, generator=torch.Generator().manual_seed(3))
    visible = noise.argsort(dim=1)[:, : round(64 * 0.3)]
    masked = torch.ones(2, 64, dtype=torch.bool)
    for b in range(2):
        masked[b, visible[b]] = False
    return loss, x, masked


def test_mae_loss_is_mse_on_masked_patches_only():
    """With a decoder that predicts zeros, the loss is the mean square of the masked
    patches of the target, and the visible ones do not count."""
    torch.manual_seed(0)
    model = MAEViT(MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2))
    loss, x, masked = zero_decoder_loss(model)
    expected = (model.patchify(x) ** 2).mean(-1)[masked].mean()
    assert masked.sum() == 2 * (64 - 19)
    assert torch.allclose(loss, expected, atol=1e-6)


def test_mae_normalised_targets():
    """norm_target: each patch standardised by its own statistics (affine changes of
    a patch leave its target alone; a flat patch's target is zero), and with a
    decoder that predicts zeros the loss is the masked patches' mean square of
    that target."""
    torch.manual_seed(0)
    cfg = MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2)
    model = MAEViT(MAEViTCfg(**{**cfg.__dict__, "norm_target": True}))
    p = torch.rand(2, 64, 256)
    t = model.reconstruction_target(p)
    assert torch.allclose(t.mean(-1), torch.zeros(2, 64), atol=1e-5)
    assert torch.allclose(model.reconstruction_target(3 * p + 1), t, atol=1e-4)
    flat = torch.full((1, 64, 256), 0.25)
    assert torch.equal(model.reconstruction_target(flat), torch.zeros(1, 64, 256))
    assert torch.equal(MAEViT(cfg).reconstruction_target(p), p)  # off: raw patches

    loss, x, masked = zero_decoder_loss(model)
    target = model.reconstruction_target(model.patchify(x))
    assert torch.allclose(loss, (target**2).mean(-1)[masked].mean(), atol=1e-5)


def test_mae_signal_only_masks_and_scores_patches_with_signal():
    """signal_only: flat patches (an empty band) are never shown to the encoder while
    enough others carry signal, and only masked patches with signal are scored; a
    clip with no signal at all gives a zero loss, not NaN."""
    torch.manual_seed(0)
    cfg = MAEViTCfg(
        dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2, signal_only=True
    )
    model = MAEViT(cfg)
    x = torch.rand(2, 256, 64)
    x[:, :, 48:] = 0.0  # the top mel-patch column is empty: 16 of 64 patches flat
    carries = model.carries_signal(model.patchify(x))
    assert carries.sum().item() == 2 * 48
    assert not carries.view(2, 16, 4)[:, :, 3].any()

    seen = []
    model.encoder.register_forward_hook(lambda m, i, o: seen.append(i[0]))

    class Zeros(torch.nn.Module):
        def forward(self, h):
            return torch.zeros(*h.shape[:2], 256)

    model.dec_out = Zeros()
    loss = model.ssl_loss(x, generator=torch.Generator().manual_seed(3))
    noise = torch.rand(2, 64, generator=torch.Generator().manual_seed(3))
    noise = noise + 2.0 * (~carries)
    visible = noise.argsort(dim=1)[:, : round(48 * 0.3)]
    assert carries.gather(1, visible).all()  # 14 visible, all with signal
    assert seen[0].shape[1] == 14  # mask_ratio 0.7 of the 48 with signal
    scored = carries.clone()
    for b in range(2):
        scored[b, visible[b]] = False
    assert scored.sum() == 2 * (48 - 14)
    expected = (model.patchify(x) ** 2).mean(-1)[scored].mean()
    assert torch.allclose(loss, expected, atol=1e-6)

    silent = torch.zeros(1, 256, 64, requires_grad=True)
    assert model.ssl_loss(silent).item() == 0.0
    off = MAEViT(MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2))
    assert off.carries_signal(model.patchify(x)) is None


def test_default_sentence_teacher_loads_offline():
    teacher = TEACHERS["sentence_encoder"]()
    assert teacher.dim == 384
    e = teacher.encode(
        [
            "Crackles are heard in this respiratory cycle.",
            "Crackles are present during this breath cycle.",
            "The participant is COVID-19 negative and healthy.",
        ]
    )
    assert e.shape == (3, 384)
    cos = torch.nn.functional.cosine_similarity
    assert cos(e[0], e[1], dim=0) > cos(e[0], e[2], dim=0)


def test_hf_causal_lm_teacher_reads_width_from_config(tmp_path):
    path = tiny_causal_lm(tmp_path / "lm", hidden=64, layers=1)
    teacher = TEACHERS["hf_causal_lm"](path)
    assert teacher.dim == 64
    e = teacher.encode(["a short report", "a much longer report with more words in it"])
    assert e.shape == (2, 64) and torch.isfinite(e).all()


def test_hf_encoder_teacher(tmp_path):
    path = tiny_bert(tmp_path / "bert", hidden=48)
    teacher = TEACHERS["hf_encoder"](path)
    assert teacher.dim == 48
    assert teacher.encode(["one", "two words"]).shape == (2, 48)


def test_mae_vit_under_bf16_autocast():
    """The GPU path (bf16 autocast) on CPU: the decoder's fp32 mask token must follow
    the bf16 activations (this failed on an H200 before it was fixed)."""
    model = MAEViT(MAEViTCfg(dim=32, depth=1, heads=2, decoder_dim=16, decoder_heads=2))
    x = torch.rand(2, 256, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.ssl_loss(x)
        emb = model.encode_audio(x)
    loss.backward()
    assert torch.isfinite(loss) and emb.shape == (2, 32)
