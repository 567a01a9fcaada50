"""The ``ingest`` pipeline: sources → recordings, quarantine, quality, segments, features."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.ingest.nodes import (
    audit_audio,
    build_segments,
    collect_quarantine,
    extract_features,
    scan_sources,
    summarise,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the ingest pipeline."""
    return Pipeline(
        [
            Node(
                scan_sources,
                ["params:ingest", "synthetic_corpus"],
                ["scanned_recordings", "cycles", "scan_quarantine"],
                name="scan_sources_node",
            ),
            Node(
                audit_audio,
                ["scanned_recordings", "params:ingest"],
                ["recordings", "audio_quality", "audit_quarantine"],
                name="audit_audio_node",
            ),
            Node(
                build_segments,
                ["recordings", "cycles", "params:ingest"],
                "segments",
                name="build_segments_node",
            ),
            Node(
                extract_features,
                ["segments", "recordings", "params:ingest"],
                "segment_features",
                name="extract_features_node",
            ),
            Node(
                collect_quarantine,
                ["scan_quarantine", "audit_quarantine"],
                "quarantine",
                name="collect_quarantine_node",
            ),
            Node(
                summarise,
                ["recordings", "segments", "quarantine"],
                "ingest_summary",
                name="summarise_ingest_node",
            ),
        ]
    )
