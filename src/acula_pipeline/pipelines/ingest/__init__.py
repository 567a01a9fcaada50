"""Read enabled sources into the unified tables, segments and feature shards."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
