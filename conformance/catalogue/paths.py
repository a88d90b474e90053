"""Catalogue area ``explorer``: covering paths - every spec action reached at least once.

Theory of operation
-------------------
The explorer's composed system model (``spec/system.py``) was not available when this area was
written, so the covering paths come from our own breadth-first search over the spec backends
of the spec target, at the level of adapter operations:

* connections: from a freshly opened pair (copy and merged mode), every sequence of up to
  :data:`CONN_DEPTH` socket calls from a small alphabet (sends of 1, 2305 and 16352 bytes from
  ``a``; reads of 1, 2304 and 16352 bytes on ``b``; shutdown, close and abort on either side),
  deduplicated by the spec states reached. While a call runs, every
  :func:`smcd_check.spec.datapath.step` it makes is recorded (action type, and the mode);
* device: every sequence of up to :data:`DEV_DEPTH` device operations on two DMBs (register,
  unregister, attach, detach, move_data in and out of bounds, with and without signal, on an
  unknown token), recording each :mod:`smcd_check.spec.lifecycle` device function called and
  how it ended (``ok`` or the error class).

For each recorded key the first (hence shortest) operation sequence reaching it becomes a case
``explorer.cover.<key>``; connection paths end with the cursor snapshots of the endpoints
still open. The paths
are generated offline (``python -m smcd_check.conformance.catalogue.paths``) into ``paths.json``
next to this module - the search takes a minute, loading the file takes milliseconds - and a
test re-runs every stored path on the spec and checks that it still reaches its key and that
the keys cover every data-path action type in both modes. Expected observations come from the
spec like every other case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from smcd_check.conformance.runner.run import Area, Case, Step
from smcd_check.conformance.targets.adapter import Op, Ref

PATHS_FILE = Path(__file__).with_name("paths.json")
CONN_DEPTH = 4
DEV_DEPTH = 4
D = 16384
A, B = Ref("p", "a"), Ref("p", "b")
DEVICE_FUNCS = ("dev_register_dmb", "dev_unregister_dmb", "dev_attach_dmb", "dev_detach_dmb",
                "dev_move_data")


# ------------------------------------------------------------------------------------ alphabet


def _conn_alphabet() -> list[Step]:
    steps = [Step(op=Op.make("conn_send", conn=A, data=bytes(
        (i * 7 + n) & 0xFF for i in range(n)).hex())) for n in (1, 2305, 16352)]
    steps += [Step(op=Op.make("conn_recv", conn=B, max=n)) for n in (1, 2304, 16352)]
    steps += [Step(op=Op.make(what, conn=who)) for what in ("conn_shutdown", "conn_close",
                                                            "conn_abort") for who in (A, B)]
    return steps


def _dev_alphabet() -> list[Step]:
    tok = {n: Ref(n, "token") for n in ("d1", "d2")}
    steps = [Step(op=Op.make("dev_register_dmb", size=D), bind="d1"),
             Step(op=Op.make("dev_register_dmb", size=D), bind="d2")]
    for n in ("d1", "d2"):
        steps += [Step(op=Op.make(f, token=tok[n])) for f in
                  ("dev_unregister_dmb", "dev_attach_dmb", "dev_detach_dmb")]
    steps += [
        Step(op=Op.make("dev_move_data", token=tok["d1"], offset=32, data="abcd", signal=True)),
        Step(op=Op.make("dev_move_data", token=tok["d1"], offset=D - 2, data="abcd",
                        signal=True)),
        Step(op=Op.make("dev_move_data", token=tok["d1"], offset=0, data="abcd",
                        signal=False)),
        Step(op=Op.make("dev_move_data", token=0xDEAD_BEEF, offset=0, data="ab", signal=True)),
    ]
    return steps


# ------------------------------------------------------------------------------------ recorder


class _Recorder:
    """Stands in for a spec module: forwards everything, records the calls that matter."""

    def __init__(self, module: Any, hook: Callable[[str, tuple[Any, ...], Any], None],
                 names: tuple[str, ...]) -> None:
        self._module, self._hook, self._names = module, hook, names

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if name not in self._names:
            return value

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                result = value(*args, **kwargs)
            except Exception as exc:
                self._hook(name, args, exc)
                raise
            self._hook(name, args, None)
            return result

        return wrapped


def _keys_of_run(steps: list[Step]) -> set[str]:
    """Run ``steps`` on a fresh spec target; the coverage keys they reach."""
    from smcd_check.conformance.runner.run import _Handles
    from smcd_check.conformance.targets.spec_target import SpecTarget

    keys: set[str] = set()
    target = SpecTarget()
    _instrument(target, keys)
    target.reset()
    handles = _Handles()
    for st in steps:
        obs = target.apply(handles.resolve(st.op))
        if st.bind:
            handles.bindings[st.bind] = obs
    return keys


def _instrument(target: Any, keys: set[str]) -> None:
    for backend in target.backends:
        if hasattr(backend, "dp"):
            def dp_hook(name: str, args: tuple[Any, ...], exc: Any, _b: Any = backend) -> None:
                if exc is None:
                    cfg, _state, action = args
                    keys.add(f"{cfg.mode.value}.{_kebab(type(action).__name__)}")
            backend.dp = _Recorder(backend.dp, dp_hook, ("step",))
        if hasattr(backend, "lc"):
            def lc_hook(name: str, args: tuple[Any, ...], exc: Any) -> None:
                outcome = "ok" if exc is None else _kebab(type(exc).__name__)
                keys.add(f"device.{_kebab(name)}.{outcome}")
            backend.lc = _Recorder(backend.lc, lc_hook, DEVICE_FUNCS)


def _kebab(name: str) -> str:
    out = []
    for i, ch in enumerate(name.replace("_", "-")):
        if ch.isupper() and i and name[i - 1] not in "_-":
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


# ------------------------------------------------------------------------------------ search


def _bfs(prefix: list[Step], alphabet: list[Step], depth: int, *,
         budget: float) -> dict[str, list[Step]]:
    """Breadth-first over sequences: the first sequence reaching each key (prefix included)."""
    from smcd_check.conformance.runner.run import _Handles
    from smcd_check.conformance.targets.spec_target import SpecTarget

    found: dict[str, list[Step]] = {}
    seen: set[Any] = set()
    frontier: list[list[Step]] = [prefix]
    deadline = time.perf_counter() + budget
    for _level in range(depth + 1):
        nxt: list[list[Step]] = []
        for path in frontier:
            if time.perf_counter() > deadline:
                return found
            keys: set[str] = set()
            target = SpecTarget()
            _instrument(target, keys)
            target.reset()
            handles = _Handles()
            ok = True
            for st in path:
                try:
                    op = handles.resolve(st.op)
                except Exception:
                    ok = False
                    break
                obs = target.apply(op)
                if obs.error == "ENOTMODELLED":
                    ok = False
                    break
                if st.bind:
                    handles.bindings[st.bind] = obs
            if not ok:
                continue
            for key in sorted(keys):
                found.setdefault(key, path)
            fingerprint = _fingerprint(target, path)
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            nxt.extend([*path, st] for st in alphabet)
        frontier = nxt
    return found


def _fingerprint(target: Any, path: list[Step]) -> Any:
    parts: list[Any] = []
    for b in target.backends:
        if hasattr(b, "pairs"):
            parts.append(tuple((pid, p.ab.state, p.ba.state, tuple(sorted(p.handles.items())))
                               for pid, p in sorted(b.pairs.items())))
        if hasattr(b, "memory"):
            parts.append((b.state, tuple(sorted((k, bytes(v)) for k, v in b.memory.items()))))
    binds = tuple(sorted(st.bind for st in path if st.bind))
    return (tuple(parts), binds)


def _snapshots(path: list[Step]) -> list[Step]:
    """Cursor snapshots of the endpoints still open at the end of ``path`` (a closed socket
    has no cursors to show: the kernel's smc_diag no longer finds it)."""
    gone = {st.op.arg("conn") for st in path if st.op.name in ("conn_close", "conn_abort")}
    return [Step(op=Op.make("conn_cursors", conn=who)) for who in (A, B) if who not in gone]


def generate(budget: float = 600.0, progress: Callable[[str], None] | None = None
             ) -> dict[str, list[Step]]:
    """Search covering paths for connections (both modes) and the device."""
    found: dict[str, list[Step]] = {}
    for mode in ("copy", "merged"):
        if progress:
            progress(f"connections, {mode} mode")
        opener = Step(op=Op.make("conn_open", mode=mode, dmb_size=D,
                                 sndbuf_size=D if mode == "copy" else 0), bind="p")
        paths = _bfs([opener], _conn_alphabet(), CONN_DEPTH, budget=budget / 3)
        for key, path in paths.items():
            if key.startswith(mode + "."):
                found.setdefault(key, [*path, *_snapshots(path)])
    if progress:
        progress("device")
    for key, path in _bfs([], _dev_alphabet(), DEV_DEPTH, budget=budget / 3).items():
        found.setdefault(key, path)
    return dict(sorted(found.items()))


def save(found: dict[str, list[Step]], path: Path = PATHS_FILE) -> None:
    doc = {"format": "smcd-check-covering-paths", "version": 1,
           "generator": "python -m smcd_check.conformance.catalogue.paths",
           "paths": {k: [s.to_json() for s in v] for k, v in found.items()}}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def load(path: Path = PATHS_FILE) -> dict[str, list[Step]]:
    """The stored covering paths (empty when the file is absent)."""
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {k: [Step.from_json(s) for s in v] for k, v in doc["paths"].items()}


def _cases() -> Iterator[Case]:
    for key, steps in load().items():
        what = key.replace(".", " ")
        yield Case(
            id=f"explorer.cover.{key}",
            area=Area.EXPLORER,
            title=f"shortest path reaching {what}",
            description="A covering path found by breadth-first search over the spec's "
                        "data-path and lifecycle actions (every action at least once); the "
                        "target must observe what the spec observes along it.",
            source="spec/datapath.py step" if not key.startswith("device.")
            else "spec/lifecycle.py device functions (net/smc/smc_loopback.c)",
            steps=tuple(steps),
            rules=(key,),
        )


CASES: tuple[Case, ...] = tuple(_cases())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smcd_check.conformance.catalogue.paths",
                                     description="regenerate the covering paths (paths.json)")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds in total")
    parser.add_argument("--out", type=Path, default=PATHS_FILE)
    ns = parser.parse_args(argv)
    start = time.perf_counter()
    found = generate(ns.budget, progress=lambda what: print(f"searching {what}...",
                                                             file=sys.stderr))
    save(found, ns.out)
    print(f"{len(found)} covering paths written to {ns.out} in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
