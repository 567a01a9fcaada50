"""OPERA-CT, -CE and -GT as students (issue 22): OPERA's own code's numbers, the
published checkpoint layout, safe loading, ``acula convert`` and alignment.

``data/opera_reference/reference.json`` holds what OPERA's code (its
``models_cola.Cola`` and ``models_mae.mae_vit_small``) computes on fixed weights and
inputs (``make_reference.py`` wrote it; ``weights.py`` fills the weights from each
published key's name): the published key names, the embeddings and the SSL loss.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from acula_pipeline.commands import main as acula
from acula_pipeline.evaluation.run import artifact_key, baseline_of
from acula_pipeline.hub import load_model_folder
from acula_pipeline.models import build_encoder, load_encoder
from acula_pipeline.models.lightning import UnsafeCheckpoint
from acula_pipeline.models.opera import (
    LAYOUTS,
    LayoutMismatch,
    ours_to_published,
    published_to_ours,
)
from acula_pipeline.training.stages import (
    AlignParams,
    EncoderParams,
    align,
    embed_reports,
    start_artifact,
)

from .tiny_audio import make_store

REF_DIR = Path(__file__).parent / "data" / "opera_reference"
sys.path.insert(0, str(REF_DIR))
from weights import fill_published, inputs  # noqa: E402

REFERENCE = json.loads((REF_DIR / "reference.json").read_text())
FAMILIES = ["opera_ce", "opera_ct", "opera_gt"]
# The published OPERA-CT modules our embedding never runs (the waveform front end,
# the AudioSet classifier), with their published shapes.
CT_UNUSED = {
    "spectrogram_extractor.stft.conv_real.weight": (513, 1, 1024),
    "spectrogram_extractor.stft.conv_imag.weight": (513, 1, 1024),
    "logmel_extractor.melW": (513, 64),
    "tscam_conv.weight": (527, 768, 2, 3),
    "tscam_conv.bias": (527,),
    "head.weight": (527, 527),
    "head.bias": (527,),
}


def published_checkpoint(name: str, model: torch.nn.Module) -> dict:
    """``model``'s weights as OPERA's Lightning file holds them."""
    state = ours_to_published(name, model.state_dict())
    if name == "opera_ct":
        prefix = "encoder.encoder.htsat."
        state |= {prefix + k: torch.randn(s) for k, s in CT_UNUSED.items()}
    return {
        "epoch": 57,
        "global_step": 9000,
        "pytorch-lightning_version": "2.2.0.post0",
        "state_dict": state,
        "hyper_parameters": {"encoder": name},
        "optimizer_states": [],
    }


def _embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.encode_audio(x)


@pytest.mark.parametrize("name", FAMILIES)
def test_our_models_compute_what_operas_code_computes(name):
    """Same published keys, same embeddings and SSL loss as OPERA's own code."""
    ref = REFERENCE[name]
    model = build_encoder({"name": name})
    published = ours_to_published(name, model.state_dict())
    unused = [k for k in ref["keys"] if k.startswith(LAYOUTS[name].unused or ("\0",))]
    assert sorted(published) == sorted(set(ref["keys"]) - set(unused))
    assert len(unused) == (7 if name == "opera_ct" else 0)
    published = {k: v.clone() for k, v in published.items()}
    fill_published(published)
    state, _ = published_to_ours(name, published, "reference")
    model.load_state_dict(state)
    x, v1, v2 = inputs()
    got = _embed(model, x)
    want = torch.tensor(ref["embedding"])
    assert got.shape == want.shape == (2, model.embed_dim)
    assert (want[0] - want[1]).abs().max() > 1e-4  # the embedding hears its input
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        if name == "opera_gt":
            torch.manual_seed(5)  # OPERA's masks came from this seed's first draw
            loss = model.ssl_loss(x)
        else:
            loss = model.cola(model.encode_audio(v1), model.encode_audio(v2))
    assert float(loss) == pytest.approx(ref["ssl_loss"], rel=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_published_checkpoint_loads_converts_and_round_trips(name, tmp_path):
    """Lightning file in the published layout → registry (every key consumed) →
    ``acula convert`` folder → registry and ``load_encoder``: one embedding."""
    torch.manual_seed(3)
    source = build_encoder({"name": name})
    ckpt = tmp_path / f"encoder-{LAYOUTS[name].published}.ckpt"
    torch.save(published_checkpoint(name, source), ckpt)
    x = inputs()[0]
    want = _embed(source, x)

    loaded = build_encoder({"name": name, "path": str(ckpt)})
    n_published = len(torch.load(ckpt, weights_only=True)["state_dict"])
    assert loaded.loaded["tensors"] + loaded.loaded["unused"] == n_published
    assert loaded.loaded["tensors"] == len(source.state_dict())
    torch.testing.assert_close(_embed(loaded, x), want, rtol=0, atol=0)

    folder = tmp_path / "converted"
    out = CliRunner().invoke(acula, ["convert", str(ckpt), "-o", str(folder)])
    assert out.exit_code == 0, out.output
    assert f"{name}," in out.output
    assert {p.name for p in folder.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "README.md",
    }
    from_folder = build_encoder({"name": name, "path": str(folder)})
    torch.testing.assert_close(_embed(from_folder, x), want, rtol=0, atol=0)
    artifact = load_model_folder(folder)
    assert artifact["config"]["kind"] == "converted"
    assert artifact["config"]["encoder"] == {"name": name, **from_folder._options()}
    torch.testing.assert_close(_embed(load_encoder(artifact), x), want, rtol=0, atol=0)


def test_a_checkpoint_of_another_layout_is_refused_with_the_keys_named(tmp_path):
    source = build_encoder({"name": "opera_ce"})
    ckpt = published_checkpoint("opera_ce", source)

    def refused(state: dict, name: str = "opera_ce") -> str:
        path = tmp_path / "bad.ckpt"
        torch.save(ckpt | {"state_dict": state}, path)
        with pytest.raises(LayoutMismatch) as err:
            build_encoder({"name": name, "path": str(path)})
        assert "bad.ckpt" in str(err.value)
        return str(err.value)

    state = dict(ckpt["state_dict"])
    missing = dict(state)
    del missing["g.weight"]
    assert "1 missing (e.g. cola.g.weight)" in refused(missing)
    assert "not in the published operaCE layout, e.g. encoder.extra" in refused(
        state | {"encoder.extra": torch.zeros(1)}
    )
    wrong = state | {"g.weight": torch.zeros(512, 100)}
    assert "of another shape (e.g. cola.g.weight: (512, 100) here" in refused(wrong)
    assert "operaGT layout" in refused(state, "opera_gt")

    runner = CliRunner()
    path = tmp_path / "unknown.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    out = runner.invoke(acula, ["convert", str(path), "-o", str(tmp_path / "o")])
    assert out.exit_code == 2
    assert "none of OPERA-CT, -CE or -GT's" in out.output
    assert not (tmp_path / "o").exists()


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_carrying_an_object_is_refused_by_the_registry_and_convert(
    tmp_path, capsys
):
    source = build_encoder({"name": "opera_ce"})
    path = tmp_path / "encoder-operaCE.ckpt"
    torch.save(published_checkpoint("opera_ce", source) | {"x": Payload()}, path)
    with pytest.raises(UnsafeCheckpoint, match=r"encoder-operaCE\.ckpt: refused"):
        build_encoder({"name": "opera_ce", "path": str(path)})
    out = CliRunner().invoke(acula, ["convert", str(path), "-o", str(tmp_path / "o")])
    assert out.exit_code == 2
    assert "encoder-operaCE.ckpt: refused" in out.output
    assert "this must never run" not in capsys.readouterr().out + out.output


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_trains_its_own_ssl_term(name):
    """COLA for CT/CE (two crops, OPERA's head), masked reconstruction for GT:
    finite, and the gradient reaches the encoder and the SSL head or decoder."""
    torch.manual_seed(0)
    model = build_encoder({"name": name})
    model.train()
    x = inputs()[1].repeat(1, 2, 1)  # 4 clips of 256 frames
    loss = model.ssl_loss(x)
    assert torch.isfinite(loss)
    loss.backward()
    first = next(p for p in model.parameters() if p.requires_grad)
    head_name = "net.decoder_pred" if name == "opera_gt" else "cola.linear"
    head = model.get_submodule(head_name).weight
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert head.grad is not None and head.grad.abs().sum() > 0
    if name != "opera_gt":
        v1, v2 = model._two_crops(x, 128)
        assert v1.shape == v2.shape == (4, 128, 64)
        # each crop is a window of its own clip
        row = x[0].unfold(0, 128, 1).permute(0, 2, 1)
        assert any(torch.equal(v1[0], w) for w in row)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    store, segments, reports = make_store(root / "features", waveforms=False)
    return store, segments, reports, embed_reports(reports, AlignParams(), root / "t")


@pytest.mark.parametrize("name", FAMILIES)
def test_align_starts_from_the_checkpoint_and_its_baseline_is_that_start(
    name, corpus, tmp_path
):
    store, segments, reports, emb = corpus
    torch.manual_seed(4)
    source = build_encoder({"name": name})
    ckpt = tmp_path / "encoder.ckpt"
    torch.save(published_checkpoint(name, source), ckpt)
    params = AlignParams(
        encoder=EncoderParams(name=name, path=str(ckpt)),
        train={"epochs": 1, "batch_size": 4, "progress": False, "warmup_steps": 1},
    )
    artifact, curve = align(store, segments, reports, emb, None, params, tmp_path / "c")
    assert len(curve) == 2 and curve["ssl"].gt(0).all()
    assert artifact["config"]["encoder"]["name"] == name
    assert "path" not in artifact["config"]["encoder"]  # the folder holds the weights
    assert artifact["config"]["encoder_source"]  # the checkpoint's content
    start = start_artifact(params.encoder, store, params.train.seed)
    x = inputs()[0]
    torch.testing.assert_close(
        _embed(load_encoder(start), x), _embed(source, x), rtol=0, atol=0
    )
    aligned = load_encoder(artifact)
    assert not torch.equal(_embed(aligned, x), _embed(source, x))
    # evaluate compares the aligned model with that start, not with a stale
    # pretrain output (kedro run --pipelines=align,evaluate runs no pretrain)
    stale = {"state_dict": {}, "config": {"kind": "pretrain"}}
    rebuilt = baseline_of(artifact, stale, store)
    assert rebuilt["config"]["kind"] == "start"
    assert artifact_key(rebuilt) == artifact_key(start)
    assert baseline_of(artifact, start, store) is start
