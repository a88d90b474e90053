"""Enterprise IDs (EIDs) for SMC v2: user EIDs (UEIDs), the system EID (SEID) and their matching.

Theory of operation
-------------------
SMC v2 only connects two hosts that share an *Enterprise ID*. Each host holds a small table of
user EIDs (``SMC_MAX_UEID`` = 4 entries, added over netlink) and, on s390 only, a system EID
derived from the machine. The client lists its UEIDs in the Proposal's v2 extension (and the
SEID in the SMC-Dv2 extension when ``seid_enabled``); the server picks one shared EID
(``smc_clc_match_eid``) and echoes it in the Accept; the client echoes the Accept's EID in the
Confirm.

Rules of this file: pure functions over 32-byte EIDs (blank padded, as on the wire). Nothing
here knows about sockets or devices.

Kernel source (Linux 6.12.118, net/smc/smc_clc.c): ``smc_clc_ueid_valid``,
``smc_clc_ueid_add`` (table limit and duplicates), ``smc_clc_match_eid``; net/smc/smc_ism.c:
``smc_ism_create_system_eid`` (all zeros off s390), ``smc_ism_get_system_eid`` (NULL when no
ISMv2-capable device exists).

Not modelled: the netlink commands themselves (add/remove/flush/dump), removal of a UEID
while a handshake runs, and the s390 SEID's derivation from the CPU id (the SEID is an input).
"""

from __future__ import annotations

from collections.abc import Iterable

from smcd_check.spec.errors import MalformedInput

#: bytes in an EID on the wire and in the tables (include/uapi/linux/smc.h SMC_MAX_EID_LEN).
SMC_MAX_EID_LEN = 32
#: entries in the local UEID table (include/uapi/linux/smc.h SMC_MAX_UEID); a fifth add
#: fails with -ERANGE.
SMC_MAX_UEID = 4
#: the system EID off s390: 32 zero bytes (smc_ism_create_system_eid).
SEID_NONE = bytes(SMC_MAX_EID_LEN)


class InvalidEid(MalformedInput):
    """An EID given as configuration breaks the kernel's UEID rules (smc_clc_ueid_valid)."""


# The kernel's own ctype table (lib/ctype.c) classifies Latin-1 as well as ASCII, so
# smc_clc_ueid_valid accepts e.g. 0xC0 as an upper-case letter. We reproduce that table
# for the four classes the check uses rather than Python's str methods.
def _k_isspace(c: int) -> bool:
    return c in (9, 10, 11, 12, 13, 32, 160)


def _k_isupper(c: int) -> bool:
    return 65 <= c <= 90 or 192 <= c <= 214 or 216 <= c <= 222


def _k_islower(c: int) -> bool:
    return 97 <= c <= 122 or 223 <= c <= 246 or 248 <= c <= 255


def _k_isalnum(c: int) -> bool:
    return 48 <= c <= 57 or _k_isupper(c) or _k_islower(c)


def pad_eid(text: str | bytes) -> bytes:
    """Return ``text`` blank padded to the 32-byte wire form (as smc-tools does before adding).

    Raises:
        InvalidEid: when ``text`` is longer than 32 bytes.
    """
    raw = text.encode("latin-1") if isinstance(text, str) else bytes(text)
    if len(raw) > SMC_MAX_EID_LEN:
        raise InvalidEid(f"EID {raw!r} has {len(raw)} bytes; at most {SMC_MAX_EID_LEN} allowed")
    return raw + b" " * (SMC_MAX_EID_LEN - len(raw))


def ueid_valid(ueid: bytes) -> bool:
    """``smc_clc_ueid_valid``: 32 bytes, trailing white space is padding, at least one
    character, first character alphanumeric and not lower case, the others upper-case
    letters, digits, ``.`` or ``-`` (so inner blanks are invalid)."""
    if len(ueid) != SMC_MAX_EID_LEN:
        return False
    end = SMC_MAX_EID_LEN - 1
    while end >= 0 and _k_isspace(ueid[end]):
        end -= 1
    if end < 0:
        return False
    if not _k_isalnum(ueid[0]) or _k_islower(ueid[0]):
        return False
    for c in ueid[: end + 1]:
        if (not _k_isalnum(c) or _k_islower(c)) and c not in (0x2E, 0x2D):
            return False
    return True


def ueid_table(ueids: Iterable[str | bytes]) -> tuple[bytes, ...]:
    """Build the local UEID table as ``smc_clc_ueid_add`` would, one add per entry, in order.

    Raises:
        InvalidEid: naming the entry that the kernel would refuse (-EINVAL invalid,
            -EEXIST duplicate, -ERANGE a fifth entry).
    """
    table: list[bytes] = []
    for entry in ueids:
        eid = pad_eid(entry)
        if not ueid_valid(eid):
            raise InvalidEid(
                f"UEID {eid!r} is invalid (smc_clc_ueid_valid: A-Z, 0-9, '.', '-', first "
                "character alphanumeric, blank padded): the kernel refuses it with -EINVAL"
            )
        if len(table) >= SMC_MAX_UEID:
            raise InvalidEid(
                f"UEID {eid!r} would be entry {len(table) + 1}; the table holds "
                f"{SMC_MAX_UEID} (-ERANGE)"
            )
        if eid in table:
            raise InvalidEid(f"UEID {eid!r} is already in the table (-EEXIST)")
        table.append(eid)
    return tuple(table)


def match_eid(
    *,
    local_ueids: tuple[bytes, ...],
    peer_ueids: tuple[bytes, ...],
    peer_seid_flag: bool,
    peer_seid: bytes | None,
    local_seid: bytes | None,
    seid_enabled: bool,
) -> bytes | None:
    """``smc_clc_match_eid``: the EID both sides share, or None.

    The system EID wins when the peer sent one (``peer_seid`` is not None: the SMC-Dv2
    extension exists), the local system EID exists (``local_seid`` is not None: some ISMv2
    device is registered), ``seid_enabled`` is set locally, the peer's ``seid`` flag is set
    and both are byte-equal. Otherwise the first peer UEID, in the peer's order, that is in
    the local table.
    """
    if (
        peer_seid is not None
        and local_seid is not None
        and seid_enabled
        and peer_seid_flag
        and peer_seid == local_seid
    ):
        return peer_seid
    for eid in peer_ueids:
        if eid in local_ueids:
            return eid
    return None
