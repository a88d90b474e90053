"""The spec's error hierarchy.

Every error the spec raises derives from :class:`SpecError`, so callers (the CLI, the explorer,
conformance) can tell "the spec said no" from a bug. Subclasses live next to the concept they
belong to (the CLC codec's errors in ``clc``, cursor preconditions in ``cursor``...), but they
all derive from one of the three families here.
"""

from __future__ import annotations


class SpecError(Exception):
    """Base of every error raised by smcd_check.spec."""


class MalformedInput(SpecError):
    """Bytes or values from outside (a peer, a file, a user) that the spec cannot accept."""


class PreconditionViolated(SpecError):
    """A function was called outside its stated precondition (e.g. a cursor past the buffer)."""


class ForbiddenStep(SpecError):
    """A transition the protocol does not allow in the current state.

    Raising it never changes the state: transitions are pure functions returning a new state.
    """
