"""The ``pretrain`` pipeline: features → baseline encoder."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.pretrain.nodes import pretrain_encoder


def create_pipeline(**kwargs) -> Pipeline:
    """Create the pretrain pipeline."""
    return Pipeline(
        [
            Node(
                func=pretrain_encoder,
                inputs=[
                    "segment_features",
                    "segments",
                    "validation_summary",
                    "pretrain_checkpoints",
                    "pretrain_tracking",
                    "params:pretrain",
                    "params:align",
                ],
                outputs=["baseline_encoder", "pretrain_curve"],
                name="pretrain_encoder_node",
            )
        ]
    )
