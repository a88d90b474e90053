"""Loading targets from a target spec string (``--target``).

Accepted forms:

* ``spec`` - the executable specification itself (:mod:`.spec_target`); it must pass everything.
* ``model`` - the project's loopback-ism model (:mod:`.model_target`).
* ``shm`` - loopback-ism over shared memory, concurrent (:mod:`.shm_target`).
* ``zoo:NAME`` - a mutant of the model that reintroduces a real kernel bug (:mod:`.zoo`).
* ``kernel`` - the real Linux 6.12 loopback-ism in qemu (:mod:`.kernel_target`, helper H8's).
* ``cmd:COMMAND LINE`` - a program speaking JSON lines (:mod:`.subprocess_target`).
* ``package.module:factory`` - any importable callable returning a
  :class:`~smcd_check.conformance.targets.adapter.Target`.

Every failure to load raises :class:`~.adapter.TargetLoadError` with one
line naming what was wrong (the CLI exits 2 with it).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from smcd_check.conformance.targets.adapter import Capability, Target, TargetLoadError

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def load_target(spec: str, *, timeout: float | None = None) -> Target:
    """Return the target named by ``spec`` (see the module docstring).

    Args:
        spec: the target spec string.
        timeout: per-answer timeout in seconds for ``cmd:`` targets.

    Raises:
        TargetLoadError: bad spec, unknown zoo mutant, import failure, factory failure, or a
            subprocess that does not start / does not answer ``hello``.
    """
    spec = spec.strip()
    if not spec:
        raise TargetLoadError("empty target spec (try 'model', 'spec', 'zoo:NAME', 'cmd:...')")
    if spec == "spec":
        from smcd_check.conformance.targets.spec_target import SpecTarget

        return SpecTarget()
    if spec == "model":
        from smcd_check.conformance.targets.model_target import ModelTarget

        return ModelTarget()
    if spec == "shm":
        return _from_import_path("smcd_check.conformance.targets.shm_target:make_shm")
    if spec == "kernel":
        return _from_import_path("smcd_check.conformance.kernel.target:make_target")
    if spec.startswith("zoo:"):
        from smcd_check.conformance.targets.zoo import load_mutant

        return load_mutant(spec[4:])
    if spec.startswith("cmd:"):
        from smcd_check.conformance.targets.subprocess_target import (
            DEFAULT_TIMEOUT,
            SubprocessTarget,
        )

        command = spec[4:].strip()
        if not command:
            raise TargetLoadError("'cmd:' needs a command line, e.g. 'cmd:python3 target.py'")
        return SubprocessTarget(command, timeout=timeout or DEFAULT_TIMEOUT)
    if _IMPORT_PATH.match(spec):
        return _from_import_path(spec)
    raise TargetLoadError(
        f"bad target spec {spec!r}: expected 'spec', 'model', 'shm', 'kernel', 'zoo:NAME', "
        "'cmd:COMMAND' or 'package.module:factory'"
    )


def _from_import_path(spec: str) -> Target:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # ImportError, the module's own failure, even sys.exit()
        raise TargetLoadError(f"cannot import {module_name!r} for target {spec!r}: "
                              f"{_what(exc)}") from exc
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise TargetLoadError(f"{module_name!r} has no callable {attr!r} (target {spec!r})")
    try:
        target = factory()
    except TargetLoadError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # TargetError, any exception, or SystemExit from the factory
        raise TargetLoadError(f"target factory {spec!r} failed: {_what(exc)}") from exc
    return check_target(target, spec)


def _what(exc: BaseException) -> str:
    """One line for an exception (``SystemExit`` says it called sys.exit)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_target(target: object, label: str) -> Target:
    """Make sure ``target`` has the Target shape; raise TargetLoadError naming what is missing."""
    missing = [m for m in ("reset", "apply", "close") if not callable(getattr(target, m, None))]
    caps = getattr(target, "capabilities", None)
    if missing:
        raise TargetLoadError(f"target {label!r} lacks method(s) {', '.join(missing)}")
    if not isinstance(caps, frozenset | set) or not all(isinstance(c, Capability) for c in caps):
        raise TargetLoadError(f"target {label!r}: 'capabilities' must be a set of Capability")
    if not isinstance(getattr(target, "name", None), str):
        raise TargetLoadError(f"target {label!r}: 'name' must be a string")
    return target  # type: ignore[return-value]


#: known shorthands, for help texts
SHORTHANDS: dict[str, str] = {
    "spec": "the executable specification (sanity: passes everything)",
    "model": "the project's loopback-ism model",
    "shm": "loopback-ism over real shared memory (threads or processes, CLC over TCP)",
    "zoo:NAME": "a model mutant reintroducing a real kernel bug (--list-zoo)",
    "kernel": "Linux 6.12 loopback-ism under qemu (needs the cached kernel image)",
    "cmd:COMMAND": "a program speaking JSON lines on stdin/stdout",
    "package.module:factory": "any importable factory returning a Target",
}

Factory = Callable[[], Target]
