"""acula-pipeline: AcuLa audio-language post-training alignment for medical audio."""

__version__ = "0.1.0"
