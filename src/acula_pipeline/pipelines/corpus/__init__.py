"""Generate the built-in synthetic corpus."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
