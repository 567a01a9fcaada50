"""Write one checked clinical report per alignment unit."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
