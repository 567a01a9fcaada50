"""Feature shards: values, shard boundaries, the memory-mapped store, workers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from acula_pipeline.audio.features import (
    FeatureStore,
    clip_features,
    iter_feature_shards,
    recording_clips,
    write_feature_store,
)
from acula_pipeline.audio.frontend import FrontendCfg, resample


@pytest.fixture()
def two_files(tmp_path):
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, 0.1 * rng.standard_normal(4000 * 20), 4000, subtype="PCM_16")
    sf.write(b, 0.1 * rng.standard_normal(44100 * 5), 44100, subtype="PCM_24")
    seg = pd.DataFrame(
        {
            "segment_id": ["a#0", "a#1", "a#2", "b#0"],
            "recording_id": ["a", "a", "a", "b"],
            "start_s": [0.0, 4.0, 8.0, 0.0],
            "end_s": [8.19, 12.19, 16.19, 5.0],
        }
    )
    return seg, {"a": str(a), "b": str(b)}


def test_clips_match_a_direct_computation(two_files):
    seg, paths = two_files
    cfg = FrontendCfg()
    clips = recording_clips(paths["a"], [(4.0, 12.19)], cfg, "zeros")
    x, sr = sf.read(paths["a"], dtype="float32")
    direct = resample(torch.from_numpy(x), sr, 16000).numpy()[
        64000 : 64000 + cfg.clip_samples
    ]
    assert np.allclose(clips[0], direct, atol=1e-6)
    short = recording_clips(paths["b"], [(0.0, 5.0)], cfg, "zeros")
    assert short.shape == (1, cfg.clip_samples) and (short[0, 80000:] == 0).all()


@pytest.mark.parametrize("workers", [1, 2])
def test_shards_and_store(two_files, tmp_path, workers):
    seg, paths = two_files
    cfg = FrontendCfg()
    shards = list(
        iter_feature_shards(
            seg, paths, cfg, shard_size=3, workers=workers, keep_waveforms=True
        )
    )
    assert [s.segment_ids for s in shards] == [["a#0", "a#1", "a#2"], ["b#0"]]
    assert (
        shards[0].features.shape == (3, 256, 64)
        and shards[0].features.dtype == np.float16
    )
    n = write_feature_store(tmp_path / "store", iter(shards), {"note": "test"})
    store = FeatureStore(tmp_path / "store")
    assert n == len(store) == 4 and store.meta["n_segments"] == 4
    expected = clip_features(
        recording_clips(paths["b"], [(0.0, 5.0)], cfg, "repeat"), cfg
    )[0]
    assert np.allclose(store.get("b#0").astype(np.float32), expected, atol=2e-3)
    assert isinstance(store.shard(0), np.memmap)
    assert store.get("a#1", waveforms=True).shape == (cfg.clip_samples,)


def test_workers_give_identical_features(two_files):
    seg, paths = two_files
    one = list(iter_feature_shards(seg, paths, FrontendCfg(), workers=1))
    two = list(iter_feature_shards(seg, paths, FrontendCfg(), workers=2))
    assert np.array_equal(one[0].features, two[0].features)


def test_store_requires_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a feature store"):
        FeatureStore(tmp_path)


def test_bounded_map_keeps_order_and_limits_tasks_in_flight():
    from concurrent.futures import ThreadPoolExecutor

    from acula_pipeline.audio.features import bounded_map

    submitted = []

    def items():
        for i in range(20):
            submitted.append(i)
            yield i

    with ThreadPoolExecutor(2) as pool:
        out = []
        for k, value in enumerate(bounded_map(pool, lambda x: x * x, items(), ahead=3)):
            out.append(value)
            assert len(submitted) - k <= 3
    assert out == [i * i for i in range(20)]
