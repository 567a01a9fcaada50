"""The ``ingest`` pipeline: sources → recordings, quarantine, quality, segments, features."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.ingest.nodes import (
    audit_audio,
    build_segments,
    collect_quarantine,
    extract_features,
    plot_overview,
    scan_sources,
    split_subjects,
    summarise,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the ingest pipeline."""
    return Pipeline(
        [
            Node(
                func=scan_sources,
                inputs=["params:ingest", "synthetic_corpus"],
                outputs=["scanned_recordings", "cycles", "scan_quarantine"],
                name="scan_sources_node",
            ),
            Node(
                func=audit_audio,
                inputs=["scanned_recordings", "params:ingest"],
                outputs=["recordings", "audio_quality", "audit_quarantine"],
                name="audit_audio_node",
            ),
            Node(
                func=split_subjects,
                inputs=["recordings", "params:ingest"],
                outputs="splits",
                name="split_subjects_node",
            ),
            Node(
                func=build_segments,
                inputs=["recordings", "cycles", "splits", "params:ingest"],
                outputs="segments",
                name="build_segments_node",
            ),
            Node(
                func=extract_features,
                inputs=["segments", "recordings", "params:ingest"],
                outputs="segment_features",
                name="extract_features_node",
            ),
            Node(
                func=collect_quarantine,
                inputs=["scan_quarantine", "audit_quarantine"],
                outputs="quarantine",
                name="collect_quarantine_node",
            ),
            Node(
                func=summarise,
                inputs=["recordings", "segments", "quarantine"],
                outputs="ingest_summary",
                name="summarise_ingest_node",
            ),
            Node(
                func=plot_overview,
                inputs=["recordings", "quarantine", "segments"],
                outputs="ingest_overview",
                name="plot_ingest_overview_node",
            ),
        ]
    )
