"""Every field of a state as HTML, by walking the frozen dataclasses (no per-field code).

A new field in any state dataclass shows up without a change here. A few value types get a
richer view, chosen by type, not by field name:

* ``bytes`` holding a CLC message: decoded and dissected field by field with the spec's own
  codec (:func:`smcd_check.spec.clc.dissect`), as ``smcd-check decode`` prints it; bytes that
  are not a whole CLC message are shown in hex with the codec's reason;
* a :class:`~smcd_check.spec.cursor.Cursor`: both views, the kernel's ``(wrap, count)`` and the
  abstract position ``wrap * size + count`` in the cursor period (``2**wrap_bits * size``),
  when the caller can tell which ring the cursor lives in;
* a tuple of dataclasses of one type with few fields (DMB nodes and their ``refcnt``, link
  groups, CDC messages): one table, a row per item, a column per field.

Every rendered field carries ``data-path`` (the dotted path :func:`~..render.diff_states`
uses, e.g. ``lc.nodes[0].refcnt``) and the fields changed by the last step are marked.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable
from typing import Any

from markupsafe import Markup

from smcd_check.spec import clc
from smcd_check.spec.cursor import Cursor, Ring, position

#: a tuple of dataclasses becomes one table when the type has at most this many fields, all of
#: them flat (scalars, enums, cursors, short tuples of scalars)
GRID_MAX_FIELDS = 32
#: the CLC eyecatchers ("SMCR"/"SMCD" in EBCDIC) share these bytes: other bytes are not CLC
_EYECATCHER_PREFIX = bytes.fromhex("e2d4c3")

RingFor = Callable[[str], Ring | None]


def _is_dc(v: Any) -> bool:
    return dataclasses.is_dataclass(v) and not isinstance(v, type)


class _Changed:
    """Which paths changed (leaves) and which hold a change further down (ancestors)."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = set(paths)
        self.prefixes: set[str] = set()
        for p in self.paths:
            for k, ch in enumerate(p):
                if ch in ".[":
                    self.prefixes.add(p[:k])

    def __call__(self, path: str) -> str:
        """The CSS class for ``path``: ``changed``, ``haschanged`` (below it) or empty."""
        if path in self.paths:
            return " changed"
        return " haschanged" if path in self.prefixes else ""


def _flat(v: Any) -> bool:
    """A value that fits a table cell."""
    if v is None or isinstance(v, (bool, int, float, str, enum.Enum, Cursor)):
        return True
    if isinstance(v, (tuple, frozenset)):
        return len(v) <= 8 and all(isinstance(x, (bool, int, str, enum.Enum)) for x in v)
    return False


def render_bytes(data: bytes, path: str) -> Markup:
    """CLC messages decoded; other bytes as hex (and as text when printable ASCII)."""
    if data.startswith(_EYECATCHER_PREFIX):
        return render_clc(data, path)
    text = ""
    if all(32 <= c < 127 for c in data.rstrip(b"\0 ")) and data.strip(b"\0 "):
        text = data.rstrip(b"\0 ").decode("ascii")
    hexed = data.hex(" ") if len(data) <= 24 else data[:24].hex(" ") + f" ... ({len(data)} bytes)"
    if text:
        return Markup("<span class='text'>{}</span> <span class='hex'>{}</span>").format(
            repr(text), hexed
        )
    return Markup("<span class='hex'>{}</span>").format(hexed)


def clc_summary(data: bytes) -> tuple[str, list[clc.Field] | None, str | None]:
    """(one-line summary, dissected fields or None, the codec's error or None)."""
    try:
        msg = clc.decode(data)
        fields = clc.dissect(data)
    except clc.ClcError as exc:
        return f"{len(data)} bytes, not a whole CLC message", None, str(exc)
    kind = type(msg).__name__
    extra = ""
    if isinstance(msg, clc.Decline):
        extra = f", peer_diagnosis 0x{msg.peer_diagnosis:08x}"
    return f"CLC {kind} v{msg.version} ({len(data)} bytes{extra})", fields, None


def _value_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex(" ") if len(v) <= 16 else v[:16].hex(" ") + " ..."
    if isinstance(v, int):
        return f"{v} (0x{v:x})" if v > 9 else str(v)
    return str(v)


def render_clc(data: bytes, path: str) -> Markup:
    """A CLC message: a summary that opens into the field-by-field dissection."""
    summary, fields, error = clc_summary(data)
    if fields is None:
        return Markup(
            "<div class='clc bad'><span class='hex'>{}</span> <span class='why'>{}</span></div>"
        ).format(data.hex(" "), error or summary)
    rows = Markup("").join(
        Markup(
            "<tr><td class='fname'>{}</td><td class='off'>{}</td><td class='hex'>{}</td>"
            "<td>{}</td><td class='meaning'>{}</td></tr>"
        ).format(
            f.name,
            f"{f.offset}" + (f" &{f.mask:02x}" if f.mask is not None else ""),
            f.raw.hex(" ") if len(f.raw) <= 16 else f.raw[:16].hex(" ") + " ...",
            _value_text(f.value) if f.value is not None else "",
            f.meaning,
        )
        for f in fields
    )
    return Markup(
        "<details class='clc' data-clc='{}'><summary>{}</summary>"
        "<table class='dissect'><tr><th>field</th><th>offset</th><th>raw</th><th>value</th>"
        "<th>meaning</th></tr>{}</table></details>"
    ).format(path, summary, rows)


def render_cursor(c: Cursor, path: str, ring_for: RingFor) -> Markup:
    """``(wrap, count)`` and, when the ring is known, the abstract position."""
    kernel = Markup("<span class='curs' title='kernel view: (wrap, count)'>({}, {})</span>").format(
        c.wrap, c.count
    )
    ring = ring_for(path)
    if ring is None or c.count >= ring.size:
        return kernel
    return kernel + Markup(
        " <span class='pos' title='abstract view: wrap*size+count mod 2^wrap_bits*size'>"
        "pos {} of {}</span>"
    ).format(position(ring, c), ring.period)


class StateRenderer:
    """Renders one state; ``ring_for(path)`` names the ring of the cursor at ``path``."""

    def __init__(self, *, changed: Iterable[str] = (), ring_for: RingFor | None = None) -> None:
        self.changed = _Changed(changed)
        self.ring_for: RingFor = ring_for if ring_for is not None else (lambda _p: None)

    def _mark(self, path: str) -> str:
        return self.changed(path)

    def render(self, state: Any) -> Markup:
        """The whole state (a dataclass) as nested tables."""
        return self.value(state, "")

    def value(self, v: Any, path: str) -> Markup:
        if v is None:
            return Markup("<span class='none'>None</span>")
        if isinstance(v, bool):
            return Markup("<span class='bool {}'>{}</span>").format(str(v).lower(), v)
        if isinstance(v, enum.Enum):
            return Markup("<span class='enum'>{}</span>").format(v.name)
        if isinstance(v, (int, float, str)):
            return Markup("<span class='scalar'>{}</span>").format(
                repr(v) if isinstance(v, str) else v
            )
        if isinstance(v, (bytes, bytearray)):
            if not v:
                return Markup("<span class='empty'>(no bytes)</span>")
            return render_bytes(bytes(v), path)
        if isinstance(v, Cursor):
            return render_cursor(v, path, self.ring_for)
        if _is_dc(v):
            return self.dataclass(v, path)
        if isinstance(v, (tuple, list)):
            return self.sequence(v, path)
        if isinstance(v, (frozenset, set)):
            items = sorted(v, key=repr)
            return Markup("<span class='set'>{{{}}}</span>").format(
                Markup(", ").join(self.value(x, path) for x in items)
            )
        return Markup("<span class='scalar'>{}</span>").format(repr(v))

    def dataclass(self, v: Any, path: str) -> Markup:
        rows = []
        for f in dataclasses.fields(v):
            sub = f"{path}.{f.name}" if path else f.name
            rows.append(
                Markup("<tr class='field{}' data-path='{}'><th>{}</th><td>{}</td></tr>").format(
                    self._mark(sub), sub, f.name, self.value(getattr(v, f.name), sub)
                )
            )
        return Markup("<table class='dc' data-type='{}'>{}</table>").format(
            type(v).__name__, Markup("").join(rows)
        )

    def sequence(self, items: Any, path: str) -> Markup:
        if not items:
            return Markup("<span class='empty'>()</span>")
        first = items[0]
        simple = (int, str, bool, enum.Enum)
        if all(isinstance(x, simple) for x in items):
            return Markup("<span class='seq'>({})</span>").format(
                Markup(", ").join(self.value(x, f"{path}[{k}]") for k, x in enumerate(items))
            )
        if (
            _is_dc(first)
            and not isinstance(first, Cursor)
            and all(type(x) is type(first) for x in items)
            and len(dataclasses.fields(first)) <= GRID_MAX_FIELDS
            and all(_flat(getattr(x, f.name)) for x in items for f in dataclasses.fields(x))
        ):
            return self.grid(items, path)
        parts = []
        for k, x in enumerate(items):
            sub = f"{path}[{k}]"
            parts.append(
                Markup(
                    "<li class='item{}' data-path='{}'><span class='idx'>[{}]</span> {}</li>"
                ).format(self._mark(sub), sub, k, self.value(x, sub))
            )
        return Markup("<ol class='items'>{}</ol>").format(Markup("").join(parts))

    def grid(self, items: Any, path: str) -> Markup:
        names = [f.name for f in dataclasses.fields(items[0])]
        head = Markup("").join(Markup("<th>{}</th>").format(n) for n in names)
        rows = []
        for k, x in enumerate(items):
            sub = f"{path}[{k}]"
            cells = Markup("").join(
                Markup("<td class='cell{}' data-path='{}'>{}</td>").format(
                    self._mark(f"{sub}.{n}"), f"{sub}.{n}", self.value(getattr(x, n), f"{sub}.{n}")
                )
                for n in names
            )
            rows.append(
                Markup("<tr class='row{}' data-path='{}'><th class='idx'>[{}]</th>{}</tr>").format(
                    self._mark(sub), sub, k, cells
                )
            )
        return Markup("<table class='grid' data-type='{}'><tr><th></th>{}</tr>{}</table>").format(
            type(items[0]).__name__, head, Markup("").join(rows)
        )


def system_ring_for(model: Any, state: Any) -> RingFor:
    """The ring of a cursor in the composed system's states, from the model's own config.

    The data path keeps the writer's ``tx_curs_*`` in its sndbuf ring and every other cursor
    (``prod``, ``cons``, ``rx_curs_confirmed``, the cursors of CDC messages) in the reader's
    DMB ring (:class:`~smcd_check.spec.datapath.DatapathState`). A model without a data-path
    config gets no abstract view (``None``).
    """
    cfg = getattr(model, "cfg", None)
    datapath = getattr(cfg, "datapath", None)
    mode = getattr(state, "mode", None)
    if datapath is None or mode is None:
        return lambda _p: None
    try:
        dcfg = datapath(mode)
        rmb, sndbuf = dcfg.rmb, dcfg.sndbuf
    except Exception:  # a model of another shape: no abstract view rather than an error
        return lambda _p: None

    def ring_for(path: str) -> Ring | None:
        leaf = path.rsplit(".", 1)[-1]
        return sndbuf if leaf.startswith("tx_curs_") else rmb

    return ring_for
