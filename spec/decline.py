"""The CLC Decline reason codes (``SMC_CLC_DECL_*``) of Linux 6.12.118.

Theory of operation
-------------------
A Decline carries a 32-bit big-endian ``peer_diagnosis`` (``struct smc_clc_msg_decline``,
net/smc/smc_clc.h). Linux fills it with one of the ``SMC_CLC_DECL_*`` constants defined in
net/smc/smc_clc.h; the same constants are the positive "reason codes" that make a socket fall
back to TCP. :class:`DeclineCode` names every one of them with the kernel's value; the member
name is the kernel's suffix (``SMC_CLC_DECL_NOUEID`` -> ``DeclineCode.NOUEID``).

The high byte groups the codes: 0x01 resources, 0x02 timeouts (SMC-R), 0x03 configuration and
negotiation, 0x04 synchronisation, 0x05 "peer declined" (a local code, never sent), 0x09
internal errors.

A peer may send any 32-bit value: decoding must keep unknown values as plain ints.
:func:`decline_code` returns the enum member or ``None``; :func:`describe` gives the one-line
meaning, or ``"unknown"``.

Not modelled: the older v4.x codes (``TIMEOUT`` 0x02000000, ``TCL`` 0x02040000, ``IPSEC``
0x03030000 in v4.x, ``REPLY`` 0x06000000, ``SEND`` 0x07000000, ``INTERR`` 0x99990000) are
different numbers and are deliberately absent: in 6.12 0x03030000 means ``NOSMCDEV``.
Vendor-tree codes are absent too; they decode as unknown.

Source: net/smc/smc_clc.h (6.12.118), shared/domain/clc.md section 6.
"""

from __future__ import annotations

import enum
from typing import Final


class DeclineCode(enum.IntEnum):
    """A ``SMC_CLC_DECL_*`` reason code, with the kernel's value (net/smc/smc_clc.h)."""

    #: insufficient memory resources
    MEM = 0x01010000
    #: timeout waiting for QP confirm link (SMC-R)
    TIMEOUT_CL = 0x02010000
    #: timeout waiting for QP add link (SMC-R)
    TIMEOUT_AL = 0x02020000
    #: configuration error
    CNFERR = 0x03000000
    #: peer did not indicate SMC
    PEERNOSMC = 0x03010000
    #: IPsec in use
    IPSEC = 0x03020000
    #: no SMC device found (R or D)
    NOSMCDEV = 0x03030000
    #: no SMC-D device found
    NOSMCDDEV = 0x03030001
    #: no SMC-R device found
    NOSMCRDEV = 0x03030002
    #: hardware has no ISMv2 support
    NOISM2SUPP = 0x03030003
    #: peer sent no CLC v2 extension
    NOV2EXT = 0x03030004
    #: peer sent no SMC-Dv2 extension
    NOV2DEXT = 0x03030005
    #: peer sent no SEID
    NOSEID = 0x03030006
    #: no SMC-Dv2 device found
    NOSMCD2DEV = 0x03030007
    #: peer sent no UEID
    NOUEID = 0x03030008
    #: release version negotiation failed
    RELEASEERR = 0x03030009
    #: max connections negotiation failed
    MAXCONNERR = 0x0303000A
    #: max links negotiation failed
    MAXLINKERR = 0x0303000B
    #: SMC modes do not match (R or D)
    MODEUNSUPP = 0x03040000
    #: peer has eyecatcher in RMBE
    RMBE_EC = 0x03050000
    #: fastopen sockopt not supported
    OPTUNSUPP = 0x03060000
    #: IP prefix / subnet mismatch
    DIFFPREFIX = 0x03070000
    #: error getting VLAN id of IP device
    GETVLANERR = 0x03080000
    #: error registering VLAN id on ISM device
    ISMVLANERR = 0x03090000
    #: no active SMC-R link in link group
    NOACTLINK = 0x030A0000
    #: SMC-R link from server not found
    NOSRVLINK = 0x030B0000
    #: SMC version mismatch
    VERSMISMAT = 0x030C0000
    #: SMC-D DMB limit exceeded
    MAX_DMB = 0x030D0000
    #: SMC-Rv2 connection: no route to peer
    NOROUTE = 0x030E0000
    #: SMC-Rv2 connection: indirect mismatch
    NOINDIRECT = 0x030F0000
    #: synchronization error
    SYNCERR = 0x04000000
    #: peer declined during handshake
    PEERDECL = 0x05000000
    #: internal error
    INTERR = 0x09990000
    #: rtoken handling failed
    ERR_RTOK = 0x09990001
    #: ib ready link failed
    ERR_RDYLNK = 0x09990002
    #: registering RDMA buffers failed
    ERR_REGBUF = 0x09990003

    @property
    def kernel_name(self) -> str:
        """The kernel's macro name, e.g. ``SMC_CLC_DECL_NOUEID``."""
        return f"SMC_CLC_DECL_{self.name}"

    @property
    def meaning(self) -> str:
        """One line saying what the code means (paraphrasing the kernel's comment)."""
        return MEANINGS[self]


#: one-line meaning per code (net/smc/smc_clc.h comments, paraphrased)
MEANINGS: Final[dict[DeclineCode, str]] = {
    DeclineCode.MEM: "insufficient memory resources",
    DeclineCode.TIMEOUT_CL: "timeout waiting for QP confirm link (SMC-R)",
    DeclineCode.TIMEOUT_AL: "timeout waiting for QP add link (SMC-R)",
    DeclineCode.CNFERR: "configuration error",
    DeclineCode.PEERNOSMC: "peer did not indicate SMC",
    DeclineCode.IPSEC: "IPsec in use",
    DeclineCode.NOSMCDEV: "no SMC device found (R or D)",
    DeclineCode.NOSMCDDEV: "no SMC-D device found",
    DeclineCode.NOSMCRDEV: "no SMC-R device found",
    DeclineCode.NOISM2SUPP: "hardware has no ISMv2 support",
    DeclineCode.NOV2EXT: "peer sent no CLC v2 extension",
    DeclineCode.NOV2DEXT: "peer sent no SMC-Dv2 extension",
    DeclineCode.NOSEID: "peer sent no SEID",
    DeclineCode.NOSMCD2DEV: "no SMC-Dv2 device found",
    DeclineCode.NOUEID: "peer sent no UEID",
    DeclineCode.RELEASEERR: "release version negotiation failed",
    DeclineCode.MAXCONNERR: "max connections negotiation failed",
    DeclineCode.MAXLINKERR: "max links negotiation failed",
    DeclineCode.MODEUNSUPP: "SMC modes do not match (R or D)",
    DeclineCode.RMBE_EC: "peer has eyecatcher in RMBE",
    DeclineCode.OPTUNSUPP: "fastopen sockopt not supported",
    DeclineCode.DIFFPREFIX: "IP prefix / subnet mismatch",
    DeclineCode.GETVLANERR: "error getting VLAN id of IP device",
    DeclineCode.ISMVLANERR: "error registering VLAN id on ISM device",
    DeclineCode.NOACTLINK: "no active SMC-R link in link group",
    DeclineCode.NOSRVLINK: "SMC-R link from server not found",
    DeclineCode.VERSMISMAT: "SMC version mismatch",
    DeclineCode.MAX_DMB: "SMC-D DMB limit exceeded",
    DeclineCode.NOROUTE: "SMC-Rv2 connection: no route to peer",
    DeclineCode.NOINDIRECT: "SMC-Rv2 connection: indirect mismatch",
    DeclineCode.SYNCERR: "synchronization error",
    DeclineCode.PEERDECL: "peer declined during handshake (local code, never sent)",
    DeclineCode.INTERR: "internal error",
    DeclineCode.ERR_RTOK: "rtoken handling failed",
    DeclineCode.ERR_RDYLNK: "ib ready link failed",
    DeclineCode.ERR_REGBUF: "registering RDMA buffers failed",
}

_BY_VALUE: Final[dict[int, DeclineCode]] = {int(code): code for code in DeclineCode}


def decline_code(value: int) -> DeclineCode | None:
    """Return the named code for a wire value, or ``None`` if the kernel defines no such code."""
    return _BY_VALUE.get(value)


def describe(value: int) -> str:
    """``"SMC_CLC_DECL_NOUEID: peer sent no UEID"`` for a known value, ``"unknown"`` otherwise."""
    code = _BY_VALUE.get(value)
    if code is None:
        return "unknown"
    return f"{code.kernel_name}: {code.meaning}"
