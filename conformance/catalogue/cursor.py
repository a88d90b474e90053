"""Catalogue area ``cursor``: the host-cursor arithmetic of net/smc/smc_cdc.h.

These cases call the ``curs_*`` operations directly (capability ``cursor``), for targets that
expose their cursor functions (C implementations usually can). The expected values come from
the spec (:mod:`smcd_check.spec.cursor`); the cases below the "kernel facts" line also pin the
value the C formula gives, worked out by hand from smc_cdc.h, so that spec and catalogue are
held to the kernel. Cursor behaviour seen through real connections (a ring that wraps, a full
ring) is in the ``datapath`` area.

Ring size 16352 is the data ring of a 16 KiB DMB (16384 - 32-byte CDC header).
"""

from __future__ import annotations

from typing import Any

from smcd_check.conformance.runner.run import Area, Case, Pin, step

R = 16352  # data ring of a 16 KiB DMB
SRC = "net/smc/smc_cdc.h"


def _case(cid: str, title: str, description: str, fn: str, pin: int | list[int] | None,
          rules: tuple[str, ...], **args: Any) -> Case:
    pins: tuple[Pin, ...] = ()
    if pin is not None:
        key = "curs" if fn == "curs_add" else "value"
        pins = (Pin(index=0, error=None, value=((key, pin),), source=f"{SRC} smc_{fn}"),)
    return Case(
        id=f"cursor.{cid}",
        area=Area.CURSOR,
        title=title,
        description=description,
        source=f"{SRC} smc_{fn}",
        steps=(step(fn, **args),),
        pins=pins,
        rules=rules,
    )


CASES: tuple[Case, ...] = (
    # ---------------------------------------------------------------- smc_curs_add
    _case("add.within-ring", "add inside the ring keeps the wrap",
          "count += value with no wrap when the sum stays below the ring size.",
          "curs_add", [0, 300], ("smc_curs_add",), size=R, curs=[0, 100], value=200),
    _case("add.reaches-size", "add reaching exactly the ring size wraps to count 0",
          "count == size is never left in a cursor: wrap += 1, count -= size.",
          "curs_add", [1, 0], ("smc_curs_add",), size=R, curs=[0, R - 10], value=10),
    _case("add.crosses-end", "add crossing the ring end wraps once",
          "The new count is the overshoot past the ring end; the wrap grows by one.",
          "curs_add", [4, 90], ("smc_curs_add",), size=R, curs=[3, R - 10], value=100),
    _case("add.wrap-overflow", "wrap overflows 0xffff -> 0 (u16)",
          "After 65536 laps the u16 wrap counter restarts at 0.",
          "curs_add", [0, 5], ("smc_curs_add", "u16 wrap"), size=R, curs=[0xFFFF, R - 5],
          value=10),
    _case("add.single-subtraction", "add of more than the ring size subtracts only once",
          "smc_curs_add subtracts size once: adding 2*size leaves count >= size (why callers "
          "must bound the value).",
          "curs_add", [1, R + 7], ("smc_curs_add",), size=R, curs=[0, 7], value=2 * R),
    _case("add.zero", "add of 0 changes nothing", "The identity step.",
          "curs_add", [2, 42], ("smc_curs_add",), size=R, curs=[2, 42], value=0),
    # ---------------------------------------------------------------- smc_curs_diff
    _case("diff.same-wrap", "diff with equal wraps is the count difference",
          "new.count - old.count.", "curs_diff", 500, ("smc_curs_diff",),
          size=R, old=[5, 100], new=[5, 600]),
    _case("diff.one-lap", "diff across one wrap adds the rest of the ring",
          "(size - old.count) + new.count.", "curs_diff", R - 1000 + 30, ("smc_curs_diff",),
          size=R, old=[0, 1000], new=[1, 30]),
    _case("diff.full-ring", "a full ring (same count, wrap one ahead) has diff == size",
          "Full and empty are told apart only by the wrap (cursors.md 8).",
          "curs_diff", R, ("smc_curs_diff", "full ring"), size=R, old=[0, 77], new=[1, 77]),
    _case("diff.empty-ring", "equal cursors have diff 0", "The empty ring.",
          "curs_diff", 0, ("smc_curs_diff",), size=R, old=[3, 77], new=[3, 77]),
    _case("diff.backwards-same-wrap", "a backwards cursor with equal wrap gives 0",
          "max_t(int, 0, new.count - old.count) clamps negative results to 0.",
          "curs_diff", 0, ("smc_curs_diff",), size=R, old=[2, 900], new=[2, 100]),
    _case("diff.more-than-size", "different wraps with new.count > old.count exceed size",
          "Any wrap difference counts as exactly one lap, so the result can reach 2*size-1.",
          "curs_diff", R + 100, ("smc_curs_diff",), size=R, old=[0, 0], new=[1, 100]),
    _case("diff.two-laps-as-one", "a two-lap difference is counted as one lap",
          "smc_curs_diff only compares wraps for equality.",
          "curs_diff", R - 50 + 60, ("smc_curs_diff",), size=R, old=[0, 50], new=[2, 60]),
    _case("diff.across-overflow", "diff across the 0xffff -> 0 wrap switch",
          "Different wraps: one lap, whatever their order.",
          "curs_diff", R - 16000 + 200, ("smc_curs_diff", "u16 wrap"), size=R,
          old=[0xFFFF, 16000], new=[0, 200]),
    # ---------------------------------------------------------------- smc_curs_comp
    _case("comp.forward", "comp of a cursor ahead is positive (= diff)",
          "old before new: smc_curs_diff(old, new).", "curs_comp", 250, ("smc_curs_comp",),
          size=R, old=[1, 50], new=[1, 300]),
    _case("comp.backward", "comp of a cursor behind is negative",
          "old after new: -smc_curs_diff(new, old).", "curs_comp", -250, ("smc_curs_comp",),
          size=R, old=[1, 300], new=[1, 50]),
    _case("comp.backward-wrap", "comp with a larger old wrap is negative",
          "old.wrap > new.wrap means old is after new.", "curs_comp", -(R - 300 + 50),
          ("smc_curs_comp",), size=R, old=[2, 50], new=[1, 300]),
    _case("comp.wrong-sign-after-overflow", "comp gets the sign wrong across 0xffff -> 0",
          "Right after the u16 switch a cursor logically ahead (wrap 0) compares as behind.",
          "curs_comp", -(R - 10 + 100), ("smc_curs_comp", "u16 wrap"), size=R,
          old=[0xFFFF, 100], new=[0, 10]),
    # ---------------------------------------------------------------- smc_curs_diff_large
    _case("diff-large.same-wrap", "diff_large with equal wraps is the count difference",
          "max(0, new.count - old.count).", "curs_diff_large", 20, ("smc_curs_diff_large",),
          size=R, old=[4, 10], new=[4, 30]),
    _case("diff-large.capped", "diff_large is capped at size",
          "Despite its name the result never exceeds size (min_t(int, .., size)).",
          "curs_diff_large", R, ("smc_curs_diff_large",), size=R, old=[0, 10], new=[3, 5]),
    _case("diff-large.one-lap", "diff_large across one wrap",
          "(size - old.count) + new.count when below size.", "curs_diff_large", R - 200 + 100,
          ("smc_curs_diff_large",), size=R, old=[6, 200], new=[7, 100]),
    _case("diff-large.overflow-switch", "diff_large handles the 0xffff -> 0 switch",
          "old.wrap > new.wrap is taken as the u16 switch: (new.wrap + 0xffff - old.wrap) "
          "extra laps.", "curs_diff_large", R - 300 + 100,
          ("smc_curs_diff_large", "u16 wrap"), size=R, old=[0xFFFF, 300], new=[0, 100]),
    _case("diff-large.backwards-same-wrap", "diff_large of a backwards cursor, equal wraps, is 0",
          "max(0, ..) as in smc_curs_diff.", "curs_diff_large", 0, ("smc_curs_diff_large",),
          size=R, old=[1, 500], new=[1, 100]),
    # ---------------------------------------------------------------- counts near 2^32
    _case("add.count-u32-overflow", "count 0xffffffff + 1 wraps the u32 to 0, not the ring",
          "curs->count += value is u32 arithmetic: 0 is below size, so no wrap step follows.",
          "curs_add", [0, 0], ("smc_curs_add", "u32 count"), size=R, curs=[0, 0xFFFFFFFF],
          value=1),
    _case("add.count-near-2-32", "a count near 2^32 plus 32 lands at 16 in the same lap",
          "0xfffffff0 + 0x20 overflows to 0x10 < size: the wrap stays 5.",
          "curs_add", [5, 16], ("smc_curs_add", "u32 count"), size=R, curs=[5, 0xFFFFFFF0],
          value=0x20),
    _case("add.int-max", "the largest int value subtracts size once",
          "R - 1 + 0x7fffffff is above size: one subtraction leaves 0x7ffffffe.",
          "curs_add", [1, 0x7FFFFFFE], ("smc_curs_add",), size=R, curs=[0, R - 1],
          value=0x7FFFFFFF),
    _case("add.negative", "a negative value is added as u32 and wraps once",
          "value is an int: 5 + (-10) is 0xfffffffb in u32, >= size, so wrap + 1 and count "
          "0xfffffffb - size.", "curs_add", [1, 0xFFFFFFFB - R], ("smc_curs_add", "u32 count"),
          size=R, curs=[0, 5], value=-10),
    _case("diff.count-u32-underflow", "diff of counts 0xffffffff -> 0 in one lap is 1",
          "(int)(0 - 0xffffffff) is 1 in two's complement: max(0, 1).",
          "curs_diff", 1, ("smc_curs_diff", "u32 count"), size=R, old=[0, 0xFFFFFFFF],
          new=[0, 0]),
    _case("diff.other-lap-count-u32", "diff across a lap from count 0xffffffff is size + 1",
          "(size - 0xffffffff) + 0 in u32 is size + 1.", "curs_diff", R + 1,
          ("smc_curs_diff", "u32 count"), size=R, old=[0, 0xFFFFFFFF], new=[1, 0]),
    _case("diff.int-min", "a gap of 2^31 in one lap is 0 (the int is negative)",
          "(int)0x80000000 is INT_MIN: max(0, INT_MIN) = 0.", "curs_diff", 0,
          ("smc_curs_diff", "int"), size=R, old=[0, 0], new=[0, 0x80000000]),
    _case("comp.int-min", "comp of a 2^31 gap in one lap is 0", "Same lap, old <= new: "
          "smc_curs_diff, which is 0 here.", "curs_comp", 0, ("smc_curs_comp", "int"),
          size=R, old=[0, 0], new=[0, 0x80000000]),
    _case("diff-large.int-max", "diff_large of 0x7fffffff in one lap is 0x7fffffff",
          "Same wrap: max(0, new - old), the largest positive int.", "curs_diff_large",
          0x7FFFFFFF, ("smc_curs_diff_large", "int"), size=R, old=[0, 0],
          new=[0, 0x7FFFFFFF]),
    _case("diff-large.int-min", "diff_large of 0x80000000 in one lap is 0",
          "(int)0x80000000 < 0: max(0, ...) = 0.", "curs_diff_large", 0,
          ("smc_curs_diff_large", "int"), size=R, old=[0, 0], new=[0, 0x80000000]),
    _case("diff-large.wrap-overflow", "diff_large across the 0xffff -> 0 wrap is the distance",
          "old.wrap > new.wrap: (size - old.count) + new.count + (new.wrap + 0xffff - "
          "old.wrap) * size = 1.", "curs_diff_large", 1, ("smc_curs_diff_large", "u16 wrap"),
          size=R, old=[0xFFFF, R - 1], new=[0, 0]),
)
