"""Tuning: Optuna studies over the alignment settings (not in the default run)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
