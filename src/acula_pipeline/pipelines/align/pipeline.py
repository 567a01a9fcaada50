"""The ``align`` pipeline: reports → teacher embeddings; baseline → aligned model,
and the SSL-only control (the same run with the teacher's term off)."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.align.nodes import (
    align_encoder,
    embed_report_texts,
    train_ssl_control,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the align pipeline."""
    return Pipeline(
        [
            Node(
                func=embed_report_texts,
                inputs=["reports", "teacher_cache", "params:align"],
                outputs="report_embeddings",
                name="embed_reports_node",
            ),
            Node(
                func=align_encoder,
                inputs=[
                    "segment_features",
                    "segments",
                    "reports",
                    "report_embeddings",
                    "baseline_encoder",
                    "validation_summary",
                    "align_checkpoints",
                    "align_tracking",
                    "params:align",
                ],
                outputs=["aligned_model", "align_curve"],
                name="align_encoder_node",
            ),
            Node(
                func=train_ssl_control,
                inputs=[
                    "segment_features",
                    "segments",
                    "reports",
                    "report_embeddings",
                    "baseline_encoder",
                    "validation_summary",
                    "control_checkpoints",
                    "control_tracking",
                    "params:align",
                ],
                outputs=["ssl_control_model", "control_curve"],
                name="train_ssl_control_node",
            ),
        ]
    )
