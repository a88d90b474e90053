"""Reports: console summary, JSON, JUnit XML, self-contained HTML with a sequence chart."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from smcd_check.conformance.catalogue.registry import catalogue
from smcd_check.conformance.report import formats as report
from smcd_check.conformance.runner.run import Area, ExpectationCache, RunResult, Verdict, run_cases
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.conformance.targets.zoo import load_mutant


@pytest.fixture(scope="module")
def run() -> RunResult:
    """The move-no-bounds mutant on the lifecycle and clc areas: OK, FAIL and UNSUPPORTED."""
    cases = [c for c in catalogue() if c.area in (Area.LIFECYCLE, Area.CLC)]
    return run_cases(load_mutant("move-no-bounds"), cases, ExpectationCache(SpecTarget()))


def test_console_summary_counts_per_area_and_shows_expected_vs_seen(run: RunResult) -> None:
    buf = io.StringIO()
    report.print_console(run, Console(file=buf, width=120, color_system=None))
    text = buf.getvalue()
    assert "lifecycle" in text and "UNSUPPORTED" in text
    assert "FAIL        lifecycle.move.bounds-past-end" in text
    assert "expected error EINVAL" in text and "seen     error EPIPE" in text


def test_json_report_has_every_case_with_steps(run: RunResult) -> None:
    doc = json.loads(report.render_json(run))
    assert doc["format"] == "smcd-check-conformance" and doc["version"] == 2
    assert doc["counts"]["FAIL"] == 2 and doc["counts"]["UNSUPPORTED"] > 0
    failing = next(r for r in doc["results"] if r["id"] == "lifecycle.move.bounds-past-end")
    bad_step = failing["steps"][1]
    assert bad_step["expected"] == {"ok": False, "error": "EINVAL", "detail": bad_step[
        "expected"]["detail"]}
    assert bad_step["seen"]["error"] == "EPIPE"


def test_junit_report_parses_and_counts_failures_and_skips(run: RunResult) -> None:
    root = ET.fromstring(report.render_junit(run))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["lifecycle"].get("failures") == "2"
    assert int(suites["clc"].get("skipped") or 0) == len(suites["clc"].findall("testcase"))
    failure = root.find(".//testcase[@name='lifecycle.move.bounds-past-end']/failure")
    assert failure is not None and "EPIPE" in (failure.text or "")


def test_html_report_is_self_contained_with_a_sequence_chart(run: RunResult) -> None:
    page = report.render_html(run)
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "marker-end" in page
    assert "src=" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert 'id="lifecycle.move.bounds-past-end"' in page
    assert "<script" not in page


def test_render_refuses_an_unknown_format(run: RunResult) -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        report.render(run, "pdf")


def test_failure_text_names_the_case_and_its_kernel_source(run: RunResult) -> None:
    res = next(r for r in run.results if r.verdict is Verdict.FAIL)
    text = report.failure_text(res)
    assert res.case.id in text and res.case.source in text and "expected" in text
