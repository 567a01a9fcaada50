"""Nodes of the ``corpus`` pipeline."""

from __future__ import annotations

from acula_pipeline.audio.synthetic import SyntheticCfg, SyntheticCorpus


def generate_corpus(cfg: SyntheticCfg) -> SyntheticCorpus:
    """Describe the synthetic corpus; the catalog writes it subject by subject.

    Args:
        cfg: Generation settings (``ingest.sources.synthetic.generate``).

    Returns:
        A lazy corpus that ``CorpusFolderDataset`` writes to ``data/01_raw/synthetic``.
    """
    return SyntheticCorpus(cfg)
