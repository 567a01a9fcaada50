"""The ``tune`` pipeline: an Optuna study over the align settings, scored on the
validation split. Not part of the default run nor of ``dvc repro``; it reads what
ingest, reports, validate and pretrain wrote."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.align.nodes import embed_report_texts
from acula_pipeline.pipelines.tune.nodes import run_study, study_outputs


def create_pipeline(**kwargs) -> Pipeline:
    """Create the tune pipeline."""
    return Pipeline(
        [
            Node(
                func=embed_report_texts,
                inputs=["reports", "teacher_cache", "params:align"],
                outputs="tuning_report_embeddings",
                name="tuning_embed_reports_node",
            ),
            Node(
                func=run_study,
                inputs=[
                    "segment_features",
                    "recordings",
                    "segments",
                    "splits",
                    "reports",
                    "tuning_report_embeddings",
                    "baseline_encoder",
                    "validation_summary",
                    "tuning_storage",
                    "params:tune",
                    "params:align",
                    "params:evaluate",
                ],
                outputs="tuning_study",
                name="run_study_node",
            ),
            Node(
                func=study_outputs,
                inputs=["tuning_study", "params:tune"],
                outputs=[
                    "tuning_best_params",
                    "tuning_trials",
                    "tuning_history",
                    "tuning_importances",
                    "tuning_parallel_coordinate",
                    "tuning_intermediate_values",
                ],
                name="tuning_outputs_node",
            ),
        ]
    )
