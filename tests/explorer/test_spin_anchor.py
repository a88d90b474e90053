"""The Spin anchor model reaches exactly Spin 6.5.2's state and transition counts.

The expected figures are Spin's own output for shared/anchors/spin/smcd.pml (the anchor
README's table and bug lengths, rechecked by running pan); bench/spin_vs_explorer.py checks
every row against a live Spin run.
"""

from __future__ import annotations

import pytest
from anchor_support import anchor

from smcd_check.explorer.engine import Explorer

sam = anchor()


def test_merged_dmb7_matches_spin_counts_exactly() -> None:
    res = Explorer(sam.SpinAnchorModel(sam.table_config(False, 7))).bfs()
    assert res.complete and res.ok
    assert (res.unique_state_count, res.transition_count, res.max_depth) == (144_928, 515_802, 34)


def test_copy_dmb6_matches_spin_counts_exactly() -> None:
    """Spin 6.5.2 prints 133824 states, 635617 'transitions (= stored+matched)' (one more
    than the edges followed: the initial state is stored without a transition) and
    'depth reached 34'; the anchor README's depth column says 37 for this row, which Spin's
    own output does not confirm."""
    res = Explorer(sam.SpinAnchorModel(sam.table_config(True, 6))).bfs()
    assert (res.unique_state_count, res.transition_count, res.max_depth) == (133_824, 635_616, 34)


@pytest.mark.parametrize("bug,length", sorted(sam.SPIN_BUG_LENGTHS.items()))
def test_injected_bug_gives_spins_shortest_counterexample(bug: str, length: int) -> None:
    model = sam.SpinAnchorModel(sam.table_config(False, 7, bug))
    res = Explorer(model).bfs()
    assert res.violation is not None
    assert len(res.violation.path) == length
    # the path is real: replaying its actions with next_state ends in the violating state
    s = model.init_states()[0]
    for a in res.violation.path.actions:
        s = model.next_state(s, a)
        assert s is not None
    assert s.failed != 0 and res.violation.name == sam.ASSERTIONS[s.failed]


def test_clean_model_has_no_violation_for_small_sizes_in_both_modes() -> None:
    for copy in (False, True):
        res = Explorer(sam.SpinAnchorModel(sam.AnchorConfig(dmb_size=3, copy=copy))).bfs()
        assert res.complete and res.violation is None


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("bug", [None, *sam.BUGS])
def test_declared_footprints_agree_with_the_opaque_search(copy: bool, bug: str | None) -> None:
    """The model's footprints are honest: the memoised search (per-option footprints) finds
    the same states, transitions, depth, coverage and counterexample as the search that treats
    the state as one opaque value (no memo)."""
    model = sam.SpinAnchorModel(sam.AnchorConfig(dmb_size=3, chan_cap=2, copy=copy, bug=bug))
    fast = Explorer(model).bfs()
    slow = Explorer(model).with_memo(False).bfs()
    assert fast.verdict() == slow.verdict()
    assert (fast.unique_state_count, fast.transition_count, fast.max_depth) == (
        slow.unique_state_count,
        slow.transition_count,
        slow.max_depth,
    )
    assert fast.coverage == slow.coverage
    if fast.violation is not None and slow.violation is not None:
        assert fast.violation.path.actions == slow.violation.path.actions
        assert fast.violation.name == slow.violation.name


def test_unknown_bug_is_rejected_with_its_name() -> None:
    with pytest.raises(ValueError, match="BUG_TYPO"):
        sam.AnchorConfig(bug="BUG_TYPO")
