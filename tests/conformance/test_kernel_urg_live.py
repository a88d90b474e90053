"""Urgent data and full duplex on the real kernel, live (issue 11): Linux 6.12.118 in qemu (TCG).

``urg-basic`` and ``duplex`` are part of the default run, so the one-boot test of
test_kernel_live.py checks their claims and cursor snapshots. This module boots once more for
the scenarios that reproduce kernel faults, ``urg-findings``, ``urg-wrap`` and ``urg-phantom``
(the last two each push about 1.07 GB through a 16 KiB DMB, hence slow): every step is
bounded, so the boot ends even though the kernel stalls, and each stall is reported as a
finding with the cursors at that moment. Skips with the reason when qemu, busybox-static, gcc
or the cached image is missing.
"""

from __future__ import annotations

import pytest

from smcd_check.conformance.kernel import qemu as K
from smcd_check.conformance.kernel.build import find_image
from smcd_check.conformance.kernel.urg_checks import urg_checks

pytestmark = pytest.mark.kernel


def _skip_reason() -> str | None:
    why = K.qemu_missing()
    if why:
        return f"cannot boot the test kernel: missing {why}"
    if find_image() is None:
        return "no cached kernel image: run `smcd-check kernel build` (CI: .ci/system-deps)"
    return None


SKIP = _skip_reason()
if SKIP:
    pytestmark = [pytest.mark.kernel, pytest.mark.skip(reason=SKIP)]


@pytest.mark.slow
def test_urgent_data_faults_reproduce_with_bounded_steps_live() -> None:
    """All three scenarios finish (no hung guest, no harness error); every claim agrees with
    the kernel's rule; every fault shows, each stall with the cursors at that moment."""
    res = K.run(["urg-findings", "urg-wrap", "urg-phantom"])
    assert not res.timed_out and res.missing == (), res.console_tail
    for name, n_findings in (("urg-findings", 6), ("urg-wrap", 1), ("urg-phantom", 1)):
        data = dict(res.scenarios[name].data)
        assert data["error"] == ""
        checks = urg_checks(name, data)
        claims = [c for c in checks if c.kind == "claim"]
        findings = [c for c in checks if c.kind == "finding"]
        assert claims and all(c.ok for c in claims), [c.detail for c in claims if not c.ok]
        assert len(findings) == n_findings
        assert not any(f.ok for f in findings), [f.subject for f in findings if f.ok]
        for f in findings:
            stall = f.evidence.get("cursors_at_stall")
            assert stall is None or stall, f.subject
