"""Interchangeable pairs (spec/symmetry.py, ``SystemConfig.symmetric_pairs``).

The symmetry reduction is sound only when renaming the declared pairs is an automorphism of
the system: it maps steps to steps and keeps every property's value. These tests check that
claim on every reachable state of the symmetric configs (searched without the reduction), and
that declarations of pairs that are not interchangeable are refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from smcd_check.explorer.engine import Explorer, iter_actions
from smcd_check.explorer.model import as_property
from smcd_check.spec import configs
from smcd_check.spec import lifecycle as lc
from smcd_check.spec.symmetry import rename_cid, rename_pairs
from smcd_check.spec.system import System, SystemConfig, SystemConfigError, SystemState


def renamed(s: SystemState, mapping: dict[int, int], model: Any = None) -> SystemState:
    """``s`` with pair ``p`` renamed to ``mapping[p]``: its handshake moves, the lifecycle's
    connection ids are rewritten (pairs without data only: ``data`` stays); with ``model``,
    made of the model's hash-consed objects (its step memo then finds them)."""
    pairs = list(s.pairs)
    for p, q in mapping.items():
        pairs[q] = s.pairs[p]
    st = rename_pairs(s.lc, mapping)
    if model is not None:
        pairs = [model.adopt(ph) for ph in pairs]
        st = model.adopt(st)
    return replace(s, pairs=tuple(pairs), lc=st)


def ism_unsequenced() -> System:
    """ism-peers with concurrent handshakes: pairs 0 and 2 connect the same two hosts."""
    base = configs.get_preset("ism-peers").config
    return System(replace(base, sequential_connect=False, symmetric_pairs=(0, 2)), name="ism2")


def _reachable(model: System) -> list[SystemState]:
    res = Explorer(model).with_symmetry(False).bfs()
    assert res.state_at is not None
    return [res.state_at(k) for k in range(res.unique_state_count)]


@pytest.mark.parametrize("which", ["trio", "ism-unsequenced"])
def test_renaming_symmetric_pairs_commutes_with_every_step_and_property(which: str) -> None:
    """For every reachable state s and every renaming r of the declared pairs: the successors
    of r(s) are exactly the renamed successors of s, and every always/sometimes property,
    the boundary and finality have the same value in r(s) as in s. Checked for a swap of two
    pairs and a rotation of all of them, which generate every renaming (so it holds for all:
    a composition of automorphisms is one)."""
    model = configs.build_system("trio") if which == "trio" else ism_unsequenced()
    group = model.cfg.symmetric_pairs
    swap = {group[0]: group[1], group[1]: group[0]}
    rotation = {p: group[(i + 1) % len(group)] for i, p in enumerate(group)}
    maps = [swap] if len(group) == 2 else [swap, rotation]
    props = [as_property(p) for p in model.properties()]
    states = _reachable(model)
    assert len(states) > 100
    for s in states:
        succ = {t for _a, t in iter_actions(model, s)}
        facts = [p.condition(s) for p in props] + [model.is_final(s), model.within_boundary(s)]
        for m in maps:
            r = renamed(s, m, model)
            assert {t for _a, t in iter_actions(model, r)} == {renamed(t, m) for t in succ}
            got = [p.condition(r) for p in props] + [model.is_final(r), model.within_boundary(r)]
            assert got == facts


def test_rename_pairs_keeps_tables_sorted_and_is_undone_by_the_inverse() -> None:
    """Renaming rewrites every connection id (conns sorted by cid, lgr conns in creation
    order, holders sorted, DMB owners) and the inverse renaming gives the state back."""
    model = configs.build_system("trio")
    states = [s for s in _reachable(model) if len(s.lc.conns) >= 3]
    assert states
    m = {0: 2, 1: 0, 2: 1}
    inverse = {q: p for p, q in m.items()}
    for s in states:
        st = rename_pairs(s.lc, m)
        assert [c.cid for c in st.conns] == sorted(c.cid for c in st.conns)
        assert sorted(c.cid for c in st.conns) == sorted(rename_cid(c.cid, m) for c in s.lc.conns)
        for g, h in zip(s.lc.lgrs, st.lgrs, strict=True):
            assert h.conns == tuple(rename_cid(c, m) for c in g.conns)
            assert list(h.holders) == sorted(h.holders)
        for d, e in zip(s.lc.descs, st.descs, strict=True):
            assert e.owner == (None if d.owner is None else rename_cid(d.owner, m))
        assert rename_pairs(st, inverse) == s.lc
    assert rename_pairs(lc.LifecycleState(), {0: 0, 1: 1}) == lc.LifecycleState()


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"symmetric_pairs": (0,)}, "at least two"),
        ({"symmetric_pairs": (0, 0)}, "at least two"),
        ({"symmetric_pairs": (0, 5)}, "pairs are 0..2"),
        ({"symmetric_pairs": (1, 2), "sequential_connect": True}, "sequential_connect"),
        ({"symmetric_pairs": (0, 1), "data_pairs": (0,)}, "data pairs"),
        ({"symmetric_pairs": (1, 2), "keep_open": (1,)}, "kept open"),
    ],
)
def test_symmetric_pairs_that_are_not_interchangeable_are_refused(
    changes: dict[str, Any], why: str
) -> None:
    base = dict(n_pairs=3, data_pairs=(), sequential_connect=False)
    with pytest.raises(SystemConfigError, match=why):
        SystemConfig(**{**base, **changes})


def test_pairs_on_different_hosts_are_not_interchangeable() -> None:
    base = configs.get_preset("ism-peers").config
    with pytest.raises(SystemConfigError, match="different hosts"):
        replace(base, sequential_connect=False, symmetric_pairs=(0, 1))


def test_a_config_without_symmetric_pairs_declares_no_symmetry() -> None:
    assert configs.build_system("reference").symmetry() is None
    sym = configs.build_system("trio").symmetry()
    assert sym is not None and sym.slots == (("pair0",), ("pair1",), ("pair2",))
    with pytest.raises(ValueError, match="names no pairs"):
        sym.permute("pair0", None, (1, 0, 2))
