"""The built-in synthetic cardio-respiratory corpus, written in real datasets' layouts."""

from acula_pipeline.audio.synthetic.common import SyntheticCfg
from acula_pipeline.audio.synthetic.corpus import SyntheticCorpus

__all__ = ["SyntheticCfg", "SyntheticCorpus"]
