"""The ``corpus`` pipeline: write the synthetic corpus in real datasets' layouts."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.corpus.nodes import generate_corpus


def create_pipeline(**kwargs) -> Pipeline:
    """Create the corpus pipeline."""
    return Pipeline(
        [
            Node(
                func=generate_corpus,
                inputs="params:ingest.sources.synthetic.generate",
                outputs="synthetic_corpus",
                name="generate_synthetic_corpus_node",
            ),
        ]
    )
