"""Typed ``ingest`` parameters; Kedro validates them before any node runs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from acula_pipeline.audio.framing import ClipPolicy
from acula_pipeline.audio.frontend import FrontendCfg
from acula_pipeline.audio.quality import QualityCfg
from acula_pipeline.audio.synthetic import SyntheticCfg
from acula_pipeline.evaluation.splits import SplitParams
from acula_pipeline.sources import SOURCES


class SourceParams(BaseModel):
    """One entry of ``ingest.sources``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    root: str | None = None  # the user's copy, as distributed
    adapter: str | None = None  # defaults to the entry's name
    generate: SyntheticCfg | None = None  # only for the synthetic corpus


class FeatureParams(BaseModel):
    """Log-mel frontend and shard settings (clip length comes from ``clips``)."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = 16000
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 8000.0
    n_fft: int = 1024
    hop_length: int = 512
    shard_size: int = Field(512, gt=0)
    keep_waveforms: bool = False


class IngestParams(BaseModel):
    """All of ``conf/base/parameters_ingest.yml``."""

    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceParams]
    quality: QualityCfg = QualityCfg()
    clips: ClipPolicy = ClipPolicy()
    split: SplitParams = SplitParams()
    features: FeatureParams = FeatureParams()
    workers: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check_sources(self) -> IngestParams:
        for name, src in self.sources.items():
            if name == "synthetic":
                if src.generate is None:
                    raise ValueError(
                        "ingest.sources.synthetic needs a 'generate' block"
                    )
                continue
            adapter = src.adapter or name
            if adapter not in SOURCES:
                raise ValueError(
                    f"ingest.sources.{name}: unknown adapter {adapter!r}; "
                    f"known: {sorted(SOURCES)}"
                )
            if src.enabled and not src.root:
                raise ValueError(
                    f"ingest.sources.{name} is enabled but has no 'root'; set "
                    f"it to the folder of your copy of the dataset"
                )
        return self

    def frontend(self) -> FrontendCfg:
        """The frontend configuration implied by ``features`` and ``clips``."""
        f = self.features
        return FrontendCfg(
            sample_rate=f.sample_rate,
            clip_seconds=self.clips.clip_seconds,
            n_mels=f.n_mels,
            f_min=f.f_min,
            f_max=f.f_max,
            n_fft=f.n_fft,
            hop_length=f.hop_length,
        )
