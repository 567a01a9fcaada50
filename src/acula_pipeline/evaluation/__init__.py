"""Evaluation: metrics, OPERA linear probes, embedding extraction (no Kedro here)."""
