"""The catalogue: stable ids, kernel sources, every area covered; spec and model pass it all."""

from __future__ import annotations

import re

import pytest

from smcd_check.conformance.catalogue.registry import CatalogueError, by_id, catalogue
from smcd_check.conformance.runner.run import Area, ExpectationCache, Verdict, run_cases
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.spec_target import SpecTarget


def test_ids_are_unique_well_formed_and_carry_their_area() -> None:
    ids = [c.id for c in catalogue()]
    assert len(ids) == len(set(ids))
    for case in catalogue():
        assert re.fullmatch(r"[a-z]+(\.[a-z0-9][a-z0-9-]*){2,}", case.id), case.id
        assert case.id.startswith(case.area.value + ".")
        assert case.source and case.title and case.description, case.id
        assert case.steps, case.id


def test_every_area_has_cases_including_error_paths() -> None:
    areas = {c.area for c in catalogue()}
    assert {Area.CLC, Area.HANDSHAKE, Area.LIFECYCLE, Area.CURSOR, Area.DATAPATH} <= areas
    error_cases = [c for c in catalogue()
                   if any(p.error is not None for p in c.pins)]
    assert len(error_cases) >= 20  # -EINVAL, -EPROTO, -EPIPE, ... pinned from the kernel


def test_by_id_names_an_unknown_id() -> None:
    assert by_id("clc.proposal.loopback-v2").area is Area.CLC
    with pytest.raises(KeyError, match=r"no case 'clc\.nothing\.here'"):
        by_id("clc.nothing.here")


def test_catalogue_error_is_an_exception_type() -> None:
    assert issubclass(CatalogueError, Exception)


def test_the_spec_passes_every_case_and_every_pinned_kernel_fact() -> None:
    """Sanity: the spec target is the oracle; any pin it contradicts would be an ERROR."""
    run = run_cases(SpecTarget(), catalogue(), ExpectationCache(SpecTarget()))
    bad = [(r.case.id, r.message) for r in run.results if r.verdict is not Verdict.OK]
    assert not bad


def test_the_model_passes_everything_it_supports() -> None:
    run = run_cases(ModelTarget(), catalogue(), ExpectationCache(SpecTarget()))
    counts = run.counts()
    bad = [(r.case.id, r.message) for r in run.results if r.verdict.is_bad]
    assert not bad
    assert counts[Verdict.OK] >= 60  # every lifecycle, datapath and connection-cursor case
    assert counts[Verdict.NON_STRICT] == 0
    # the model has no CLC codec and no handshake: those cases are UNSUPPORTED, not failed
    unsupported = {r.case.area for r in run.results if r.verdict is Verdict.UNSUPPORTED}
    assert unsupported == {Area.CLC, Area.HANDSHAKE, Area.CURSOR}
