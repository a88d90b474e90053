"""Coverage of the composed SMC-D system counts each inner action, so a dead action shows.

The issue asks that an action that never fires be reported, since it means the config or the spec
is wrong. The composed system wraps data-path and lifecycle actions in ``DataStep`` / ``LifeStep``;
counting only those wrappers would hide a data-path action that can never happen.
"""

from __future__ import annotations

from smcd_check.explorer.engine import Explorer
from smcd_check.spec.configs import build_system


def test_clean_small_config_fires_every_declared_action() -> None:
    res = Explorer(build_system("small")).bfs()
    assert res.complete
    assert res.never_fired == []
    # inner actions are counted, not just their wrappers
    assert res.coverage["DataStep.ReaderRead"] > 0
    assert res.coverage["LifeStep.HostUnregisterDmb"] > 0
    assert "DataStep" not in res.coverage


def test_a_partial_exploration_claims_no_dead_action() -> None:
    """Stopped early, the explorer cannot know what would have fired later."""
    res = Explorer(build_system("small")).bounded(max_states=50).bfs()
    assert not res.complete
    assert res.never_fired == []


def test_a_reader_that_never_updates_shows_as_a_dead_action() -> None:
    """With the no-consumer-update fault the window update can never be sent. With close
    enabled no safety property breaks (the writer can always give up and close), so the dead
    action in the coverage table is what shows the bug."""
    res = Explorer(build_system("small", "no-consumer-update")).bfs()
    assert res.complete
    assert res.never_fired == ["DataStep.ReaderSendConsUpdate"]
    assert "DataStep.ReaderSendConsUpdate" not in res.coverage
