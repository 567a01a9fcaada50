"""The ``validate`` pipeline: one node per suite, a summary with Data Docs, a gate."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.validate.nodes import (
    summarise_validation,
    validate_audio_quality,
    validate_features,
    validate_recordings,
    validate_reports,
    validate_segments,
    validate_subject_splits,
    validation_gate,
)

P = "params:validate"


def create_pipeline(**kwargs) -> Pipeline:
    """Create the validate pipeline."""
    return Pipeline(
        [
            Node(
                func=validate_recordings,
                inputs=["recordings", "validation_session", P],
                outputs="recordings_validation",
                name="validate_recordings_node",
            ),
            Node(
                func=validate_audio_quality,
                inputs=["audio_quality", "recordings", "validation_session", P],
                outputs="audio_quality_validation",
                name="validate_audio_quality_node",
            ),
            Node(
                func=validate_segments,
                inputs=["segments", "recordings", "validation_session", P],
                outputs="segments_validation",
                name="validate_segments_node",
            ),
            Node(
                func=validate_subject_splits,
                inputs=["segments", "recordings", "validation_session", P],
                outputs="subject_splits_validation",
                name="validate_subject_splits_node",
            ),
            Node(
                func=validate_features,
                inputs=[
                    "segment_features",
                    "segments",
                    "validation_session",
                    P,
                    "params:ingest",
                ],
                outputs="features_validation",
                name="validate_features_node",
            ),
            Node(
                func=validate_reports,
                inputs=[
                    "reports",
                    "report_rejects",
                    "reports_summary",
                    "validation_session",
                    P,
                ],
                outputs="reports_validation",
                name="validate_reports_node",
            ),
            Node(
                func=summarise_validation,
                inputs=[
                    "recordings_validation",
                    "audio_quality_validation",
                    "segments_validation",
                    "subject_splits_validation",
                    "features_validation",
                    "reports_validation",
                    "validation_session",
                ],
                outputs="validation_summary",
                name="summarise_validation_node",
            ),
            Node(
                func=validation_gate,
                inputs="validation_summary",
                outputs=None,
                name="validation_gate_node",
            ),
        ]
    )
