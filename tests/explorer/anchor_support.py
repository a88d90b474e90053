"""Loads bench/spin_anchor_model.py (a benchmark module, not a package) for the explorer tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PATH = Path(__file__).resolve().parents[2] / "bench" / "spin_anchor_model.py"


def anchor() -> ModuleType:
    """The spin_anchor_model module (imported once)."""
    mod = sys.modules.get("spin_anchor_model")
    if mod is None:
        spec = importlib.util.spec_from_file_location("spin_anchor_model", _PATH)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["spin_anchor_model"] = mod
        spec.loader.exec_module(mod)
    return mod
