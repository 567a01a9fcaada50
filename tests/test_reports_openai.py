"""The ``openai`` backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest

from acula_pipeline.reports import ReportCache, unit_facts, write_reports
from acula_pipeline.reports.backends import BackendConfigError
from acula_pipeline.reports.backends.openai_compat import OpenAIBackend, OpenAICfg
from acula_pipeline.reports.backends.template import TemplateBackend, TemplateCfg
from acula_pipeline.reports.facts import allowed_facts
from acula_pipeline.reports.prompts import build_messages

from .llm_server import FakeLLM
from .reports_support import params, synthetic_units

FAST = {"timeout_s": 0.5, "backoff_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 4}


@pytest.fixture(scope="module")
def units(tiny_corpus):
    u = synthetic_units(tiny_corpus)
    # A few units per dataset keep the runs short.
    return u.groupby("dataset", group_keys=False).head(8).reset_index(drop=True)


def answers_for(units, p):
    """First user message → a faithful report (the template's)."""
    tpl = TemplateBackend(TemplateCfg())
    out = {}
    for row in units.to_dict("records"):
        facts = allowed_facts(unit_facts(row), p.fields[row["adapter"]])
        msgs = build_messages(p.prompts, row["modality"], facts, json_mode=True)
        from acula_pipeline.reports.backends import ReportRequest

        req = ReportRequest(
            "k",
            row["unit_id"],
            row["unit"],
            row["adapter"],
            row["modality"],
            facts,
            msgs,
        )
        out.setdefault(msgs[1]["content"], tpl.write(req))
    return out


def openai_params(url, **kw):
    return params(backend="openai", openai={"base_url": url, **FAST, **kw})


def test_faults_are_retried_boundedly_and_nothing_is_lost(units, tmp_path):
    p = openai_params("http://unused")
    answers = answers_for(units, p)
    keys = sorted(answers)
    cycle = [
        ["429"],
        ["500", "500"],
        ["malformed_body"],
        ["hang"],
        ["malformed_json"],
        [],
        ["refusal"],
    ]
    plans = {k: cycle[i % len(cycle)] for i, k in enumerate(keys)}
    doomed = keys[5]
    plans[doomed] = ["500"] * 10  # never succeeds
    with FakeLLM(answers, plans, latency_s=0.01) as llm:
        p = openai_params(llm.url, concurrency=4)
        run = write_reports(units, p, ReportCache(tmp_path))
    reports = run.reports
    # Every unit has exactly one report; nothing duplicated.
    assert len(reports) == len(units)
    assert reports["unit_id"].is_unique
    assert set(reports["unit_id"]) == set(units["unit_id"])
    # Retries are bounded: each key took exactly its scripted attempts.
    for key in keys:
        plan = plans[key]
        if key == doomed:
            assert llm.attempts[key] == FAST["max_attempts"]
        elif plan == ["refusal"]:
            assert llm.attempts[key] == 2  # the check failed; one retry with reasons
        else:
            assert llm.attempts[key] == len(plan) + 1, (plan, llm.attempts[key])
    # The server's answers are what was kept, except the doomed prompt's units.
    by_prompt = {}
    for row in units.to_dict("records"):
        facts = allowed_facts(unit_facts(row), p.fields[row["adapter"]])
        by_prompt[row["unit_id"]] = build_messages(
            p.prompts, row["modality"], facts, True
        )[1]["content"]
    for r in reports.to_dict("records"):
        key = by_prompt[r["unit_id"]]
        if key == doomed:
            assert r["source"] == "fallback_template"
            assert "HTTP 500" in r["backend_problems"]
        else:
            assert r["source"] == "openai", r["backend_problems"]
            assert r["report"] == answers[key]
    refused = [k for k in keys if plans[k] == ["refusal"]]
    assert run.stats["retried"] >= len(refused) > 0
    assert run.stats["backend_completion_tokens"] > 0
    assert run.stats["without_backend_report"]  # the doomed units are listed


def test_concurrency_is_capped(units, tmp_path):
    p = openai_params("http://unused")
    answers = answers_for(units, p)
    with FakeLLM(answers, latency_s=0.05) as llm:
        write_reports(
            units, openai_params(llm.url, concurrency=3), ReportCache(tmp_path)
        )
    assert 2 <= llm.max_inflight <= 3


def test_rate_limiter_spaces_request_starts(monkeypatch):
    from acula_pipeline.reports.backends import openai_compat

    class Clock:
        now = 100.0
        slept: list[float] = []

        def monotonic(self):
            return self.now

        def sleep(self, s):
            self.slept.append(s)
            self.now += s

    clock = Clock()
    monkeypatch.setattr(openai_compat, "time", clock)
    limiter = openai_compat.RateLimiter(4.0)
    for _ in range(5):
        limiter.acquire()
    assert clock.slept == pytest.approx([0.25] * 4)
    assert openai_compat.RateLimiter(0).interval == 0


class Interrupted(OpenAIBackend):
    """Dies (like Ctrl-C) after ``k`` reports came back."""

    def __init__(self, cfg, k):
        super().__init__(cfg)
        self.k = k

    def generate(self, requests):
        for i, gen in enumerate(super().generate(requests)):
            if i == self.k:
                raise KeyboardInterrupt
            yield gen


def test_kill_and_resume(units, tmp_path):
    p = openai_params("http://unused")
    answers = answers_for(units, p)
    n, k = len(answers), 5
    with FakeLLM(answers) as llm:
        p = openai_params(llm.url, concurrency=1)
        with pytest.raises(KeyboardInterrupt):
            write_reports(units, p, ReportCache(tmp_path), Interrupted(p.openai, k))
        assert len(ReportCache(tmp_path)) == k
        before = llm.requests
        run = write_reports(units, p, ReportCache(tmp_path))
    assert llm.requests - before == n - k
    assert run.stats["backend_calls"] == n - k
    assert len(run.reports) == len(units) and run.reports["unit_id"].is_unique
    assert (run.reports["source"] == "openai").all()


def test_wrong_credentials_stop_the_run(units, tmp_path, monkeypatch, caplog):
    """The server echoes the request headers in its 401 body (some do): the key
    never reaches the message or the log."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-0123456789")
    with FakeLLM({}, status=401) as llm:
        p = openai_params(llm.url)
        with pytest.raises(BackendConfigError, match="answered 401") as err:
            write_reports(units.head(3), p, ReportCache(tmp_path))
    assert "Bearer [API key]" in str(err.value)
    assert "sk-secret" not in str(err.value) and "sk-secret" not in caplog.text


def test_api_key_from_credentials_file(tmp_path, monkeypatch):
    creds = tmp_path / "credentials.yml"
    creds.write_text("openai_compatible:\n  api_key: sk-test\n")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = OpenAICfg(credentials_file=str(creds))
    assert OpenAIBackend(cfg)._client.headers["authorization"] == "Bearer sk-test"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert OpenAIBackend(cfg)._client.headers["authorization"] == "Bearer sk-env"


def test_request_carries_json_mode_and_settings(units, tmp_path):
    p = openai_params("http://unused")
    answers = answers_for(units.head(2), p)
    with FakeLLM(answers) as llm:
        p = openai_params(llm.url, temperature=0.0, max_tokens=99)
        write_reports(units.head(2), p, ReportCache(tmp_path))
    body = llm.bodies[0]
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0.0 and body["max_tokens"] == 99
    assert body["messages"][0]["role"] == "system"
    assert "Patient ID" not in body["messages"][1]["content"]


CHILD = """
import sys
import pandas as pd
from acula_pipeline.reports import ReportCache, ReportsParams, write_reports
units = pd.read_parquet(sys.argv[1])
p = ReportsParams.model_validate_json(open(sys.argv[2]).read())
write_reports(units, p, ReportCache(sys.argv[3]))
"""


def _cached(folder):
    import sqlite3

    path = folder / "reports.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the table is not created yet
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_midway_then_resume(units, tmp_path):
    """A real kill -9 of a writing process: every committed report survives."""
    import signal
    import subprocess
    import sys
    import time

    p = openai_params("http://unused")
    answers = answers_for(units, p)
    n = len(answers)
    cache = tmp_path / "cache"
    with FakeLLM(answers, latency_s=0.05) as llm:
        p = openai_params(llm.url, concurrency=2)
        units.to_parquet(tmp_path / "units.parquet")
        (tmp_path / "params.json").write_text(p.model_dump_json())
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(tmp_path / "units.parquet"),
                str(tmp_path / "params.json"),
                str(cache),
            ]
        )
        deadline = time.monotonic() + 60
        while _cached(cache) < n // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        k = _cached(cache)
        assert 0 < k < n
        before = llm.requests
        run = write_reports(units, p, ReportCache(cache))
    assert llm.requests - before == n - k
    assert len(run.reports) == len(units) and run.reports["unit_id"].is_unique
    assert (run.reports["source"] == "openai").all()


def test_timeout_bounds_the_whole_request_not_each_read(units, tmp_path):
    """A server sending its answer one byte at a time never lets a read time out;
    ``timeout_s`` still ends the request (it used to wait for the whole answer)."""
    one = units.head(1)
    p = openai_params("http://unused")
    answers = answers_for(one, p)
    plans = {k: ["trickle"] for k in answers}  # ~300 bytes at 10 ms each: ~3 s
    with FakeLLM(answers, plans, trickle_s=0.01) as llm:
        p = openai_params(llm.url, timeout_s=0.3, max_attempts=1)
        run = write_reports(one, p, ReportCache(tmp_path))
    assert run.stats["backend_failed"] == 1
    assert run.stats["without_backend_report"] == one["unit_id"].tolist()
    assert (run.reports["source"] == "fallback_template").all()
    assert "no complete answer within 0.3 s" in run.reports["backend_problems"].iloc[0]


def test_a_huge_answer_is_refused_and_never_cached(units, tmp_path):
    one = units.head(1)
    p = openai_params("http://unused")
    answers = {k: "A murmur. " * 50_000 for k in answers_for(one, p)}  # ~500 kB
    with FakeLLM(answers) as llm:
        p = openai_params(llm.url, max_response_bytes=100_000)
        cache = ReportCache(tmp_path)
        run = write_reports(one, p, cache)
        assert llm.requests == 1  # refused, not retried
    assert len(cache) == 0
    assert (
        "answer larger than reports.openai.max_response_bytes = 100000"
        in (run.reports["backend_problems"].iloc[0])
    )


def test_answers_that_fail_the_checks_are_not_cached_as_reports(units, tmp_path):
    """Issue "Harden", defect 7: failing answers went into the cache as reports."""
    one = units.head(2)
    p = openai_params("http://unused")
    keys = sorted(answers_for(one, p))
    answers = {
        keys[0]: "Pneumonia. " * 5_000,  # ~55 kB: under the byte cap, fails length
        keys[1]: "The recording shows pneumonia.",  # short, fails the checks
    }
    with FakeLLM(answers) as llm:
        p = openai_params(llm.url)
        cache = ReportCache(tmp_path)
        first = write_reports(one, p, cache)
        assert llm.requests == 4  # two units, each asked twice
        assert len(cache) == 0  # no report
        assert cache.failures() == 2  # the short answer and its retry
        assert first.stats["failed_not_kept"] == 2  # the long one, twice
        second = write_reports(one, p, ReportCache(tmp_path))
        assert llm.requests == 4 + 2  # the short one's two answers came back
    assert (first.reports["source"] == "fallback_template").all()
    cols = ["unit_id", "report", "backend_problems", "attempts"]
    assert second.reports[cols].equals(first.reports[cols])
