"""Regression corpus folders: saved, shrunk traces that run as tests on every target.

Theory of operation
-------------------
A corpus is a folder of trace files (``NAME.json``, version 2) and their sequence charts
(``NAME.svg``). ``smcd-check trace save TRACE --name NAME [--corpus DIR]`` adds one
(:func:`prepare` then :func:`save`); the pytest plugin collects a folder as one test per trace
(``pytest --smcd-target=T --smcd-corpus=DIR``); ``smcd-check replay`` runs any single file.

Saving shrinks: every plan of the trace that fails on the *faulty target* (by default the zoo
mutant that reintroduces the trace's explorer fault, :data:`FAULT_MUTANTS`, or the target a
lockstep trace failed on) is reduced with ddmin (:mod:`.shrink`) to the fewest operations that
still fail there and pass on the spec; a plan that does not fail on the faulty target is dropped
(it would pass everywhere and test nothing of this bug). The explorer's system steps stay in the
file, so the trace still replays on the spec and draws the same chart as ``explore --msc-out``.

The project's own corpus is ``tests/regressions/`` of the repository: one trace per explorer
fault and per zoo mutant (:func:`generate`, ``smcd-check trace corpus``); a test checks that
every fault and every mutant is there and that each fails on its mutant and passes on the spec
and the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Target
from smcd_check.conformance.traces.plans import Plan
from smcd_check.conformance.traces.replay import TraceDoc, TraceError, load

#: the zoo mutant that reintroduces each explorer fault's bug class in the model
FAULT_MUTANTS: dict[str, str] = {
    "merged-ignores-cons": "merged-frees-at-send",
    "comp-ignores-wrap": "diff-ignores-wrap",
    "unregister-while-attached": "unregister-frees-attached",
    "space-forgets-in-flight": "copy-space-forgets-in-flight",
    "no-consumer-update": "no-consumer-update",
    "lgr-reuse-peer-mismatch": "lgr-reuse-ignores-peer",
}

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


class CorpusError(ValueError):
    """A bad corpus name or folder, or a trace that cannot be saved (one line, exit 2)."""


def project_corpus() -> Path:
    """The project's corpus, ``tests/regressions/`` beside this package in the repository."""
    return Path(__file__).resolve().parents[2] / "tests" / "regressions"


def entries(folder: Path) -> list[Path]:
    """The trace files of a corpus folder, by name.

    Raises:
        CorpusError: the folder does not exist.
    """
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {str(folder)!r} does not exist")
    return sorted(p for p in folder.glob("*.json") if p.is_file())


@dataclass(slots=True)
class Prepared:
    """A trace document ready to save, and what preparing it did."""

    doc: dict[str, Any]
    report: list[str]
    trace: TraceDoc


def faulty_target_for(trace: TraceDoc) -> str | None:
    """The target a trace should fail on: the fault's mutant, or the lockstep's target."""
    fault = trace.doc.get("fault")
    if isinstance(fault, str) and fault in FAULT_MUTANTS:
        return f"zoo:{FAULT_MUTANTS[fault]}"
    origin = trace.doc.get("origin") or {}
    target = origin.get("target") if isinstance(origin, dict) else None
    return str(target or trace.doc.get("target") or "") or None


def prepare(trace: TraceDoc, faulty: Target | None, *, name: str) -> Prepared:
    """Shrink ``trace``'s plans against ``faulty`` (None: keep them as they are) and build the
    version-2 document to save.

    Raises:
        CorpusError: no plan of the trace fails on ``faulty`` (nothing would be kept).
    """
    from smcd_check.conformance.traces.shrink import shrink

    report: list[str] = []
    plans: list[Plan] = list(trace.plans)
    shrunk_from = sum(len(p.steps) for p in plans)
    if faulty is not None:
        kept: list[Plan] = []
        for p in plans:
            if not p.needs <= faulty.capabilities:
                report.append(f"{p.lens}/{p.route}: dropped ({faulty.name} cannot run it)")
                continue
            res = shrink(p, faulty)
            if res is None:
                report.append(f"{p.lens}/{p.route}: dropped (passes on {faulty.name}: it "
                              "does not test this bug)")
                continue
            report.append(f"{p.lens}/{p.route}: {res.before} -> {len(res.plan.steps)} "
                          f"operations ({res.tests} candidates tried)")
            kept.append(res.plan)
        if not kept:
            raise CorpusError(f"no plan of the trace fails on {faulty.name}: nothing to keep "
                              "as a regression test (give the faulty target with --shrink-on)")
        plans = kept
    doc = _document(trace, plans, name)
    if faulty is not None:
        doc["origin"]["target"] = faulty.name
        doc["origin"]["shrunk_from"] = shrunk_from
    return Prepared(doc=doc, report=report, trace=trace)


def _document(trace: TraceDoc, plans: list[Plan], name: str) -> dict[str, Any]:
    src = trace.doc
    doc: dict[str, Any] = {k: v for k, v in src.items() if k not in ("steps", "observations")}
    doc.update({"format": "smcd-check-trace", "version": 2, "kind": trace.kind, "name": name})
    if trace.kind == "explorer":
        doc["steps"] = src["steps"]
    origin = src.get("origin") if isinstance(src.get("origin"), dict) else None
    doc["origin"] = dict(origin or {"tool": "smcd-check conform --save-trace",
                                    "implementation": "spec",
                                    "target": src.get("target")})
    if "property" not in doc:
        doc["property"] = {"name": trace.property_name, "kind": "conformance"}
    doc.pop("target", None)
    doc["plans"] = [p.to_json() for p in plans]
    doc["unmapped"] = [u.to_json() for u in trace.unmapped]
    return doc


def save(prepared: Prepared, folder: Path, name: str, *, force: bool = False) -> list[Path]:
    """Write ``NAME.json`` and its chart ``NAME.svg`` into ``folder`` (created if missing).

    Raises:
        CorpusError: a bad name, an existing entry without ``force``, an unwritable folder.
    """
    from smcd_check.conformance.traces.chart import chart_svg

    if not NAME_RE.match(name):
        raise CorpusError(f"--name {name!r}: use lowercase letters, digits, '.', '_' and '-' "
                          "(up to 80, starting with a letter or digit)")
    target = folder / f"{name}.json"
    if target.exists() and not force:
        raise CorpusError(f"{str(target)!r} exists; pass --force to replace it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(prepared.doc, indent=1, sort_keys=True) + "\n")
        svg = folder / f"{name}.svg"
        svg.write_text(chart_svg(load(prepared.doc, name=name)) + "\n")
    except OSError as exc:
        raise CorpusError(f"cannot write to corpus folder {str(folder)!r}: {exc}") from exc
    return [target, svg]


# ------------------------------------------------------------------ the project's corpus


def _explorer_trace(fault: str) -> dict[str, Any]:
    from smcd_check.conformance.traces.document import with_plans
    from smcd_check.explorer.engine import Explorer
    from smcd_check.explorer.trace import trace_document
    from smcd_check.spec import configs
    from smcd_check.spec.faults import parse_fault

    name = configs.FAULT_CONFIGS[parse_fault(fault)]
    model: Any = configs.build_system(name, fault)
    result = Explorer(model).bfs()
    disc = result.violation
    if disc is None:
        raise CorpusError(f"the explorer found no violation for fault {fault}")
    doc = trace_document(disc, model, family="smcd-system", config=name, fault=fault,
                         explored_states=result.unique_state_count)
    return with_plans(doc)


def _shortest_killing_case(mutant: str) -> tuple[Any, Target] | None:
    from smcd_check.conformance.catalogue.registry import catalogue
    from smcd_check.conformance.runner.run import ExpectationCache, Verdict, run_case
    from smcd_check.conformance.targets.spec_target import SpecTarget
    from smcd_check.conformance.targets.zoo import load_mutant

    target = load_mutant(mutant)
    oracle = ExpectationCache(SpecTarget())
    best = None

    def kernel_runnable(case: Any) -> bool:
        # prefer a case the real kernel can run too (merged pairs, no abort system call), so
        # the corpus tests the kernel wherever the bug class can be shown through its sockets
        return case.needs <= {Capability.CONN_MERGED} and all(
            st.op.name != "conn_abort" for st in case.steps)

    for case in sorted(catalogue(), key=lambda c: (not kernel_runnable(c), len(c.steps), c.id)):
        if not case.needs <= target.capabilities:
            continue
        if run_case(target, case, oracle).verdict is Verdict.FAIL:
            best = case
            break
    return (best, target) if best is not None else None


def generate(folder: Path, *, progress: Callable[[str], None] | None = None,
             only: set[str] | None = None) -> Iterator[str]:
    """(Re)write the project's corpus into ``folder``: for every explorer fault its explorer
    trace shrunk against the fault's mutant (``fault-<name>``), and for every other zoo mutant
    the shortest catalogue case that kills it, shrunk against it (``zoo-<name>``). Yields one
    line per entry."""
    from smcd_check.conformance.targets.load import load_target
    from smcd_check.conformance.targets.zoo import MUTANTS
    from smcd_check.conformance.traces.document import conformance_document
    from smcd_check.spec.faults import Fault

    covered: set[str] = set()
    for fault in Fault:
        name = f"fault-{fault.value}"
        mutant = FAULT_MUTANTS.get(fault.value)
        if mutant is None or mutant not in MUTANTS or (only and name not in only):
            continue
        if progress:
            progress(name)
        trace = load(_explorer_trace(fault.value), name=name)
        faulty = load_target(f"zoo:{mutant}")
        try:
            prepared = prepare(trace, faulty, name=name)
        except CorpusError as exc:
            yield f"{name}: not saved: {exc}"
            continue
        finally:
            faulty.close()
        save(prepared, folder, name, force=True)
        covered.add(mutant)
        yield f"{name}: {'; '.join(prepared.report)}"
    for mutant in MUTANTS:
        name = f"zoo-{mutant}"
        if mutant in covered or (only and name not in only):
            continue
        if progress:
            progress(name)
        found = _shortest_killing_case(mutant)
        if found is None:
            yield f"{name}: not saved: no catalogue case kills it"
            continue
        case, faulty = found
        try:
            doc = conformance_document(case.steps, target=faulty.name,
                                       failure=f"catalogue case {case.id} fails",
                                       tool=f"smcd-check trace corpus (catalogue case {case.id})")
            prepared = prepare(load(doc, name=name), faulty, name=name)
        except (CorpusError, TraceError, ValueError) as exc:
            yield f"{name}: not saved: {exc}"
            continue
        finally:
            faulty.close()
        save(prepared, folder, name, force=True)
        yield f"{name}: {case.id}: {'; '.join(prepared.report)}"
