"""The verdict of a whole run: what makes a CI job pass or fail, with a one-line reason.

Theory of operation
-------------------
Each case has its own verdict (:class:`~.run.Verdict`); a run's verdict is a policy over them.
The default policy is the kindest one that is still honest:

* any FAIL or ERROR fails the run;
* a run that checked nothing fails: no case selected, or every case UNSUPPORTED (a target
  declaring capability names with a typo would otherwise pass everything by skipping it).

A CI adds what it needs (:class:`VerdictPolicy`):

* ``strict``: NON-STRICT (a refusal with another errno or decline code than the kernel's, or a
  rejection for another reason) fails too;
* ``require``: capabilities the target must declare; a required capability the target lacks
  fails the run, and so does every case that needs a required capability and still came out
  UNSUPPORTED (the target declared the capability but refused an operation at run time);
* ``max_unsupported``: the largest share of UNSUPPORTED cases tolerated (0.25 = a quarter).

:func:`judge` returns the exit code (0 or 1; interruption is the caller's business) and a single
line saying why, for the last line of a CI log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smcd_check.conformance.runner.run import RunResult, Verdict
from smcd_check.conformance.targets.adapter import Capability, parse_capability


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictPolicy:
    """What a run must achieve to pass (see the module docstring)."""

    strict: bool = False
    require: frozenset[Capability] = frozenset()
    #: largest tolerated share of UNSUPPORTED cases, 0..1; None: only "all" fails
    max_unsupported: float | None = None

    def __post_init__(self) -> None:
        if self.max_unsupported is not None and not 0.0 <= self.max_unsupported <= 1.0:
            raise ValueError(f"max_unsupported={self.max_unsupported}: expected a share 0..1")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunVerdict:
    """The run's outcome: exit code 0 (pass) or 1 (finding), a one-line reason, culprits."""

    exit_code: int
    reason: str
    #: ids of the cases that made the run fail (empty for a pass or a run-level reason)
    culprits: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def parse_capabilities(names: Iterable[str]) -> frozenset[Capability]:
    """Capabilities from names; ``a,b`` lists are split.

    Raises:
        ValueError: naming the unknown capability and the known ones (a usage error).
    """
    out: set[Capability] = set()
    for item in names:
        for name in item.split(","):
            if name.strip():
                out.add(parse_capability(name.strip()))
    return frozenset(out)


def parse_share(text: str) -> float:
    """``"25%"``, ``"0.25"`` or ``"1/4"`` -> 0.25.

    Raises:
        ValueError: not a share between 0 and 1 (names what was given).
    """
    raw = text.strip()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1]) / 100.0
        elif "/" in raw:
            num, _, den = raw.partition("/")
            value = float(num) / float(den)
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a share (e.g. 25%, 0.25)") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ValueError(f"{text!r} is not a share between 0 and 100%")
    return value


def _ids(run: RunResult, verdicts: set[Verdict]) -> list[str]:
    return [r.case.id for r in run.results if r.verdict in verdicts]


def _list(ids: list[str], limit: int = 3) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def judge(run: RunResult, policy: VerdictPolicy | None = None) -> RunVerdict:
    """Judge a whole run under ``policy`` (default: :class:`VerdictPolicy` ()).

    The reason names the first rule that failed, with counts and the first case ids, or the
    counts of a pass.
    """
    policy = policy or VerdictPolicy()
    counts = run.counts()
    total = len(run.results)
    unsupported = counts[Verdict.UNSUPPORTED]
    checked = total - unsupported
    lacking = sorted(c.value for c in policy.require - run.capabilities)
    if lacking:
        declared = ", ".join(sorted(c.value for c in run.capabilities)) or "none"
        plural = "y" if len(lacking) == 1 else "ies"
        return RunVerdict(exit_code=1, reason=(
            f"the target lacks required capabilit{plural} {', '.join(lacking)} "
            f"(it declares {declared})"))
    bad = _ids(run, {Verdict.FAIL, Verdict.ERROR})
    if bad:
        return RunVerdict(exit_code=1, culprits=tuple(bad), reason=(
            f"{counts[Verdict.FAIL]} FAIL, {counts[Verdict.ERROR]} ERROR of {total} cases: "
            f"{_list(bad)}"))
    if policy.strict and counts[Verdict.NON_STRICT]:
        loose = _ids(run, {Verdict.NON_STRICT})
        return RunVerdict(exit_code=1, culprits=tuple(loose), reason=(
            f"--strict: {len(loose)} NON-STRICT (right outcome, other code or reason than the "
            f"kernel's): {_list(loose)}"))
    if policy.require:
        missed = [r.case.id for r in run.results if r.verdict is Verdict.UNSUPPORTED
                  and r.case.needs & policy.require]
        if missed:
            return RunVerdict(exit_code=1, culprits=tuple(missed), reason=(
                f"{len(missed)} case(s) needing a required capability came out UNSUPPORTED: "
                f"{_list(missed)}"))
    if total == 0:
        return RunVerdict(exit_code=1, reason="no case ran: nothing was checked")
    if checked == 0:
        return RunVerdict(exit_code=1, reason=(
            f"nothing was checked: all {total} cases were UNSUPPORTED by this target "
            "(check its capability names)"))
    share = unsupported / total
    if policy.max_unsupported is not None and share > policy.max_unsupported:
        return RunVerdict(exit_code=1, reason=(
            f"{unsupported} of {total} cases UNSUPPORTED ({share:.0%}), more than the "
            f"{policy.max_unsupported:.0%} allowed"))
    note = (f", {counts[Verdict.NON_STRICT]} NON-STRICT" if counts[Verdict.NON_STRICT] else "")
    return RunVerdict(exit_code=0, reason=(
        f"{checked} of {total} cases checked ({counts[Verdict.OK]} OK{note}), "
        f"{unsupported} UNSUPPORTED"))
