"""The ``evaluate`` pipeline: audit → embeddings → probes, zero-shot, retrieval →
metrics, table, figures and the HTML report."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.evaluate.nodes import (
    audit_leakage,
    embed_for_evaluation,
    run_probes,
    train_seed_models,
    write_results,
    zero_shot_and_retrieval,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluate pipeline."""
    return Pipeline(
        [
            Node(
                func=audit_leakage,
                inputs=[
                    "splits",
                    "aligned_model",
                    "reports",
                    "params:reports",
                    "recordings",
                ],
                outputs="leakage_audit",
                name="audit_leakage_node",
            ),
            Node(
                func=train_seed_models,
                inputs=[
                    "segment_features",
                    "segments",
                    "splits",
                    "reports",
                    "teacher_cache",
                    "seed_checkpoints",
                    "params:reports",
                    "params:pretrain",
                    "params:align",
                    "params:evaluate",
                ],
                outputs="seed_models",
                name="train_seed_models_node",
            ),
            Node(
                func=embed_for_evaluation,
                inputs=[
                    "segment_features",
                    "segments",
                    "baseline_encoder",
                    "aligned_model",
                    "ssl_control_model",
                    "seed_models",
                    "evaluation_embedding_cache",
                    "leakage_audit",
                    "params:evaluate",
                ],
                outputs="evaluation_embeddings",
                name="embed_for_evaluation_node",
            ),
            Node(
                func=run_probes,
                inputs=[
                    "recordings",
                    "segments",
                    "splits",
                    "evaluation_embeddings",
                    "params:evaluate",
                ],
                outputs=["probe_records", "task_embeddings"],
                name="run_probes_node",
            ),
            Node(
                func=zero_shot_and_retrieval,
                inputs=[
                    "probe_records",
                    "segments",
                    "splits",
                    "reports",
                    "heldout_reports",
                    "evaluation_embeddings",
                    "aligned_model",
                    "evaluation_teacher_cache",
                    "params:evaluate",
                    "params:align",
                ],
                outputs=["zero_shot_results", "retrieval_results"],
                name="zero_shot_and_retrieval_node",
            ),
            Node(
                func=write_results,
                inputs=[
                    "probe_records",
                    "zero_shot_results",
                    "retrieval_results",
                    "leakage_audit",
                    "validation_summary",
                    "recordings",
                    "aligned_model",
                    "baseline_encoder",
                    "evaluate_tracking",
                    "params:evaluate",
                ],
                outputs=[
                    "evaluation_metrics",
                    "evaluation_results",
                    "evaluation_metrics_detail",
                    "results_table",
                    "before_after_chart",
                    "roc_figure",
                    "roc_curves",
                    "embedding_map",
                    "evaluation_report",
                ],
                name="write_results_node",
            ),
        ]
    )
