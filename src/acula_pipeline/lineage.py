"""Check that a ``kedro viz build`` renders: every pipeline's graph, in headless Chromium.

    kedro viz build --include-hooks          # writes build/
    python -m acula_pipeline.lineage build   # or: make viz-check

The build folder is served on 127.0.0.1 (a free port), opened in the system's Chromium
through Selenium and its chromedriver, and each pipeline is shown in turn (``?pid=``).
A pipeline passes when every task and dataset node of it in the build's own graph data
(``api/main``, ``api/pipelines/<id>``) is drawn as a node of the graph. Parameters are
hidden by Kedro-Viz by default and are not expected. A screenshot of each pipeline
goes to ``OUT/lineage_<pipeline>.png`` and the findings to ``OUT/lineage_check.json``.

Nothing is fetched from the network: Chromium runs with background networking off, and
the page's one external link (a web font) fails at once offline and falls back to a
system font. Kedro-free, like the rest of the core.
"""

from __future__ import annotations

import functools
import http.server
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Flags Chromium is started with: headless, root-safe, and no connection of its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--disable-sync",
    "--no-first-run",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
#: Node kinds Kedro-Viz draws by default (parameters are switched off in its filters).
DRAWN_TYPES = ("task", "data")
INSTALL_HINT = (
    "install Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver), or point ACULA_CHROMIUM and ACULA_CHROMEDRIVER at a Chromium "
    "and its matching chromedriver"
)


class LineageError(RuntimeError):
    """The lineage view did not render, or rendered without some of its nodes."""


@dataclass(frozen=True)
class Browser:
    chromium: str
    chromedriver: str


def _executable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(str(path)) and os.access(str(path), os.X_OK)


def find_browser() -> Browser | None:
    """Chromium and chromedriver from ACULA_CHROMIUM/ACULA_CHROMEDRIVER or the PATH."""
    chromium = os.environ.get("ACULA_CHROMIUM") or next(
        filter(None, map(shutil.which, CHROMIUM_NAMES)), None
    )
    driver = os.environ.get("ACULA_CHROMEDRIVER") or shutil.which("chromedriver")
    if not (_executable(chromium) and _executable(driver)):
        return None
    return Browser(str(chromium), str(driver))


def browser_missing_reason() -> str | None:
    """Why :func:`check_build` cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (it is in requirements.txt)"
    for var in ("ACULA_CHROMIUM", "ACULA_CHROMEDRIVER"):
        value = os.environ.get(var)
        if value and not _executable(value):
            return f"{var}={value} is not an executable file"
    if find_browser() is None:
        return f"no Chromium with a chromedriver was found: {INSTALL_HINT}"
    return None


@dataclass
class PipelineView:
    pipeline: str
    expected: int
    rendered: int
    missing: list[str]
    screenshot: str
    seconds: float
    browser_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and self.rendered > 0


def expected_nodes(build: Path, pipeline: str) -> set[str]:
    """Names of the nodes Kedro-Viz should draw for ``pipeline``, from the build's data."""
    main = _read_json(build / "api" / "main")
    ids = [p["id"] for p in main.get("pipelines", [])]
    if pipeline not in ids:
        raise LineageError(
            f"{build}: pipeline {pipeline!r} is not in the build (it has {ids})"
        )
    data = (
        main
        if pipeline == main.get("selected_pipeline")
        else _read_json(build / "api" / "pipelines" / pipeline)
    )
    return {n["name"] for n in data["nodes"] if n.get("type") in DRAWN_TYPES}


def pipelines_in(build: Path) -> list[str]:
    return [p["id"] for p in _read_json(build / "api" / "main").get("pipelines", [])]


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise LineageError(
            f"{path} is missing: is {path.parent.parent} a `kedro viz build` folder?"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise LineageError(f"{path} is not valid JSON: {err}") from err


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("viz server: " + format, *args)


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 on a free port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium(browser: Browser, window: tuple[int, int] = (1600, 1600)) -> Iterator[Any]:
    """A headless Chromium under Selenium, with a throw-away profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="acula-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for flag in (
        *CHROMIUM_FLAGS,
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        # The driver's path is given, so Selenium Manager (which may download) never runs.
        driver = webdriver.Chrome(
            options=options, service=Service(browser.chromedriver)
        )
    except Exception as err:
        shutil.rmtree(profile, ignore_errors=True)
        raise LineageError(
            f"could not start {browser.chromium} with {browser.chromedriver}: {err}"
        ) from err
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# A node counts as drawn when its SVG group has a label and a box of non-zero size.
_DRAWN_NAMES = """
return Array.from(document.querySelectorAll('.pipeline-node'))
  .filter(g => { const r = g.getBoundingClientRect(); return r.width > 0 && r.height > 0; })
  .map(g => g.querySelector('.pipeline-node__text'))
  .filter(t => t !== null)
  .map(t => t.textContent.trim());
"""
# Where the nodes are on screen (after the layout's and the zoom's transitions).
_NODE_BOXES = """
return Array.from(document.querySelectorAll('.pipeline-node'))
  .map(g => { const r = g.getBoundingClientRect();
              return [r.x, r.y, r.width].map(v => v.toFixed(1)).join(','); })
  .join('|');
"""


def _errors(driver: Any) -> list[str]:
    """Uncaught page errors; failed network loads (the offline web font) are not."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # not every driver keeps a log
        return []
    return [
        e["message"]
        for e in entries
        if e.get("level") == "SEVERE" and e.get("source") == "javascript"
    ]


def _show(driver: Any, url: str, expected: set[str], timeout: float) -> set[str]:
    """Load ``url`` and wait until the expected nodes are drawn and stop moving."""
    driver.get(url)
    deadline = time.monotonic() + timeout
    drawn: set[str] = set()
    while time.monotonic() < deadline:
        drawn = set(driver.execute_script(_DRAWN_NAMES) or [])
        if drawn and expected <= drawn:
            break
        time.sleep(0.25)
    else:
        return drawn
    # The layout and the zoom animate into place: wait until two looks agree.
    previous = None
    while time.monotonic() < deadline:
        boxes = driver.execute_script(_NODE_BOXES)
        if boxes == previous:
            break
        previous = boxes
        time.sleep(0.4)
    return drawn


def check_build(
    build: Path | str,
    out: Path | str,
    pipelines: Sequence[str] | None = None,
    browser: Browser | None = None,
    timeout: float = 60.0,
    window: tuple[int, int] = (1600, 1600),
) -> list[PipelineView]:
    """Open every pipeline of ``build`` in headless Chromium and check its nodes.

    Raises LineageError, naming the pipeline and the missing nodes, when a graph does
    not render in ``timeout`` seconds or lacks nodes. Screenshots and
    ``lineage_check.json`` are written to ``out`` either way.
    """
    build, out = Path(build), Path(out)
    if not (build / "index.html").is_file():
        raise LineageError(
            f"{build}/index.html is missing: run `kedro viz build` first (make viz)"
        )
    names = list(pipelines) if pipelines else pipelines_in(build)
    wanted = {p: expected_nodes(build, p) for p in names}
    browser = browser or find_browser()
    if browser is None:
        raise LineageError(f"no Chromium with a chromedriver was found: {INSTALL_HINT}")
    out.mkdir(parents=True, exist_ok=True)
    views: list[PipelineView] = []
    with serve(build) as base, chromium(browser, window) as driver:
        # No feature-tour pop-up over the graph: Kedro-Viz keeps that flag in local
        # storage, set here from a page of the same origin that does not run the app.
        driver.get(base + "/api/")  # a folder listing
        driver.execute_script(
            "const s = JSON.parse(localStorage.getItem('KedroViz') || '{}');"
            "s.showFeatureHints = false;"
            "localStorage.setItem('KedroViz', JSON.stringify(s));"
        )
        _errors(driver)  # drop what the blank page logged
        for name in names:
            start = time.monotonic()
            drawn = _show(driver, f"{base}/?pid={name}", wanted[name], timeout)
            shot = out / f"lineage_{name.strip('_') or 'default'}.png"
            driver.save_screenshot(str(shot))
            views.append(
                PipelineView(
                    pipeline=name,
                    expected=len(wanted[name]),
                    rendered=len(drawn & wanted[name]),
                    missing=sorted(wanted[name] - drawn),
                    screenshot=str(shot),
                    seconds=round(time.monotonic() - start, 2),
                    browser_errors=_errors(driver),
                )
            )
            log.debug(
                "lineage %s: %d/%d nodes drawn (%s)",
                name,
                views[-1].rendered,
                views[-1].expected,
                shot,
            )
    (out / "lineage_check.json").write_text(
        json.dumps(
            {
                "build": str(build),
                "ok": all(v.ok for v in views),
                "pipelines": [asdict(v) | {"ok": v.ok} for v in views],
            },
            indent=2,
        )
    )
    bad = [v for v in views if not v.ok]
    if bad:
        lines = [
            f"{v.pipeline}: {v.rendered}/{v.expected} nodes drawn in {timeout:.0f} s; "
            f"missing {', '.join(v.missing[:8])}{' …' if len(v.missing) > 8 else ''}"
            + (f"; page errors: {v.browser_errors[:2]}" if v.browser_errors else "")
            for v in bad
        ]
        raise LineageError(
            f"the lineage view of {build} did not render fully "
            f"(screenshots in {out}):\n  " + "\n  ".join(lines)
        )
    return views


HELP = """Check that the `kedro viz build` folder BUILD (default: build) draws every
pipeline's graph in headless Chromium.

\b
    kedro viz build --include-hooks
    python -m acula_pipeline.lineage build -o data/08_reporting   # or: make viz-check

Each pipeline passes when every task and dataset node in the build's graph data is drawn.
Writes OUT/lineage_<pipeline>.png and OUT/lineage_check.json; exits non-zero, naming the
missing nodes, when a graph does not draw. Needs Chromium and chromedriver (Debian:
apt-get install chromium chromium-driver; or set ACULA_CHROMIUM and ACULA_CHROMEDRIVER).
"""


def main(argv: Sequence[str] | None = None) -> None:
    import click

    @click.command(help=HELP)
    @click.argument("build", type=click.Path(path_type=Path), default=Path("build"))
    @click.option(
        "-o",
        "--out",
        type=click.Path(path_type=Path),
        default=Path("data/08_reporting"),
        show_default=True,
        help="Folder for lineage_<pipeline>.png and lineage_check.json.",
    )
    @click.option(
        "-p",
        "--pipeline",
        "pipelines",
        multiple=True,
        help="Pipeline to check (repeatable) [default: every pipeline in the build].",
    )
    @click.option("--timeout", default=60.0, show_default=True, help="Seconds each.")
    def cli(build: Path, out: Path, pipelines: tuple[str, ...], timeout: float) -> None:
        logging.basicConfig(format="%(message)s", level=logging.INFO)
        reason = browser_missing_reason()
        if reason:
            raise click.ClickException(reason)
        try:
            views = check_build(build, out, pipelines or None, timeout=timeout)
        except LineageError as err:
            raise click.ClickException(str(err)) from err
        for v in views:
            click.echo(
                f"{v.pipeline:<12} {v.rendered:>3}/{v.expected:<3} nodes drawn  "
                f"{v.seconds:5.1f} s  {v.screenshot}"
            )
        click.echo(
            f"All {len(views)} pipelines render. Findings: {out}/lineage_check.json"
        )

    cli.main(args=list(argv) if argv is not None else None, prog_name="acula-lineage")


if __name__ == "__main__":
    main()
