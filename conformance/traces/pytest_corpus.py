"""A regression corpus folder as pytest tests (``pytest --smcd-target=T --smcd-corpus=DIR``).

One test per trace file, named ``corpus/<name>``: OK passes, UNSUPPORTED (the target lacks what
the trace needs) is skipped with the reason, FAIL and ERROR fail with the one-line verdict, the
interleaving notes, the failing plan as a text sequence chart with the failing operation
marked, and the chart as SVG written to ``--smcd-artifacts`` (default ``.smcd-artifacts/``
under pytest's root; its path is in the report and in the test's ``user_properties``, so JUnit
XML carries it). The hooks live in :mod:`smcd_check.conformance.report.pytest_plugin`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class CorpusTraceFailed(Exception):
    """A corpus trace FAILed or ERRORed on the target: the message is the whole report."""


def collect(session: pytest.Session, folder: str) -> Iterator[pytest.Item]:
    """One :class:`TraceItem` per trace file of ``folder``.

    Raises:
        pytest.UsageError: the folder does not exist or holds no trace.
    """
    from smcd_check.conformance.traces.corpus import CorpusError, entries

    try:
        files = entries(Path(folder))
    except CorpusError as exc:
        raise pytest.UsageError(f"--smcd-corpus: {exc}") from exc
    if not files:
        raise pytest.UsageError(f"--smcd-corpus: {folder!r} holds no trace (*.json)")
    parent = CorpusCollector.from_parent(session, name="smcd-corpus")
    for path in files:
        yield TraceItem.from_parent(parent, name=f"corpus/{path.stem}", trace_path=path)


class CorpusCollector(pytest.Collector):
    """The parent node of the corpus items."""

    def collect(self) -> Iterator[pytest.Item]:  # pragma: no cover - items are added directly
        return iter(())


class TraceItem(pytest.Item):
    """One corpus trace replayed on the configured target."""

    def __init__(self, *, trace_path: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace_path = trace_path
        self.add_marker(pytest.mark.smcd_corpus)

    def runtest(self) -> None:
        from smcd_check.conformance.report.pytest_plugin import _state
        from smcd_check.conformance.runner.run import Verdict
        from smcd_check.conformance.traces.replay import TraceError, load, replay

        try:
            trace = load(self.trace_path)
        except (TraceError, RecursionError) as exc:
            raise CorpusTraceFailed(f"{self.trace_path}: malformed trace: {exc}") from exc
        target = _state(self.config)["target"]
        out = replay(trace, target)
        self.user_properties.append(("verdict", out.verdict.value))
        if out.verdict is Verdict.UNSUPPORTED:
            pytest.skip(f"UNSUPPORTED: {out.message}")
        if out.verdict.is_bad:
            raise CorpusTraceFailed(self._report(trace, out))

    def _report(self, trace: Any, out: Any) -> str:
        from smcd_check.conformance.traces.chart import plan_svg, text_chart

        lines = [f"{out.verdict.value}: {out.message}"]
        lines += [f"note: {n}" for n in out.notes]
        run = next((r for r in out.runs if r.result.verdict is out.verdict), None)
        if run is not None:
            failing = run.result.failing_step
            index = failing.index if failing is not None else None
            lines.append(f"sequence chart ({run.plan.lens}/{run.plan.route}; >> marks the "
                         "failing operation):")
            lines += text_chart(run.plan, index)
            folder = Path(self.config.getoption("--smcd-artifacts")
                          or Path(str(self.config.rootpath)) / ".smcd-artifacts")
            try:
                folder.mkdir(parents=True, exist_ok=True)
                svg = folder / f"{trace.name}.{out.target.replace(':', '_')}.svg"
                svg.write_text(plan_svg(trace, run.plan, failing=index, message=out.message)
                               + "\n")
                self.user_properties.append(("msc", str(svg)))
                lines.append(f"chart: {svg}")
            except OSError as exc:
                lines.append(f"(chart not written: {exc})")
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, CorpusTraceFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.trace_path, None, f"smcd-corpus {self.trace_path.name}"
