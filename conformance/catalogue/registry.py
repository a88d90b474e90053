"""The conformance catalogue: every case, with a stable id, grouped by area.

Theory of operation
-------------------
Cases live in one module per area (``cursor``, ``lifecycle``, ``datapath``,
``clc``, ``handshake``; ``lgr`` holds the lifecycle area's link-group cases) plus the
explorer-driven covering paths (``paths``). Each module exports ``CASES: tuple[Case, ...]``.
This module gathers them, checks that ids are unique and well formed (``area.topic.name``,
lowercase, dashes), and keeps their order stable (area order, then declaration order), so
reports and regressions can refer to a case id forever. A case id is never reused for a
different check.

Expected observations are computed by running each case on the spec
(:class:`~smcd_check.conformance.runner.run.ExpectationCache`); cases only *pin* kernel facts where
the kernel source states them, citing the source.
"""

from __future__ import annotations

import functools
import importlib
import re

from smcd_check.conformance.runner.run import Case

#: modules holding cases, in catalogue order
CASE_MODULES: tuple[str, ...] = (
    "smcd_check.conformance.catalogue.clc",
    "smcd_check.conformance.catalogue.handshake",
    "smcd_check.conformance.catalogue.handshake_paths",
    "smcd_check.conformance.catalogue.lifecycle",
    "smcd_check.conformance.catalogue.lgr",
    "smcd_check.conformance.catalogue.cursor",
    "smcd_check.conformance.catalogue.datapath",
    "smcd_check.conformance.catalogue.urgent",
    "smcd_check.conformance.catalogue.cdc_rx",
    "smcd_check.conformance.catalogue.close_seq",
    "smcd_check.conformance.catalogue.paths",
)

_ID = re.compile(r"^[a-z]+(\.[a-z0-9][a-z0-9-]*){2,}$")


class CatalogueError(Exception):
    """Two cases share an id, or an id is malformed."""


@functools.cache
def catalogue() -> tuple[Case, ...]:
    """Every case of every area module that imports (in a stable order).

    Raises:
        CatalogueError: a duplicate or malformed id.
    """
    out: list[Case] = []
    for name in CASE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area is not written (yet): no cases from it
                continue
            raise
        out.extend(module.CASES)
    seen: set[str] = set()
    for case in out:
        if not _ID.match(case.id):
            raise CatalogueError(f"malformed case id {case.id!r} (area.topic.name, lowercase)")
        if not case.id.startswith(case.area.value + "."):
            raise CatalogueError(f"case id {case.id!r} does not start with its area")
        if case.id in seen:
            raise CatalogueError(f"duplicate case id {case.id!r}")
        seen.add(case.id)
    return tuple(out)


def by_id(case_id: str) -> Case:
    """The case with this id.

    Raises:
        KeyError: naming the unknown id.
    """
    for case in catalogue():
        if case.id == case_id:
            return case
    raise KeyError(f"no case {case_id!r} in the catalogue")
