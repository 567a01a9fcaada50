"""An HTML template for ``dvc plots show`` that renders offline.

DVC's own page loads Vega, Vega-Lite and vega-embed from a CDN, so on a machine
without network it shows nothing. This writes a template with the three libraries
inlined (the bundle ``vl-convert-python`` ships, no download):

    python -m acula_pipeline.plots_page build/dvc_plots_offline.html
    dvc plots show --html-template build/dvc_plots_offline.html

(``make plots`` does both.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from acula_pipeline.runtime import atomic_file

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>DVC plots (offline)</title>
    <script type="text/javascript">
{bundle}
    </script>
    <style>table {{ border-spacing: 15px; }}</style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def offline_template() -> str:
    """The template's text: Vega, Vega-Lite and vega-embed inline, DVC's
    ``{plot_divs}`` placeholder, no ``{scripts}`` (DVC fills that with CDN links)."""
    import vl_convert

    # vegaEmbed, vega and vegaLite on window, as DVC's plot snippets expect.
    bundle = vl_convert.javascript_bundle(
        "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
    )
    if "{plot_divs}" in bundle or "{scripts}" in bundle:  # pragma: no cover
        raise RuntimeError("the Vega bundle holds a DVC placeholder")
    # Closing a script inside the bundle would end our tag early.
    return PAGE.format(bundle=bundle.replace("</script", "<\\/script"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m acula_pipeline.plots_page OUT.html\n")
        return 2
    out = Path(args[0])
    with atomic_file(out) as tmp:
        tmp.write_text(offline_template(), encoding="utf-8")
    sys.stdout.write(f"wrote {out} ({out.stat().st_size // 1024} KB)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
