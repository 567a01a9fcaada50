"""One self-contained HTML page: results, figures, zero-shot, retrieval, the leakage
audit and the data-validation summary (figures inlined as PNG, no external assets)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>acula-pipeline evaluation{{ ' (SYNTHETIC)' if synthetic }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
.banner { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.6em 1em; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #b42318; font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
</style></head><body>
<h1>Evaluation: no-learning reference, SSL baseline, SSL-only control, aligned encoder</h1>
{% if synthetic %}<p class="banner"><b>SYNTHETIC corpus.</b> These numbers measure the
pipeline on generated audio in the real datasets' layouts; they are not a claim about
real data.</p>{% endif %}
{% if provenance %}<p>{{ provenance }}</p>{% endif %}
{% if settings %}<p>{{ settings }}</p>{% endif %}
{% if headline %}<p>Mean AUROC over {{ headline.tasks }} classification task(s):
{% for enc, v in headline.items() if enc != 'tasks' %}{{ enc }}
<b>{{ "%.3f"|format(v) }}</b>{{ ", " if not loop.last }}{% endfor %}.</p>{% endif %}

<h2>Linear probes</h2>
{{ results_html|safe }}
<p>Mean over probe seeds {{ seeds }} [95 % interval from a bootstrap over patients:
subjects resampled, not recordings]; differences are paired on the same patients and
their verdict is read from the interval. Protocol <code>loso</code>: leave one subject
out.</p>
{% if skipped %}<h3>Tasks not run</h3>{{ skipped|safe }}{% endif %}
{% for name, png in figures %}<h3>{{ name }}</h3>
<img alt="{{ name }}" src="data:image/png;base64,{{ png }}">{% endfor %}

<h2>Zero-shot (aligned heads + teacher, no training)</h2>
<p>Cosine similarity of each unit to one description per class in the shared space. The
authors' <code>cka_feature</code> loss compares feature covariances and never pairs a clip
with its own report, so zero-shot and retrieval are only expected above chance with the
paired losses (<code>cka_linear</code>, <code>clip</code>, <code>siglip</code>).</p>
{% if zero_shot %}{{ zero_shot|safe }}{% else %}<p>No task has class descriptions, or zero-shot is off.</p>{% endif %}
<h2>Audio → report retrieval (test subjects)</h2>
{% if retrieval %}{{ retrieval|safe }}{% else %}<p>Not run (off, or no held-out reports).</p>{% endif %}

<h2>Leakage audit</h2>
<p>{% if audit.ok %}<span class="ok">passed</span>: none of the
{{ audit.test_subjects }} test subjects' audio or reports reached alignment.
{% else %}<span class="bad">overlap</span>
({{ 'paper_like setting: allowed and reported' if audit.paper_like else 'the run fails' }}):
{{ audit.test_subjects_in_alignment_audio|length }} test subject(s) in the alignment
audio, {{ audit.test_subjects_with_alignment_reports|length }} with reports aligned on.
Probe numbers are optimistic.{% endif %}</p>

<h2>Data validation (Great Expectations)</h2>
<p>{% if validation.success %}<span class="ok">passed</span>{% else %}
<span class="bad">failed</span>{% endif %}: {{ validation.critical_failed }} critical
and {{ validation.warning_failed }} warning expectation(s) failed. Data Docs:
<code>{{ validation.docs|e }}</code></p>
{{ suites|safe }}
</body></html>
"""


def figure_png(fig: Figure, dpi: int = 80) -> str:
    """A figure as base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode()


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as an HTML table, every cell escaped (by pandas; shown ``|safe``)."""
    if not rows:
        return ""
    return pd.DataFrame(rows).to_html(
        index=False, float_format="%.3f", border=0, escape=True
    )


def render_report(
    *,
    synthetic: bool,
    headline: Mapping[str, Any] | None,
    results: pd.DataFrame,
    skipped: Sequence[Mapping[str, Any]],
    figures: Sequence[tuple[str, Figure]],
    zero_shot: Sequence[Mapping[str, Any]],
    retrieval: Sequence[Mapping[str, Any]],
    audit: Mapping[str, Any],
    validation: Mapping[str, Any],
    seeds: Sequence[int],
    provenance: str = "",
    settings: str = "",
) -> str:
    """The evaluation report as one HTML string."""
    suites = [
        {k: s.get(k) for k in ("suite", "rows", "evaluated", "passed", "failed")}
        for s in validation.get("suites", {}).values()
    ]
    # Every value is escaped; the tables are built escaped (pandas) and shown |safe.
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        synthetic=synthetic,
        headline=headline,
        results_html=results.to_html(index=False, border=0, escape=True),
        skipped=_table(skipped),
        figures=[(name, figure_png(fig)) for name, fig in figures],
        zero_shot=_table(zero_shot),
        retrieval=_table(retrieval),
        audit=audit,
        validation={
            "success": validation.get("success", False),
            "critical_failed": validation.get("critical_failed", "?"),
            "warning_failed": validation.get("warning_failed", "?"),
            "docs": validation.get("docs", "-"),
        },
        suites=_table(suites),
        seeds=list(seeds),
        provenance=provenance,
        settings=settings,
    )
