"""spec/cdc_rx.py: the receiver's named checks on a CDC written by the peer.

Expected names are written out from the rule each check states (a ring of 16352 bytes; the
cursor space of 2**16 laps), not computed by the module.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smcd_check.spec.cdc_rx import CHECK_NAMES, RxView, check_cdc, distance
from smcd_check.spec.cursor import Cursor

RING = 16352


def cdc(prod: tuple[int, int] = (0, 0), cons: tuple[int, int] = (0, 0), *, pflags: int = 0,
        cflags: int = 0, ctype: int = 0xFE) -> bytes:
    return struct.pack("<B7xHIBBHIBB8x", ctype, prod[0], prod[1], 0, 0, cons[0], cons[1],
                       pflags, cflags)


def view(prod: tuple[int, int] = (0, 0), cons: tuple[int, int] = (0, 0), *, unread: int = 0,
         in_flight: int = 0, flags: int = 0) -> RxView:
    return RxView(rmb_len=RING, peer_rmbe_size=RING,
                  prod=Cursor(wrap=prod[0], count=prod[1]),
                  cons=Cursor(wrap=cons[0], count=cons[1]),
                  conn_state_flags=flags, bytes_to_rcv=unread,
                  peer_rmbe_space=RING - in_flight)


@pytest.mark.parametrize(("v", "raw", "name"), [
    (view(), cdc(ctype=0), "type"),
    (view(), cdc(cflags=0x10), "flags-reserved"),
    (view(), cdc(pflags=0x08), "flags-reserved"),
    (view(), cdc((0, RING)), "prod-count"),
    (view(), cdc(cons=(0, RING)), "cons-count"),
    (view((0, 1000), unread=1000), cdc((0, 999)), "prod-backwards"),
    (view((0, 1000), unread=1000), cdc((0xFFFF, 1000)), "prod-backwards"),  # one ring behind
    (view((0, 1000), unread=1000), cdc((0xFFFF, 999)), "prod-overrun"),  # one ring + 1 byte
    (view((0, 1000), unread=1000), cdc((1, 1)), "prod-overrun"),  # free + 1
    (view(cons=(1, 0)), cdc(cons=(0, RING - 1)), "cons-backwards"),
    (view(in_flight=1000), cdc(cons=(0, 1001)), "cons-overrun"),
    (view(flags=0x80), cdc(cflags=0x00), "flags-cleared"),
    (view(flags=0xC0), cdc(cflags=0x80), "flags-cleared"),
    # the first failing check names the refusal
    (view(), cdc((0, 0xFFFF_FFFF), ctype=0), "type"),
    (view(), cdc((0xFFFF, RING)), "prod-count"),
])
def test_each_refusal_is_named_by_the_first_check_it_fails(v: RxView, raw: bytes,
                                                            name: str) -> None:
    assert name in CHECK_NAMES
    assert check_cdc(v, raw) == name


@pytest.mark.parametrize(("v", "raw"), [
    (view((0, 1000), unread=1000), cdc((1, 0))),  # exactly the free space
    (view(in_flight=1000), cdc(cons=(0, 1000))),  # exactly what is in flight
    (view(flags=0x80), cdc(cflags=0xC0)),  # a new flag added to the sticky one
    (view((0, RING - 1)), cdc((0, RING - 1))),  # the last count inside the ring
])
def test_the_limits_themselves_pass(v: RxView, raw: bytes) -> None:
    assert check_cdc(v, raw) is None


@given(wrap=st.integers(0, 0xFFFF), count=st.integers(0, RING - 1),
       cwrap=st.integers(0, 0xFFFF), ccount=st.integers(0, RING - 1),
       flags=st.sampled_from([0, 0x80, 0x40, 0x20, 0xC0, 0xE0]))
def test_a_cdc_repeating_the_receivers_view_is_always_accepted(
        wrap: int, count: int, cwrap: int, ccount: int, flags: int) -> None:
    """Whatever the cursors and sticky flags, the header the peer wrote last, written again,
    passes every check (nothing moves, nothing is taken back)."""
    v = view((wrap, count), (cwrap, ccount), unread=RING, in_flight=RING, flags=flags)
    assert check_cdc(v, cdc((wrap, count), (cwrap, ccount), cflags=flags)) is None


@given(old=st.tuples(st.integers(0, 0xFFFF), st.integers(0, RING - 1)),
       n=st.integers(0, RING))
def test_distance_inverts_a_forward_move(old: tuple[int, int], n: int) -> None:
    """Moving a cursor n bytes forward (carrying into the u16 wrap) is a distance of n."""
    pos = old[0] * RING + old[1] + n
    new = Cursor(wrap=(pos // RING) & 0xFFFF, count=pos % RING)
    assert distance(RING, Cursor(wrap=old[0], count=old[1]), new) == n


def test_a_header_is_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        check_cdc(view(), b"\xfe" * 31)
