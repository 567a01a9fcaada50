"""Self-supervised pretraining of the student: the purely acoustic baseline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
