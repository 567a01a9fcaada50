"""Report-writing throughput.

1. Template backend: reports per second through the whole writer (facts, prompt,
   cache, checks), against the bare template function on the same units.
2. ``openai`` backend against a chat-completions server on 127.0.0.1 answering after a
   fixed 100 ms (in its own process, as a real endpoint would be): concurrency 8
   against concurrency 1, same prompts, same run, printed as a ratio. Target: 6x.

    python benchmarks/reports_throughput.py [--units 2000] [--prompts 160]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.llm_server and tests.reports_support

from tests.llm_server import serve_in_process  # noqa: E402
from tests.reports_support import params, synthetic_units  # noqa: E402

from acula_pipeline.audio.synthetic import SyntheticCfg, SyntheticCorpus  # noqa: E402
from acula_pipeline.reports import ReportCache, unit_facts, write_reports  # noqa: E402
from acula_pipeline.reports.facts import allowed_facts  # noqa: E402
from acula_pipeline.reports.prompts import build_messages  # noqa: E402
from acula_pipeline.reports.templates import write_report  # noqa: E402


def many_units(base: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` distinct units: copies of ``base`` with new ids and shifted ages."""
    reps = -(-n // len(base))
    frames = []
    for i in range(reps):
        f = base.copy()
        f["unit_id"] = f["unit_id"] + f"~{i}"
        f["age_years"] = f["age_years"] + i  # distinct facts → distinct prompts
        frames.append(f)
    return pd.concat(frames, ignore_index=True).head(n)


def bench_template(units: pd.DataFrame) -> None:
    p = params()
    t0 = time.perf_counter()
    for row in units.to_dict("records"):
        facts = allowed_facts(unit_facts(row), p.fields[row["adapter"]])
        write_report(facts, row["modality"], row["unit_id"], row["unit"], 0)
    bare = len(units) / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = write_reports(units, p, ReportCache(tmp))
        full = len(units) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        write_reports(units, p, ReportCache(tmp))
        cached = len(units) / (time.perf_counter() - t0)
    assert len(run.reports) == len(units)
    print(f"template: {len(units)} units")
    print(f"  bare template function  {bare:10.0f} reports/s")
    print(f"  writer (cache + checks) {full:10.0f} reports/s")
    print(f"  writer, all from cache  {cached:10.0f} reports/s")


def bench_openai(units: pd.DataFrame, latency: float) -> None:
    p = params(backend="openai")
    answers = {}
    for row in units.to_dict("records"):
        facts = allowed_facts(unit_facts(row), p.fields[row["adapter"]])
        msgs = build_messages(p.prompts, row["modality"], facts, json_mode=True)
        answers[msgs[1]["content"]] = "placeholder"
    rates = {}
    ctx = multiprocessing.get_context("fork")
    urls = ctx.Queue()
    server = ctx.Process(
        target=serve_in_process, args=(answers, latency, urls), daemon=True
    )
    server.start()
    try:
        url = urls.get(timeout=30)
        for conc in (1, 8):
            q = params(
                backend="openai",
                openai={"base_url": url, "concurrency": conc},
                on_failure="drop",
                retry_failed=False,
            )
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run = write_reports(units, q, ReportCache(tmp))
                dt = time.perf_counter() - t0
            assert run.stats["backend_http_requests"] == len(answers)
            rates[conc] = len(answers) / dt
            print(f"openai, concurrency {conc}: {rates[conc]:6.1f} reports/s")
    finally:
        server.terminate()
    ratio = rates[8] / rates[1]
    verdict = "meets" if ratio >= 6 else "misses"
    print(
        f"concurrency 8 vs 1 at {latency * 1000:.0f} ms latency: {ratio:.1f}x "
        f"({verdict} the 6x target)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=2000)
    ap.add_argument("--prompts", type=int, default=160)
    ap.add_argument("--latency", type=float, default=0.1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        cfg = SyntheticCfg(subjects={"icbhi2017": 3, "circor2022": 3, "coswara": 3})
        SyntheticCorpus(cfg).write(root)
        base = synthetic_units(root)
    bench_template(many_units(base, args.units))
    with_age = base[base["age_years"].notna()]
    bench_openai(many_units(with_age, args.prompts), args.latency)


if __name__ == "__main__":
    main()
