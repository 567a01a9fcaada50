"""Optuna studies over the alignment settings (the ``tune`` pipeline's core)."""
