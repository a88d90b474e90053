"""pytest plugin: run the conformance catalogue as pytest tests.

Usage (once the ``pytest11`` entry point is installed the ``-p`` is not needed)::

    pytest -p smcd_check.conformance.report.pytest_plugin --smcd-target=mypkg.target:make_target
    pytest -p smcd_check.conformance.report.pytest_plugin --smcd-target=model -k datapath

With ``--smcd-target`` every catalogue case becomes one test item named by its case id (so ``-k``
selects cases); OK and NON-STRICT pass (NON-STRICT with a warning-like report line),
UNSUPPORTED is skipped, FAIL and ERROR fail with the expected vs seen trace. ``--smcd-area``
limits the areas (an unknown area is a usage error). Verdict options as the CLI's:
``--smcd-strict`` (NON-STRICT fails), ``--smcd-require CAPABILITY`` (the target must declare
it; its cases fail instead of skipping when UNSUPPORTED; an unknown name is a usage error),
``--smcd-max-unsupported SHARE`` (the session fails when more cases were UNSUPPORTED; when every
case was, it always fails). The session's one-line verdict is printed in the summary. Without
``--smcd-target`` the plugin does nothing. With ``--smcd-corpus DIR``
the traces of a regression corpus run instead of the catalogue, one test each
(:mod:`smcd_check.conformance.traces.pytest_corpus`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

_STATE_KEY: Any = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smcd-check", "SMC-D conformance catalogue")
    group.addoption("--smcd-target", metavar="SPEC", default=None,
                    help="run the smcd-check conformance catalogue against this target "
                         "(spec, model, zoo:NAME, 'cmd:...', package.module:factory)")
    group.addoption("--smcd-area", metavar="AREA", action="append", default=[],
                    help="only catalogue cases of this area (repeatable)")
    group.addoption("--smcd-timeout", metavar="SECONDS", type=float, default=5.0,
                    help="answer timeout for 'cmd:' targets")
    group.addoption("--smcd-strict", action="store_true", default=False,
                    help="NON-STRICT (right outcome, other code or reason) fails the case")
    group.addoption("--smcd-require", metavar="CAPABILITY", action="append", default=[],
                    help="the target must declare this capability (repeatable); a case "
                         "needing it that comes out UNSUPPORTED fails instead of skipping")
    group.addoption("--smcd-max-unsupported", metavar="SHARE", default=None,
                    help="fail the session when more than this share of the cases is "
                         "UNSUPPORTED (25%%, 0.25); all UNSUPPORTED always fails")
    # regression corpora (issue 17): conformance/traces/pytest_corpus.py
    group.addoption("--smcd-corpus", metavar="DIR", default=None,
                    help="run the traces of this corpus folder (one test each) instead of the "
                         "catalogue (e.g. tests/regressions)")
    group.addoption("--smcd-artifacts", metavar="DIR", default=None,
                    help="where failing corpus traces' sequence charts go (default "
                         ".smcd-artifacts/)")


class ConformanceCaseFailed(Exception):
    """A case was FAIL or ERROR: the message carries expected vs seen."""


class CatalogueCollector(pytest.Collector):
    """Collects one :class:`CaseItem` per catalogue case."""

    def collect(self) -> Iterator[pytest.Item]:
        from smcd_check.conformance.catalogue.registry import catalogue

        areas = set(_areas(self.config))
        for case in catalogue():
            if areas and case.area.value not in areas:
                continue
            yield CaseItem.from_parent(self, name=case.id, case=case)


class CaseItem(pytest.Item):
    """One conformance case run against the configured target."""

    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker(pytest.mark.smcd_conformance)
        self.add_marker(getattr(pytest.mark, f"smcd_{case.area.value}"))

    def runtest(self) -> None:
        from smcd_check.conformance.report.formats import failure_text
        from smcd_check.conformance.runner.run import Verdict, run_case

        state = _state(self.config)
        res = run_case(state["target"], self.case, state["oracle"])
        state["results"].append(res)
        self.user_properties.append(("verdict", res.verdict.value))
        self.user_properties.append(("explanation", res.explanation))
        policy = state["policy"]
        if res.verdict is Verdict.UNSUPPORTED:
            if self.case.needs & policy.require:
                raise ConformanceCaseFailed(
                    f"UNSUPPORTED but a required capability: {res.message}\n{res.explanation}")
            pytest.skip(f"UNSUPPORTED: {res.message}")
        if res.verdict.is_bad:
            raise ConformanceCaseFailed(failure_text(res))
        if res.verdict is Verdict.NON_STRICT:
            if policy.strict:
                raise ConformanceCaseFailed("--smcd-strict: " + failure_text(res))
            self.user_properties.append(("non_strict", res.message))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceCaseFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"smcd-conform {self.case.id} [{self.case.source}]"


def _areas(config: pytest.Config) -> list[str]:
    """The ``--smcd-area`` values, each checked against the catalogue's areas."""
    from smcd_check.conformance.runner.run import Area

    known = [a.value for a in Area if a is not Area.LOCKSTEP]
    areas = list(config.getoption("--smcd-area") or [])
    for area in areas:
        if area not in known:
            raise pytest.UsageError(f"--smcd-area {area!r}: unknown area; known: "
                                    f"{', '.join(known)}")
    return areas


def _policy(config: pytest.Config) -> Any:
    from smcd_check.conformance.runner.verdict import (
        VerdictPolicy,
        parse_capabilities,
        parse_share,
    )

    try:
        require = parse_capabilities(config.getoption("--smcd-require") or [])
    except ValueError as exc:
        raise pytest.UsageError(f"--smcd-require: {exc}") from exc
    share = config.getoption("--smcd-max-unsupported")
    try:
        max_unsupported = parse_share(share) if share else None
    except ValueError as exc:
        raise pytest.UsageError(f"--smcd-max-unsupported: {exc}") from exc
    return VerdictPolicy(strict=bool(config.getoption("--smcd-strict")), require=require,
                         max_unsupported=max_unsupported)


def _state(config: pytest.Config) -> dict[str, Any]:
    state = config.stash.get(_STATE_KEY, None)
    if state is None:
        from smcd_check.conformance.runner.run import ExpectationCache
        from smcd_check.conformance.targets.adapter import TargetLoadError
        from smcd_check.conformance.targets.load import load_target
        from smcd_check.conformance.targets.spec_target import SpecTarget

        _areas(config)
        policy = _policy(config)
        spec = config.getoption("--smcd-target")
        try:
            target = load_target(spec, timeout=config.getoption("--smcd-timeout"))
        except TargetLoadError as exc:
            raise pytest.UsageError(f"--smcd-target: {exc}") from exc
        lacking = sorted(c.value for c in policy.require - target.capabilities)
        if lacking:
            target.close()
            raise pytest.UsageError(f"--smcd-require: the target {target.name!r} lacks "
                                    f"{', '.join(lacking)}")
        state = {"target": target, "oracle": ExpectationCache(SpecTarget()),
                 "policy": policy, "results": []}
        config.stash[_STATE_KEY] = state
    return state


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smcd_conformance: a case of the smcd-check catalogue")
    config.addinivalue_line("markers", "smcd_corpus: a trace of an smcd-check regression corpus")
    if config.getoption("--smcd-corpus") and not config.getoption("--smcd-target"):
        raise pytest.UsageError("--smcd-corpus needs --smcd-target (the implementation to run "
                                "the traces on)")
    for area in ("clc", "handshake", "lifecycle", "cursor", "datapath", "explorer"):
        config.addinivalue_line("markers", f"smcd_{area}: smcd-check catalogue area {area}")
    if config.getoption("--smcd-target"):
        _state(config)  # a bad target is a usage error before collection


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Add the catalogue's items first, so pytest's own ``-k`` / ``-m`` selection applies."""
    if not config.getoption("--smcd-target"):
        return
    if config.getoption("--smcd-corpus"):
        from smcd_check.conformance.traces.pytest_corpus import collect

        items.extend(collect(session, config.getoption("--smcd-corpus")))
        return
    collector = CatalogueCollector.from_parent(session, name="smcd-conformance")
    items.extend(collector.collect())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run-level rules: nothing checked, or too many UNSUPPORTED, fails the session."""
    state = session.config.stash.get(_STATE_KEY, None)
    if state is None or not state["results"]:
        return
    from smcd_check.conformance.runner.run import RunResult
    from smcd_check.conformance.runner.verdict import judge

    target = state["target"]
    run = RunResult(target=target.name, capabilities=target.capabilities,
                    results=list(state["results"]))
    verdict = judge(run, state["policy"])
    state["verdict"] = verdict
    if not verdict.passed and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    verdict = state.get("verdict") if state else None
    if verdict is not None:
        terminalreporter.write_line(
            f"smcd-check conformance: {'PASS' if verdict.passed else 'FAIL'}: {verdict.reason}")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is not None:
        state["target"].close()
