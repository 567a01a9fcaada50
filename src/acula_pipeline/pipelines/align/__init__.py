"""AcuLa alignment: the student learns from the frozen teacher's report embeddings."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
