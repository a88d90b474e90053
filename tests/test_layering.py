"""The layers import only what the house rules allow.

* ``spec`` imports nothing of the other layers, and nothing that does I/O, reads clocks or draws
  random numbers: it is the pure single source of truth.
* ``model`` imports no spec logic: it is an independent implementation, or checking one against
  the other proves nothing.
* ``explorer`` and ``conformance`` may import ``spec``; nothing below imports the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("spec", "model", "explorer", "conformance", "cli")

FORBIDDEN = {
    "spec": {"smcd_check.model", "smcd_check.explorer", "smcd_check.conformance", "smcd_check.cli"},
    "model": {"smcd_check.spec", "smcd_check.explorer", "smcd_check.conformance", "smcd_check.cli"},
    "explorer": {"smcd_check.conformance", "smcd_check.cli", "smcd_check.model"},
    "conformance": {"smcd_check.cli"},
}
#: modules a pure spec must not use (I/O, time, randomness, processes)
SPEC_IMPURE = {"random", "time", "socket", "subprocess", "os", "secrets", "threading", "asyncio"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def layer_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).glob("**/*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    offenders = []
    for path in layer_files(layer):
        for module in imported_modules(path):
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)


#: spec/proofs.py is the theorem catalogue and its z3 runner: it may use z3, and the clock only
#: to report how long each proof took (no behaviour of the spec depends on it).
PROOFS_ALLOWED = {"z3", "time"}


def test_spec_is_pure() -> None:
    """No module of spec/ imports I/O, clocks, randomness or processes; z3 only in proofs."""
    offenders = []
    for path in layer_files("spec"):
        allowed = PROOFS_ALLOWED if path.name == "proofs.py" else set()
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in allowed:
                continue
            if top in SPEC_IMPURE or top == "z3":
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)
