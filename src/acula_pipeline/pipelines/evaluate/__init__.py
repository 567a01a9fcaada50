"""Evaluation: linear probes, zero-shot, retrieval and the results report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
