"""The spec as a target: the executable specification behind the adapter interface.

Theory of operation
-------------------
The runner computes every expected observation by running a case on this target, so it is the
oracle of the whole suite; run as ``--target spec`` it must pass everything (a sanity check of
the catalogue and the adapter). It holds spec *states* and advances them only with the spec's
pure transition functions; it never computes an answer itself. Each capability is backed by one
spec module and is offered only when that module imports:

* ``cursor`` - :mod:`smcd_check.spec.cursor` (kernel-faithful ``smc_curs_*``);
* ``device`` / ``device-nocopy`` - :mod:`smcd_check.spec.lifecycle` (see :mod:`.spec_device`);
* ``conn-copy`` / ``conn-merged`` - :mod:`smcd_check.spec.datapath` and
  :mod:`smcd_check.spec.close` (see :mod:`.spec_conn`); ``lgr-lifecycle``, ``cdc-inject``,
  ``conn-state`` - :mod:`smcd_check.spec.lifecycle`, :mod:`smcd_check.spec.cdc_rx` and the close
  machine on the connections' own devices (see :mod:`.spec_sockets`);
* ``clc`` / ``handshake`` - :mod:`smcd_check.spec.clc` and :mod:`smcd_check.spec.handshake`
  (see :mod:`.spec_clc`);
* ``urgent`` - :mod:`smcd_check.spec.duplex` (see :mod:`.spec_urgent`): its pairs answer the
  ordinary ``conn_*`` operations too.

Refusals: a spec error (:class:`~smcd_check.spec.errors.SpecError`) that carries an errno name or
decline code becomes that refusal; the mapping is written next to each capability.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from smcd_check.conformance.targets.adapter import Capability, Observation, Op, TargetBroken


class Backend(Protocol):
    """One capability group of the spec target."""

    capabilities: frozenset[Capability]
    ops: frozenset[str]

    def reset(self) -> None: ...

    def apply(self, op: Op) -> Observation: ...


class CursorBackend:
    """``curs_*`` operations on :mod:`smcd_check.spec.cursor` (the kernel-faithful functions)."""

    capabilities = frozenset({Capability.CURSOR})
    ops = frozenset({"curs_add", "curs_diff", "curs_comp", "curs_diff_large"})

    def __init__(self) -> None:
        from smcd_check.spec import cursor

        self.cursor = cursor

    def reset(self) -> None:
        """Stateless."""

    def _curs(self, value: Any, arg: str) -> Any:
        if not (isinstance(value, list | tuple) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise ValueError(f"{arg}={value!r}: expected [wrap, count]")
        return self.cursor.Cursor(wrap=value[0], count=value[1])

    def apply(self, op: Op) -> Observation:
        from smcd_check.spec.errors import SpecError

        c = self.cursor
        a = op.kwargs()
        try:
            if op.name == "curs_add":
                cur = c.smc_curs_add(a["size"], self._curs(a["curs"], "curs"), a["value"])
                return Observation.success({"curs": [cur.wrap, cur.count]})
            old, new = self._curs(a["old"], "old"), self._curs(a["new"], "new")
            fn = {"curs_diff": c.smc_curs_diff, "curs_comp": c.smc_curs_comp,
                  "curs_diff_large": c.smc_curs_diff_large}[op.name]
            return Observation.success({"value": fn(a["size"], old, new)})
        except (SpecError, ValueError) as exc:
            return Observation.failure("EINVAL", str(exc))


#: backends in the order they are tried: (module path, class name)
_BACKENDS: tuple[tuple[str, str], ...] = (
    ("smcd_check.conformance.targets.spec_target", "CursorBackend"),
    ("smcd_check.conformance.targets.spec_device", "DeviceBackend"),
    ("smcd_check.conformance.targets.spec_sockets", "LgrConnBackend"),
    ("smcd_check.conformance.targets.spec_clc", "ClcBackend"),
    ("smcd_check.conformance.targets.spec_clc", "HandshakeBackend"),
    ("smcd_check.conformance.targets.spec_lgr", "LinkGroupBackend"),  # issue 17
    ("smcd_check.conformance.targets.spec_urgent", "UrgentBackend"),  # issue 11
)


class SpecTarget:
    """The executable specification as a :class:`~smcd_check.conformance.targets.adapter.Target`.

    Capabilities are those of the spec modules that import; :attr:`missing` says why any other
    is absent (e.g. a spec module not written yet).
    """

    name = "spec"

    def __init__(self) -> None:
        self.backends: list[Any] = []
        self.missing: dict[str, str] = {}
        for module_name, cls_name in _BACKENDS:
            try:
                module = importlib.import_module(module_name)
                backend = getattr(module, cls_name)()
            except (ImportError, AttributeError) as exc:
                self.missing[cls_name] = f"{type(exc).__name__}: {exc}"
                continue
            self.backends.append(backend)
        self._by_op = {name: b for b in self.backends for name in b.ops}
        caps: set[Capability] = set()
        for b in self.backends:
            caps |= b.capabilities
        self.capabilities: frozenset[Capability] = frozenset(caps)

    def reset(self) -> None:
        for b in self.backends:
            b.reset()

    def apply(self, op: Op) -> Observation:
        # a pair operation on a handle a backend owns (conn_open_urg pairs) goes to it
        owner = next((b for b in self.backends if getattr(b, "owns", None) and b.owns(op)),
                     None)
        backend = owner or self._by_op.get(op.name)
        if backend is None:
            raise TargetBroken(f"the spec target has no backend for {op.name}")
        result: Observation = backend.apply(op)
        return result

    def close(self) -> None:
        """Nothing to release."""
