"""The ``reports`` pipeline: units → leakage control → reports, rejects, summary."""

from kedro.pipeline import Node, Pipeline

from acula_pipeline.pipelines.reports.nodes import (
    build_report_units,
    exclude_reserved_subjects,
    generate_reports,
    plot_checks,
    summarise,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the reports pipeline."""
    return Pipeline(
        [
            Node(
                func=build_report_units,
                inputs=["recordings", "segments"],
                outputs="report_units_all",
                name="build_report_units_node",
            ),
            Node(
                func=exclude_reserved_subjects,
                inputs=["report_units_all", "splits", "params:reports"],
                outputs=["report_units", "heldout_report_units", "report_exclusions"],
                name="exclude_reserved_subjects_node",
            ),
            Node(
                func=generate_reports,
                inputs=[
                    "report_units",
                    "heldout_report_units",
                    "report_cache",
                    "params:reports",
                ],
                outputs=[
                    "reports",
                    "heldout_reports",
                    "report_rejects",
                    "report_run_stats",
                ],
                name="generate_reports_node",
            ),
            Node(
                func=summarise,
                inputs=[
                    "reports",
                    "report_rejects",
                    "report_run_stats",
                    "report_exclusions",
                ],
                outputs="reports_summary",
                name="summarise_reports_node",
            ),
            Node(
                func=plot_checks,
                inputs="reports_summary",
                outputs="reports_checks",
                name="plot_report_checks_node",
            ),
        ]
    )
