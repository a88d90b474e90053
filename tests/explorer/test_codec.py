"""The packed layout: a relayout moves every stored state to the new layout intact.

A relayout re-encodes every state the search holds, so it is generated as one expression per
layout change; when the field order stays, adjacent fields that move by the same amount move
as one piece. The property: for any layout, any wider layout (same or new order), and any ids
that fit, decoding the remapped int gives back the same ids.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smcd_check.explorer.codec import Codec


@st.composite
def _relayouts(draw: st.DrawFn) -> tuple[Codec, list[int], list[int], list[list[int]]]:
    n = draw(st.integers(1, 8))
    codec = Codec([f"c{i}" for i in range(n)], lambda s: s, lambda p: tuple(p))
    codec.order = draw(st.permutations(range(n)))
    codec.bits = [draw(st.integers(1, 6)) for _ in range(n)]
    codec._layout()
    bits = [b + draw(st.integers(0, 3)) for b in codec.bits]
    same = draw(st.booleans())
    order = list(codec.order) if same else list(draw(st.permutations(range(n))))
    ids = []
    for _ in range(draw(st.integers(1, 5))):
        row = []
        for k in range(n):
            # a bounded field: what its old width holds; the old top field: what the new
            # layout holds there
            top_limit = 24 if k == order[-1] else bits[k]
            limit = codec.bits[k] if codec.cap[k] > 0 else top_limit
            row.append(draw(st.integers(0, (1 << limit) - 1)))
        ids.append(row)
    return codec, bits, order, ids


@given(_relayouts())
def test_a_relayout_keeps_every_id_of_every_state(
    case: tuple[Codec, list[int], list[int], list[list[int]]],
) -> None:
    """Remapping an encoded state to a wider layout and decoding it there gives its ids."""
    codec, bits, order, rows = case
    encoded = []
    for row in rows:
        x = 0
        for k, i in enumerate(row):
            x |= i << codec.off[k]
        encoded.append(x)
    remap = codec.relayout(bits, order)
    for row, x in zip(rows, encoded, strict=True):
        y = remap(x)
        assert [codec.field(y, k) for k in range(len(row))] == row
