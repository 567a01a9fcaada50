"""Gate the data between ingestion, reports and training."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
