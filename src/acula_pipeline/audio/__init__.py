"""Audio I/O, quality statistics, framing, the log-mel frontend and the synthetic corpus.

This is the only package that reads audio files.
"""
