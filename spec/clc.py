"""The CLC messages that set up SMC-D, byte-exact as Linux 6.12.118 sends and accepts them.

Public API (others build on these names)
----------------------------------------
* :class:`ClcType` (PROPOSAL=1, ACCEPT=2, CONFIRM=3, DECLINE=4), :class:`SmcType` (R=0, D=1,
  N=2, B=3), :data:`EYECATCHER_SMCR` ("SMCR" in EBCDIC), :data:`EYECATCHER_SMCD` ("SMCD").
* Messages (frozen, slotted, kw_only, hashable dataclasses): :class:`Proposal`, :class:`Accept`,
  :class:`Confirm`, :class:`Decline`; their parts :class:`GidChid`, :class:`Ipv6Prefix`,
  :class:`ProposalSmcd`, :class:`ProposalPrefix`, :class:`ProposalV2Ext`, :class:`SmcdV2Ext`,
  :class:`FirstContactExt`, :class:`FirstContactExtV2x`. :data:`ClcMessage` is their union.
* ``encode(msg) -> bytes``, ``decode(data) -> ClcMessage``, ``decode_stream(data) -> list``,
  ``dissect(data_or_msg) -> list[Field]`` (:class:`Field`: name, offset, size, raw, value,
  meaning, mask), ``check_receivable(data, expected_type, buflen)`` (the receive rules that depend
  on context), ``build_proposal(...)`` (a Proposal with the offsets Linux computes).
* Errors: :class:`ClcError` (a :class:`~smcd_check.spec.errors.MalformedInput`) and its
  subclasses :class:`ClcTruncated`, :class:`ClcBadEyecatcher`, :class:`ClcBadLength`,
  :class:`ClcBadType`, :class:`ClcBadVersion`, :class:`ClcBadField`. Each carries ``.field``,
  ``.offset``, ``.expected``, ``.found`` and ``.rule`` (the kernel function whose check failed);
  ``decode_stream`` adds ``.index`` and ``.message_offset``. ``decode`` raises nothing else, for
  any input bytes whatsoever.

Contract: ``decode(encode(m)) == m`` for every valid message ``m``, and ``encode(decode(b)) == b``
for every byte string ``b`` that ``decode`` accepts. The dataclasses therefore carry every byte
the kernel tolerates as non-zero, reserved bytes included (``reserved*`` fields, the Proposal's
``gaps``, the Accept/Confirm ``extra``); ``length`` is not a field: ``encode`` computes it, and
``decode`` accepts only data whose size is exactly the header's length.

Theory of operation
-------------------
Every multi-byte field is big-endian. All messages start with the 8-byte header
``struct smc_clc_msg_hdr`` (eyecatcher[4], type, be16 length, then one byte
``version << 4 | typev2 << 2 | typev1``) and end with a 4-byte trailer eyecatcher at
``length - 4`` (net/smc/smc_clc.h).

Proposal (absolute offsets; net/smc/smc_clc.h ``struct smc_clc_msg_proposal_area``)::

    0   header                     8   lcl.id_for_peer[8]   16  lcl.gid[16]
    32  lcl.mac[6]                 38  be16 iparea_offset (prefix area at 40 + iparea_offset)
    40  smc_clc_msg_smcd: be64 ism.gid, be16 ism.chid (48), be16 v2_ext_offset (50, counted from
        52), vendor_oui[3] (52), vendor_exp_options[5] (55), reserved[20] (60)
    80  smc_clc_msg_proposal_prefix (when typev1 != N): be32 outgoing_subnet, prefix_len,
        reserved[2], ipv6_prefixes_cnt; then cnt * smc_clc_ipv6_prefix (16-byte prefix, len)
    v2  smc_clc_v2_extension at 52 + v2_ext_offset (when typev2 != N): eid_cnt, ism_gid_cnt,
        reserved1, flag (release << 4 | rsvd << 1 | seid), reserved2[2], be16 smcd_v2_ext_offset
        (counted from v2 + 8), roce[16], max_conns, max_links, be16 feature_mask, reserved[12],
        then eid_cnt * user_eid[32]
    d2  smc_clc_smcd_v2_extension at v2 + 8 + smcd_v2_ext_offset (when typev2 is D or B):
        system_eid[32], reserved[16], then ism_gid_cnt * (be64 gid, be16 chid)
    end trailer

Linux places the parts back to back (``build_proposal`` does the same). The kernel's receive
checks (``smc_clc_msg_prop_valid`` with the pointer helpers ``smc_clc_proposal_get_prefix``,
``smc_get_clc_msg_smcd``, ``smc_get_clc_v2_ext``, ``smc_get_clc_smcd_v2_ext``) only bound the
offsets and require the length to equal the sum of the parts' sizes; they do not require the
parts to be contiguous. The receive buffer is a zeroed 652-byte ``smc_clc_msg_proposal_area``
(``kzalloc`` in ``smc_listen_work``), so a pointer may even reach past the message into zeros.
:func:`decode` reproduces exactly that (it reads from the message padded with zeros to 652
bytes), keeps the offsets as fields, and keeps every message byte no part covers in
``Proposal.gaps`` (offset, bytes) so that re-encoding is exact.

Accept / Confirm for SMC-D (``struct smc_clc_msg_accept_confirm``, eyecatcher "SMCD")::

    0   header (typev1 = D; typev2 bit 1 = first contact)
    8   be64 d0.gid      16 be64 d0.token     24 d0.dmbe_idx
    25  d0.dmbe_size << 4 | reserved3         26 reserved4[2]     28 d0.linkid[4] (raw copy)
    v1: 32 reserved[12], 44 trailer (length 48)
    v2: 32 be16 d1.chid, 34 d1.eid[32], 66 be64 d1.gid_ext, 74 first-contact extension
        (``smc_clc_first_contact_ext``, 36 bytes, or ``..._v2x``, 52 bytes) when the
        first-contact bit is set, then the trailer (length 78, 114 or 130 as Linux sends)

``smc_clc_msg_acc_conf_valid`` only requires length >= 78 for v2, so :func:`decode` assigns
the bytes after offset 74 to the longest first-contact form that fits (52, else 36, when the bit
is set) and keeps the rest in ``extra``. SMC-R Accept/Confirm (typev1 = R) are validated like the
kernel does and kept as a raw ``smcr_body``.

Decline (``struct smc_clc_msg_decline`` 28 bytes / ``..._v2`` 44 bytes)::

    0 header   8 id_for_peer[8]   16 be32 peer_diagnosis   20 os_type << 4 | reserved
    21 reserved2[3]   v1: 24 trailer   v2: 24 be32 peer_diagnosis_v2[4], 40 trailer

The kernel never checks a Decline's trailer, so any 4 bytes decode.

Receive rules
-------------
:func:`decode` applies the checks that depend only on the bytes: ``smc_clc_wait_msg``'s
``version >= 1`` and ``smc_clc_msg_hdr_valid`` (eyecatcher, type, per-type validity, trailer).
:func:`check_receivable` adds the rules that depend on the receiver's state: the expected type
(``smc_clc_wait_msg``: anything but the expected type or a Decline is -EPROTO) and the receive
buffer size (a message longer than the buffer has its trailer unchecked).

Not modelled
------------
* What the kernel does with the fields after the checks (device and EID matching, release
  negotiation): that is the handshake's job (``spec/handshake.py``).
* Bytes past the message: the client reads the first-contact extension at offset 74 whatever
  the length (``smc_connect_ism``: ``ini->release_nr = fce->release``). Its Accept buffer is
  zeroed (``kzalloc`` in ``__smc_connect``), as is the server's before the Confirm (``memset`` in
  ``smc_listen_work``), so for a first-contact message too short to hold the extension the
  kernel reads the trailer and zeros instead (a 78-byte first-contact Accept gives release 4,
  the low nibble of the trailer's 0xd4). The codec decodes only the message and leaves
  ``first_contact_ext`` empty; what the kernel makes of it is the handshake's business.
* The SMC-R Accept/Confirm body is not broken into fields (smcd-check is about SMC-D).

Source: net/smc/smc_clc.h, net/smc/smc_clc.c, net/smc/af_smc.c of Linux 6.12.118;
shared/domain/clc.md sections 2-5 and 8.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeAlias

from smcd_check.spec.bufsize import smc_uncompress_bufsize
from smcd_check.spec.decline import describe as describe_decline
from smcd_check.spec.errors import MalformedInput

# --------------------------------------------------------------------------------------------
# Constants (net/smc/smc_clc.h, smc_clc.c, smc.h, include/uapi/linux/smc.h)
# --------------------------------------------------------------------------------------------

#: "SMCR" in EBCDIC (``SMC_EYECATCHER``): Proposal, Decline, SMC-R Accept/Confirm
EYECATCHER_SMCR: Final = b"\xe2\xd4\xc3\xd9"
#: "SMCD" in EBCDIC (``SMCD_EYECATCHER``): SMC-D Accept/Confirm
EYECATCHER_SMCD: Final = b"\xe2\xd4\xc3\xc4"
EYECATCHERS: Final = frozenset({EYECATCHER_SMCR, EYECATCHER_SMCD})

#: ``sizeof(struct smc_clc_msg_hdr)``
HDR_LEN: Final = 8
#: ``sizeof(struct smc_clc_msg_trail)``
TRL_LEN: Final = 4
#: ``SMC_V1`` / ``SMC_V2`` (net/smc/smc.h)
SMC_V1: Final = 1
SMC_V2: Final = 2
#: ``SMC_FIRST_CONTACT_MASK``: bit within the 2-bit typev2 field (first contact / out of sync)
SMC_FIRST_CONTACT_MASK: Final = 0b10

#: ``sizeof(struct smc_clc_msg_proposal)`` (header + lcl + iparea_offset)
PROPOSAL_BASE_LEN: Final = 40
#: ``sizeof(struct smc_clc_msg_smcd)``
PROPOSAL_SMCD_LEN: Final = 40
#: ``sizeof(struct smc_clc_msg_proposal_prefix)``
PROPOSAL_PREFIX_LEN: Final = 8
#: ``sizeof(struct smc_clc_ipv6_prefix)`` (packed)
IPV6_PREFIX_LEN: Final = 17
#: ``sizeof(struct smc_clc_v2_extension)`` fixed part
V2_EXT_LEN: Final = 40
#: ``SMC_MAX_EID_LEN``
EID_LEN: Final = 32
#: ``sizeof(struct smc_clc_smcd_v2_extension)`` fixed part
SMCD_V2_EXT_LEN: Final = 48
#: ``sizeof(struct smc_clc_smcd_gid_chid)`` (packed)
GID_CHID_LEN: Final = 10
#: ``SMC_CLC_MAX_V6_PREFIX``
SMC_CLC_MAX_V6_PREFIX: Final = 8
#: ``SMC_CLC_MAX_UEID``: UEIDs a receiver accepts in a Proposal
SMC_CLC_MAX_UEID: Final = 8
#: ``SMCD_CLC_MAX_V2_GID_ENTRIES``
SMCD_CLC_MAX_V2_GID_ENTRIES: Final = 8
#: ``sizeof(struct smc_clc_msg_proposal_area)``: the server's receive buffer (Proposal, Confirm)
PROPOSAL_AREA_LEN: Final = 652
#: largest ``v2_ext_offset`` ``smc_get_clc_v2_ext`` accepts (224 - 40 - 12)
V2_EXT_OFFSET_MAX: Final = 172
#: largest ``smcd_v2_ext_offset`` ``smc_get_clc_smcd_v2_ext`` accepts (520 - 224 - 8)
SMCD_V2_EXT_OFFSET_MAX: Final = 288

#: ``SMCR_CLC_ACCEPT_CONFIRM_LEN`` / ``SMCD_CLC_ACCEPT_CONFIRM_LEN`` (v1, exact)
SMCR_CLC_ACCEPT_CONFIRM_LEN: Final = 68
SMCD_CLC_ACCEPT_CONFIRM_LEN: Final = 48
#: ``SMCD_CLC_ACCEPT_CONFIRM_LEN_V2`` / ``SMCR_CLC_ACCEPT_CONFIRM_LEN_V2`` (v2, minimum)
SMCD_CLC_ACCEPT_CONFIRM_LEN_V2: Final = 78
SMCR_CLC_ACCEPT_CONFIRM_LEN_V2: Final = 108
#: offset of the first-contact extension in an SMC-D v2 Accept/Confirm
#: (``offsetofend(struct smc_clc_msg_accept_confirm, d1)``)
SMCD_FCE_OFFSET: Final = 74
#: ``sizeof(struct smc_clc_first_contact_ext)`` / ``..._v2x``
FCE_LEN: Final = 36
FCE_V2X_LEN: Final = 52
#: ``SMC_CLC_MAX_ACCEPT_LEN``: the client's receive buffer for the Accept (104 + 52 + 4)
SMC_CLC_MAX_ACCEPT_LEN: Final = 160

#: ``sizeof(struct smc_clc_msg_decline)`` / ``sizeof(struct smc_clc_msg_decline_v2)``
DECLINE_LEN: Final = 28
DECLINE_V2_LEN: Final = 44
#: ``SMC_DECL_DIAG_COUNT_V2``
SMC_DECL_DIAG_COUNT_V2: Final = 4

#: ``SMC_CLC_OS_*`` (first-contact extension and Decline v2 ``os_type``)
OS_TYPES: Final = {1: "z/OS", 2: "Linux", 3: "AIX"}


class ClcType(enum.IntEnum):
    """The CLC message type in header byte 4 (``SMC_CLC_*``, net/smc/smc_clc.h)."""

    #: client -> server: offers SMC-R/SMC-D, v1/v2
    PROPOSAL = 1
    #: server -> client: picks the device and announces its DMB
    ACCEPT = 2
    #: client -> server: announces its DMB
    CONFIRM = 3
    #: either side: refuses SMC, both fall back to TCP
    DECLINE = 4


class SmcType(enum.IntEnum):
    """The 2-bit SMC type (``SMC_TYPE_*``, net/smc/smc_clc.h) in header fields typev1/typev2."""

    #: SMC-R only
    R = 0
    #: SMC-D only
    D = 1
    #: neither
    N = 2
    #: both SMC-R and SMC-D
    B = 3

    @property
    def smcd(self) -> bool:
        """``smcd_indicated``: D or B."""
        return self in (SmcType.D, SmcType.B)

    @property
    def smcr(self) -> bool:
        """``smcr_indicated``: R or B."""
        return self in (SmcType.R, SmcType.B)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ClcError(MalformedInput):
    """A CLC message the kernel would not accept (or bytes that are not one).

    Attributes:
        field: the kernel's name of the offending field (``hdr.length``, ``pclc_prfx.
            ipv6_prefixes_cnt``...), or a part (``header``, ``message``).
        offset: absolute byte offset of that field in the message (or stream); -1 when the
            error is not about a wire position (a dataclass built with an out-of-range value).
        expected: what the kernel requires, in words.
        found: what the bytes hold.
        rule: the kernel function whose check failed.
        index / message_offset: set by :func:`decode_stream`: which message, starting where.
    """

    def __init__(
        self,
        *,
        field: str,
        offset: int,
        expected: str,
        found: str,
        rule: str = "",
        index: int | None = None,
        message_offset: int | None = None,
    ) -> None:
        self.field = field
        self.offset = offset
        self.expected = expected
        self.found = found
        self.rule = rule
        self.index = index
        self.message_offset = message_offset
        super().__init__(self._text())

    def _text(self) -> str:
        where = ""
        if self.index is not None:
            where = f"message {self.index} (at byte {self.message_offset}): "
        rule = f" [{self.rule}]" if self.rule else ""
        at = f" at offset {self.offset}" if self.offset >= 0 else ""
        return (
            f"{where}{self.kind}: {self.field}{at}: "
            f"expected {self.expected}, found {self.found}{rule}"
        )

    #: a short noun for the message text, overridden by the subclasses
    kind = "bad CLC message"

    def in_stream(self, index: int, message_offset: int) -> ClcError:
        """The same error, re-raised for message ``index`` of a stream starting at its offset."""
        return type(self)(
            field=self.field,
            offset=self.offset + message_offset if self.offset >= 0 else -1,
            expected=self.expected,
            found=self.found,
            rule=self.rule,
            index=index,
            message_offset=message_offset,
        )


class ClcTruncated(ClcError):
    """Fewer bytes than the header (or the header's length) says."""

    kind = "truncated CLC message"


class ClcBadEyecatcher(ClcError):
    """Header or trailer eyecatcher is neither "SMCR" nor "SMCD"."""

    kind = "bad eyecatcher"


class ClcBadLength(ClcError):
    """The header's length does not fit the message type and contents."""

    kind = "bad length"


class ClcBadType(ClcError):
    """Unknown message type, or a type the receiver did not expect."""

    kind = "bad type"


class ClcBadVersion(ClcError):
    """Header version below 1."""

    kind = "bad version"


class ClcBadField(ClcError):
    """A field outside the range the kernel accepts (offsets, counts, SMC types...)."""

    kind = "bad field"


def _hex(b: bytes) -> str:
    return b.hex() if b else "(none)"


def _need(cond: bool, err: type[ClcError], field: str, offset: int, expected: str, found: object,
          rule: str) -> None:
    if not cond:
        raise err(field=field, offset=offset, expected=expected, found=str(found), rule=rule)


def _check_bytes(value: object, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ClcBadField(field=name, offset=-1, expected=f"{size} bytes",
                          found=repr(value)[:60], rule="dataclass")


def _check_int(value: object, bits: int, name: str) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ClcBadField(field=name, offset=-1, expected=f"an unsigned {bits}-bit int",
                          found=repr(value)[:60], rule="dataclass")


# --------------------------------------------------------------------------------------------
# Message parts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GidChid:
    """``struct smc_clc_smcd_gid_chid`` (10 bytes, packed): an ISM device's GID and CHID."""

    gid: int  # be64
    chid: int  # be16; (chid & 0xFF00) == 0xFF00 means an emulated ISM device (loopback-ism)

    def __post_init__(self) -> None:
        _check_int(self.gid, 64, "gid")
        _check_int(self.chid, 16, "chid")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ipv6Prefix:
    """``struct smc_clc_ipv6_prefix`` (17 bytes, packed)."""

    prefix: bytes  # 16 bytes, an IPv6 address with the host bits cleared
    prefix_len: int  # u8

    def __post_init__(self) -> None:
        _check_bytes(self.prefix, 16, "prefix")
        _check_int(self.prefix_len, 8, "prefix_len")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalSmcd:
    """``struct smc_clc_msg_smcd`` (40 bytes at offset 40 of a Proposal)."""

    ism: GidChid = GidChid(gid=0, chid=0)  # the v1 ISM device (zero when no v1 SMC-D offered)
    v2_ext_offset: int = 0  # be16; v2 extension at 52 + this; 0 = none
    vendor_oui: bytes = bytes(3)
    vendor_exp_options: bytes = bytes(5)
    reserved: bytes = bytes(20)

    def __post_init__(self) -> None:
        _check_int(self.v2_ext_offset, 16, "v2_ext_offset")
        _check_bytes(self.vendor_oui, 3, "vendor_oui")
        _check_bytes(self.vendor_exp_options, 5, "vendor_exp_options")
        _check_bytes(self.reserved, 20, "reserved")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalPrefix:
    """``struct smc_clc_msg_proposal_prefix`` + its IPv6 prefixes (8 + 17 * n bytes)."""

    outgoing_subnet: bytes = bytes(4)  # be32 IPv4 subnet (network order, as on the wire)
    prefix_len: int = 0  # number of significant bits of the subnet
    reserved: bytes = bytes(2)
    ipv6_prefixes: tuple[Ipv6Prefix, ...] = ()  # ipv6_prefixes_cnt = len(...) (<= 8)

    def __post_init__(self) -> None:
        _check_bytes(self.outgoing_subnet, 4, "outgoing_subnet")
        _check_int(self.prefix_len, 8, "prefix_len")
        _check_bytes(self.reserved, 2, "reserved")
        _need(len(self.ipv6_prefixes) <= SMC_CLC_MAX_V6_PREFIX, ClcBadField,
              "ipv6_prefixes_cnt", -1, "<= 8", len(self.ipv6_prefixes), "dataclass")

    @property
    def size(self) -> int:
        return PROPOSAL_PREFIX_LEN + IPV6_PREFIX_LEN * len(self.ipv6_prefixes)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmcdV2Ext:
    """``struct smc_clc_smcd_v2_extension`` (48 + 10 * n bytes)."""

    system_eid: bytes = bytes(EID_LEN)  # copied only when the seid flag is set
    reserved: bytes = bytes(16)
    gidchids: tuple[GidChid, ...] = ()  # one per native ISM, two (gid, gid_ext) per emulated

    def __post_init__(self) -> None:
        _check_bytes(self.system_eid, EID_LEN, "system_eid")
        _check_bytes(self.reserved, 16, "reserved")
        _need(len(self.gidchids) <= SMCD_CLC_MAX_V2_GID_ENTRIES, ClcBadField,
              "ism_gid_cnt", -1, "<= 8", len(self.gidchids), "dataclass")

    @property
    def size(self) -> int:
        return SMCD_V2_EXT_LEN + GID_CHID_LEN * len(self.gidchids)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalV2Ext:
    """``struct smc_clc_v2_extension`` (40 + 32 * eid_cnt bytes) and its SMC-Dv2 extension.

    ``ism_gid_cnt`` is a field of its own: the count lives here but the entries live in the
    SMC-Dv2 extension, which may be absent (typev2 = R, or an offset the kernel rejects).
    """

    ism_gid_cnt: int = 0
    reserved1: int = 0
    release: int = 1  # flag bits 7..4: SMC_RELEASE (1 in 6.12)
    flag_rsvd: int = 0  # flag bits 3..1
    seid: bool = False  # flag bit 0: system EID in use
    reserved2: bytes = bytes(2)
    smcd_v2_ext_offset: int = 0  # be16; SMC-Dv2 extension at (this ext + 8) + offset
    roce: bytes = bytes(16)  # RoCEv2 GID (SMC-Rv2)
    max_conns: int = 0
    max_links: int = 0
    feature_mask: int = 0  # bit 0: SMC_SPF_EMULATED_ISM_DEV
    reserved: bytes = bytes(12)
    user_eids: tuple[bytes, ...] = ()  # eid_cnt = len(...), 32 bytes each, blank padded
    smcd_v2_ext: SmcdV2Ext | None = None

    def __post_init__(self) -> None:
        for name, bits in (("ism_gid_cnt", 8), ("reserved1", 8), ("release", 4),
                           ("flag_rsvd", 3), ("smcd_v2_ext_offset", 16), ("max_conns", 8),
                           ("max_links", 8), ("feature_mask", 16)):
            _check_int(getattr(self, name), bits, name)
        _check_bytes(self.reserved2, 2, "reserved2")
        _check_bytes(self.roce, 16, "roce")
        _check_bytes(self.reserved, 12, "reserved")
        _need(len(self.user_eids) <= SMC_CLC_MAX_UEID, ClcBadField, "eid_cnt", -1, "<= 8",
              len(self.user_eids), "dataclass")
        for eid in self.user_eids:
            _check_bytes(eid, EID_LEN, "user_eids[]")
        if self.smcd_v2_ext is not None:
            _need(len(self.smcd_v2_ext.gidchids) == self.ism_gid_cnt, ClcBadField,
                  "ism_gid_cnt", -1, f"== {len(self.smcd_v2_ext.gidchids)} (the GID/CHID entries)",
                  self.ism_gid_cnt, "dataclass")

    @property
    def eid_cnt(self) -> int:
        return len(self.user_eids)

    @property
    def size(self) -> int:
        return V2_EXT_LEN + EID_LEN * len(self.user_eids)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstContactExtV2x:
    """The 16 bytes ``struct smc_clc_first_contact_ext_v2x`` adds (release >= 1)."""

    max_conns: int = 0  # SMC-R only; reserved3[0] for SMC-D
    max_links: int = 0  # SMC-R only; reserved3[1] for SMC-D
    feature_mask: int = 0  # be16
    vendor_exp_options: int = 0  # be32
    reserved4: bytes = bytes(8)

    def __post_init__(self) -> None:
        for name, bits in (("max_conns", 8), ("max_links", 8), ("feature_mask", 16),
                           ("vendor_exp_options", 32)):
            _check_int(getattr(self, name), bits, name)
        _check_bytes(self.reserved4, 8, "reserved4")


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstContactExt:
    """``struct smc_clc_first_contact_ext`` (36 bytes), with ``v2x`` the 52-byte form."""

    v2_direct: bool = False  # byte 0 bit 7 (SMC-R only)
    reserved: int = 0  # byte 0 bits 6..0
    os_type: int = 2  # byte 1 bits 7..4: SMC_CLC_OS_LINUX
    release: int = 1  # byte 1 bits 3..0
    reserved2: bytes = bytes(2)
    hostname: bytes = b" " * 32  # utsname nodename, blank padded
    v2x: FirstContactExtV2x | None = None

    def __post_init__(self) -> None:
        _check_int(self.reserved, 7, "reserved")
        _check_int(self.os_type, 4, "os_type")
        _check_int(self.release, 4, "release")
        _check_bytes(self.reserved2, 2, "reserved2")
        _check_bytes(self.hostname, 32, "hostname")

    @property
    def size(self) -> int:
        return FCE_V2X_LEN if self.v2x is not None else FCE_LEN


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _check_header(eyecatcher: bytes, version: int, typev2: int, typev1: int,
                  trailer: bytes) -> None:
    _check_bytes(eyecatcher, 4, "hdr.eyecatcher")
    _check_bytes(trailer, 4, "trl.eyecatcher")
    _check_int(version, 4, "hdr.version")
    _check_int(typev2, 2, "hdr.typev2")
    _check_int(typev1, 2, "hdr.typev1")
    _need(version >= SMC_V1, ClcBadVersion, "hdr.version", 7, ">= 1", version, "dataclass")


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A CLC Proposal (``struct smc_clc_msg_proposal`` and the parts that follow it).

    Presence rules (checked here, so every Proposal encodes to something the kernel reads back
    the same way): ``smcd`` is present for a v2 header, or for v1 when ``iparea_offset`` is 40;
    ``prefix`` iff ``typev1 != N``; ``v2_ext`` iff version >= 2 and ``typev2 != N``;
    ``v2_ext.smcd_v2_ext`` only if ``typev2`` is D or B. ``gaps`` holds message bytes that no part
    covers (empty for the layout Linux sends).
    """

    eyecatcher: bytes = EYECATCHER_SMCR
    version: int = SMC_V2  # Linux sends 2 even when it offers v1 only
    typev2: SmcType = SmcType.D
    typev1: SmcType = SmcType.N
    id_for_peer: bytes = bytes(8)  # lcl: SMC-R system id
    gid: bytes = bytes(16)  # lcl: RoCE GID
    mac: bytes = bytes(6)  # lcl: RoCE MAC
    iparea_offset: int = 0  # be16; prefix area at 40 + this
    smcd: ProposalSmcd | None = None
    prefix: ProposalPrefix | None = None
    v2_ext: ProposalV2Ext | None = None
    gaps: tuple[tuple[int, bytes], ...] = ()
    trailer: bytes = EYECATCHER_SMCR

    def __post_init__(self) -> None:
        _check_header(self.eyecatcher, self.version, self.typev2, self.typev1, self.trailer)
        object.__setattr__(self, "typev2", SmcType(self.typev2))
        object.__setattr__(self, "typev1", SmcType(self.typev1))
        _check_bytes(self.id_for_peer, 8, "lcl.id_for_peer")
        _check_bytes(self.gid, 16, "lcl.gid")
        _check_bytes(self.mac, 6, "lcl.mac")
        _need(isinstance(self.iparea_offset, int) and 0 <= self.iparea_offset
              <= PROPOSAL_SMCD_LEN, ClcBadField, "iparea_offset", 38, "0..40",
              self.iparea_offset, "smc_clc_proposal_get_prefix")
        v2 = self.version >= SMC_V2
        if v2 or self.iparea_offset == PROPOSAL_SMCD_LEN:
            _need(self.smcd is not None, ClcBadField, "pclc_smcd", 40,
                  "an SMC-D area (v2, or v1 with iparea_offset 40)", "none", "dataclass")
        else:
            _need(self.smcd is None, ClcBadField, "pclc_smcd", 40,
                  "no SMC-D area (v1 with iparea_offset < 40)", "one", "dataclass")
        _need((self.prefix is not None) == (self.typev1 != SmcType.N), ClcBadField,
              "pclc_prfx", 40 + self.iparea_offset, "a prefix area iff typev1 != N",
              f"typev1 {self.typev1.name}, prefix {'present' if self.prefix else 'absent'}",
              "smc_clc_msg_prop_valid")
        if not v2:
            _need(self.typev1 != SmcType.N, ClcBadField, "hdr.typev1", 7,
                  "R, D or B in a v1 Proposal", "N", "smc_clc_msg_prop_valid")
            _need(self.v2_ext is None, ClcBadField, "pclc_v2_ext", -1,
                  "no v2 extension in a v1 Proposal", "one", "dataclass")
        else:
            _need((self.v2_ext is not None) == (self.typev2 != SmcType.N), ClcBadField,
                  "pclc_v2_ext", -1, "a v2 extension iff typev2 != N",
                  f"typev2 {self.typev2.name}, v2_ext {'present' if self.v2_ext else 'absent'}",
                  "smc_clc_msg_prop_valid")
            if self.v2_ext is not None and self.v2_ext.smcd_v2_ext is not None:
                _need(self.typev2.smcd, ClcBadField, "pclc_smcd_v2_ext", -1,
                      "an SMC-Dv2 extension only if typev2 is D or B", self.typev2.name,
                      "smc_clc_msg_prop_valid")
        for gap in self.gaps:
            _need(isinstance(gap, tuple) and len(gap) == 2 and isinstance(gap[0], int)
                  and isinstance(gap[1], bytes) and len(gap[1]) > 0, ClcBadField, "gaps", -1,
                  "(offset, non-empty bytes) pairs", repr(gap)[:60], "dataclass")

    @property
    def type(self) -> ClcType:
        return ClcType.PROPOSAL

    @property
    def length(self) -> int:
        """The header length the kernel requires (``smc_clc_msg_prop_valid``)."""
        prefix = self.prefix.size if self.prefix is not None else 0
        if self.version < SMC_V2:
            return PROPOSAL_BASE_LEN + self.iparea_offset + prefix + TRL_LEN
        length = PROPOSAL_BASE_LEN + PROPOSAL_SMCD_LEN + prefix + TRL_LEN
        if self.v2_ext is not None:
            length += self.v2_ext.size
            if self.typev2.smcd:
                length += SMCD_V2_EXT_LEN + GID_CHID_LEN * self.v2_ext.ism_gid_cnt
        return length


@dataclass(frozen=True, slots=True, kw_only=True)
class _AcceptConfirm:
    """Common layout of Accept and Confirm (``struct smc_clc_msg_accept_confirm``).

    For SMC-D (``typev1`` = D) the d0/d1 fields are used; ``v1_reserved`` holds bytes 32..43 of a
    v1 message (must stay zero for v2), ``chid``/``eid``/``gid_ext`` those of a v2 message (must
    stay zero for v1). ``first_contact_ext`` only with version >= 2 and the first-contact bit;
    ``extra`` (v2 only) holds bytes between the known parts and the trailer. For SMC-R
    (``typev1`` = R) the whole body (bytes 8 .. length-4) is ``smcr_body`` and the SMC-D fields
    stay at their defaults.
    """

    eyecatcher: bytes = EYECATCHER_SMCD
    version: int = SMC_V2
    typev2: int = 0  # bit 1: first contact (SMC_FIRST_CONTACT_MASK); bit 0 reserved
    typev1: SmcType = SmcType.D
    gid: int = 0  # d0.gid: sender's ISM GID
    token: int = 0  # d0.token: sender's DMB token
    dmbe_idx: int = 0  # d0.dmbe_idx (Linux: 0)
    dmbe_size: int = 0  # d0.dmbe_size: compressed DMB size (nibble)
    reserved3: int = 0  # low nibble of byte 25
    reserved4: bytes = bytes(2)
    linkid: bytes = bytes(4)  # d0.linkid: raw copy of lgr->id (host order on the sender)
    v1_reserved: bytes = bytes(12)
    chid: int = 0  # d1.chid (v2)
    eid: bytes = bytes(EID_LEN)  # d1.eid (v2): negotiated EID
    gid_ext: int = 0  # d1.gid_ext (v2): second half of an emulated ISM GID
    first_contact_ext: FirstContactExt | None = None
    extra: bytes = b""
    smcr_body: bytes | None = None
    trailer: bytes = EYECATCHER_SMCD

    def __post_init__(self) -> None:
        _check_header(self.eyecatcher, self.version, self.typev2, self.typev1, self.trailer)
        object.__setattr__(self, "typev1", SmcType(self.typev1))
        _need(self.typev1 in (SmcType.R, SmcType.D), ClcBadField, "hdr.typev1", 7,
              "R or D", self.typev1.name, "smc_clc_msg_acc_conf_valid")
        for name, bits in (("gid", 64), ("token", 64), ("dmbe_idx", 8), ("dmbe_size", 4),
                           ("reserved3", 4), ("chid", 16), ("gid_ext", 64)):
            _check_int(getattr(self, name), bits, name)
        _check_bytes(self.reserved4, 2, "reserved4")
        _check_bytes(self.linkid, 4, "linkid")
        _check_bytes(self.v1_reserved, 12, "v1_reserved")
        _check_bytes(self.eid, EID_LEN, "eid")
        if not isinstance(self.extra, bytes):
            _check_bytes(self.extra, 0, "extra")
        v2 = self.version >= SMC_V2
        if self.typev1 == SmcType.R:
            body = self.smcr_body
            need = (SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 if v2 else SMCR_CLC_ACCEPT_CONFIRM_LEN) - 12
            _need(isinstance(body, bytes) and (len(body) >= need if v2 else len(body) == need),
                  ClcBadField, "smcr_body", 8,
                  f"{'at least ' if v2 else ''}{need} bytes for an SMC-R {'v2' if v2 else 'v1'}",
                  repr(body)[:40], "smc_clc_msg_acc_conf_valid")
            odd = [n for n, v in _SMCD_DEFAULTS.items() if getattr(self, n) != v]
            _need(not odd, ClcBadField, ",".join(odd) or "d0", 8,
                  "SMC-D fields at their defaults for an SMC-R message", "non-default values",
                  "dataclass")
            return
        _need(self.smcr_body is None, ClcBadField, "smcr_body", 8, "None for SMC-D",
              "bytes", "dataclass")
        if not v2:
            _need(self.chid == 0 and self.eid == bytes(EID_LEN) and self.gid_ext == 0
                  and self.first_contact_ext is None and self.extra == b"", ClcBadField,
                  "d1", 32, "no v2 fields in a v1 message (use v1_reserved)", "v2 fields",
                  "dataclass")
            return
        _need(self.v1_reserved == bytes(12), ClcBadField, "v1_reserved", 32,
              "zero in a v2 message (bytes 32..43 are chid/eid)", _hex(self.v1_reserved),
              "dataclass")
        fce = self.first_contact_ext
        if not self.first_contact:
            _need(fce is None, ClcBadField, "first_contact_ext", SMCD_FCE_OFFSET,
                  "none without the first-contact bit", "one", "smc_get_clc_first_contact_ext")
        elif fce is None:
            _need(len(self.extra) < FCE_LEN, ClcBadField, "extra", SMCD_FCE_OFFSET,
                  f"fewer than {FCE_LEN} bytes when there is no first-contact extension",
                  len(self.extra), "dataclass")
        elif fce.v2x is None:
            _need(len(self.extra) < FCE_V2X_LEN - FCE_LEN, ClcBadField, "extra",
                  SMCD_FCE_OFFSET + FCE_LEN,
                  f"fewer than {FCE_V2X_LEN - FCE_LEN} bytes after a 36-byte extension",
                  len(self.extra), "dataclass")

    @property
    def first_contact(self) -> bool:
        """The first-contact bit (``typev2 & SMC_FIRST_CONTACT_MASK``)."""
        return bool(self.typev2 & SMC_FIRST_CONTACT_MASK)

    @property
    def dmbe_bytes(self) -> int:
        """The announced DMB size in bytes (``smc_uncompress_bufsize(dmbe_size)``)."""
        return smc_uncompress_bufsize(self.dmbe_size)

    @property
    def length(self) -> int:
        if self.typev1 == SmcType.R:
            assert self.smcr_body is not None
            return HDR_LEN + len(self.smcr_body) + TRL_LEN
        if self.version < SMC_V2:
            return SMCD_CLC_ACCEPT_CONFIRM_LEN
        fce = self.first_contact_ext.size if self.first_contact_ext is not None else 0
        return SMCD_FCE_OFFSET + fce + len(self.extra) + TRL_LEN


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept(_AcceptConfirm):
    """A CLC Accept (server -> client)."""

    @property
    def type(self) -> ClcType:
        return ClcType.ACCEPT


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm(_AcceptConfirm):
    """A CLC Confirm (client -> server)."""

    @property
    def type(self) -> ClcType:
        return ClcType.CONFIRM


#: the SMC-D fields of an Accept/Confirm and their defaults (all must stay so for SMC-R)
_SMCD_DEFAULTS: Final[dict[str, object]] = {
    "gid": 0, "token": 0, "dmbe_idx": 0, "dmbe_size": 0, "reserved3": 0,
    "reserved4": bytes(2), "linkid": bytes(4), "v1_reserved": bytes(12), "chid": 0,
    "eid": bytes(EID_LEN), "gid_ext": 0, "first_contact_ext": None, "extra": b"",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decline:
    """A CLC Decline (``struct smc_clc_msg_decline`` / ``smc_clc_msg_decline_v2``)."""

    eyecatcher: bytes = EYECATCHER_SMCR
    version: int = SMC_V2
    typev2: int = 0  # bit 1: out of sync (sent with SMC_CLC_DECL_SYNCERR); bit 0 reserved
    typev1: int = 0  # not checked since 6.12.46 (Linux sends 0)
    id_for_peer: bytes = bytes(8)  # SMC-R system id; zero for SMC-D
    peer_diagnosis: int  # be32: an SMC_CLC_DECL_* code (unknown values are kept)
    os_type: int = 2  # v2: SMC_CLC_OS_LINUX; v1: 0
    reserved: int = 0  # low nibble of byte 20
    reserved2: bytes = bytes(3)
    peer_diagnosis_v2: tuple[int, ...] = (0, 0, 0, 0)  # v2 only (zeros for v1)
    trailer: bytes = EYECATCHER_SMCR  # never checked by the kernel

    def __post_init__(self) -> None:
        _check_header(self.eyecatcher, self.version, self.typev2, self.typev1, self.trailer)
        _check_bytes(self.id_for_peer, 8, "id_for_peer")
        _check_int(self.peer_diagnosis, 32, "peer_diagnosis")
        _check_int(self.os_type, 4, "os_type")
        _check_int(self.reserved, 4, "reserved")
        _check_bytes(self.reserved2, 3, "reserved2")
        _need(isinstance(self.peer_diagnosis_v2, tuple)
              and len(self.peer_diagnosis_v2) == SMC_DECL_DIAG_COUNT_V2, ClcBadField,
              "peer_diagnosis_v2", 24, "a tuple of 4 ints", repr(self.peer_diagnosis_v2)[:60],
              "dataclass")
        for value in self.peer_diagnosis_v2:
            _check_int(value, 32, "peer_diagnosis_v2[]")
        if self.version < SMC_V2:
            _need(self.peer_diagnosis_v2 == (0, 0, 0, 0), ClcBadField, "peer_diagnosis_v2",
                  24, "zeros in a v1 Decline (no such field)", self.peer_diagnosis_v2,
                  "dataclass")

    @property
    def type(self) -> ClcType:
        return ClcType.DECLINE

    @property
    def out_of_sync(self) -> bool:
        """The out-of-sync bit (``typev2 & SMC_FIRST_CONTACT_MASK``)."""
        return bool(self.typev2 & SMC_FIRST_CONTACT_MASK)

    @property
    def length(self) -> int:
        return DECLINE_LEN if self.version < SMC_V2 else DECLINE_V2_LEN


#: any CLC message
ClcMessage: TypeAlias = Proposal | Accept | Confirm | Decline


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

_HDR = struct.Struct(">4sBHB")
_GIDCHID = struct.Struct(">QH")


def _hdr(eyecatcher: bytes, ctype: int, length: int, version: int, typev2: int,
         typev1: int) -> bytes:
    return _HDR.pack(eyecatcher, ctype, length, (version << 4) | (typev2 << 2) | typev1)


def _enc_prefix(p: ProposalPrefix) -> bytes:
    out = [p.outgoing_subnet, bytes([p.prefix_len]), p.reserved, bytes([len(p.ipv6_prefixes)])]
    out += [x.prefix + bytes([x.prefix_len]) for x in p.ipv6_prefixes]
    return b"".join(out)


def _enc_v2_ext(v: ProposalV2Ext) -> bytes:
    flag = (v.release << 4) | (v.flag_rsvd << 1) | int(v.seid)
    head = struct.pack(">BBBB2sH16sBBH12s", len(v.user_eids), v.ism_gid_cnt, v.reserved1, flag,
                       v.reserved2, v.smcd_v2_ext_offset, v.roce, v.max_conns, v.max_links,
                       v.feature_mask, v.reserved)
    return head + b"".join(v.user_eids)


def _enc_smcd_v2_ext(s: SmcdV2Ext) -> bytes:
    return s.system_eid + s.reserved + b"".join(_GIDCHID.pack(g.gid, g.chid) for g in s.gidchids)


def _enc_proposal(m: Proposal) -> bytes:
    length = m.length
    size = max(length, PROPOSAL_AREA_LEN)
    buf = bytearray(size)
    buf[0:40] = (_hdr(m.eyecatcher, ClcType.PROPOSAL, length, m.version, m.typev2, m.typev1)
                 + m.id_for_peer + m.gid + m.mac + struct.pack(">H", m.iparea_offset))

    def put(offset: int, data: bytes) -> None:
        end = min(offset + len(data), size)
        buf[offset:end] = data[: end - offset]

    if m.smcd is not None:
        s = m.smcd
        put(40, _GIDCHID.pack(s.ism.gid, s.ism.chid) + struct.pack(">H", s.v2_ext_offset)
            + s.vendor_oui + s.vendor_exp_options + s.reserved)
    if m.prefix is not None:
        put(PROPOSAL_BASE_LEN + m.iparea_offset, _enc_prefix(m.prefix))
    if m.v2_ext is not None and m.smcd is not None:
        v2_at = 52 + m.smcd.v2_ext_offset
        put(v2_at, _enc_v2_ext(m.v2_ext))
        if m.v2_ext.smcd_v2_ext is not None:
            put(v2_at + 8 + m.v2_ext.smcd_v2_ext_offset, _enc_smcd_v2_ext(m.v2_ext.smcd_v2_ext))
    for offset, data in m.gaps:
        put(offset, data)
    put(length - TRL_LEN, m.trailer)
    return bytes(buf[:length])


def _enc_fce(f: FirstContactExt) -> bytes:
    out = bytes([(int(f.v2_direct) << 7) | f.reserved, (f.os_type << 4) | f.release])
    out += f.reserved2 + f.hostname
    if f.v2x is not None:
        x = f.v2x
        out += struct.pack(">BBHI8s", x.max_conns, x.max_links, x.feature_mask,
                           x.vendor_exp_options, x.reserved4)
    return out


def _enc_accept_confirm(m: _AcceptConfirm) -> bytes:
    ctype = ClcType.ACCEPT if isinstance(m, Accept) else ClcType.CONFIRM
    hdr = _hdr(m.eyecatcher, ctype, m.length, m.version, m.typev2, m.typev1)
    if m.typev1 == SmcType.R:
        assert m.smcr_body is not None
        return hdr + m.smcr_body + m.trailer
    d0 = struct.pack(">QQBB2s4s", m.gid, m.token, m.dmbe_idx, (m.dmbe_size << 4) | m.reserved3,
                     m.reserved4, m.linkid)
    if m.version < SMC_V2:
        return hdr + d0 + m.v1_reserved + m.trailer
    d1 = struct.pack(">H32sQ", m.chid, m.eid, m.gid_ext)
    fce = _enc_fce(m.first_contact_ext) if m.first_contact_ext is not None else b""
    return hdr + d0 + d1 + fce + m.extra + m.trailer


def _enc_decline(m: Decline) -> bytes:
    out = _hdr(m.eyecatcher, ClcType.DECLINE, m.length, m.version, m.typev2, m.typev1)
    out += m.id_for_peer + struct.pack(">IB3s", m.peer_diagnosis, (m.os_type << 4) | m.reserved,
                                       m.reserved2)
    if m.version >= SMC_V2:
        out += struct.pack(">4I", *m.peer_diagnosis_v2)
    return out + m.trailer


def encode(msg: ClcMessage) -> bytes:
    """The wire bytes of ``msg`` (header length computed from the contents)."""
    if isinstance(msg, Proposal):
        return _enc_proposal(msg)
    if isinstance(msg, _AcceptConfirm):
        return _enc_accept_confirm(msg)
    if isinstance(msg, Decline):
        return _enc_decline(msg)
    raise TypeError(f"not a CLC message: {type(msg).__name__}")


# --------------------------------------------------------------------------------------------
# Decoding and validation
# --------------------------------------------------------------------------------------------

_R_HDR = "smc_clc_msg_hdr_valid"
_R_WAIT = "smc_clc_wait_msg"
_R_PROP = "smc_clc_msg_prop_valid"
_R_ACC = "smc_clc_msg_acc_conf_valid"
_R_DECL = "smc_clc_msg_decl_valid"


def _type_name(value: int) -> str:
    try:
        return f"{value} ({ClcType(value).name})"
    except ValueError:
        return f"{value} (unknown)"


def _check_prefix_header(data: bytes) -> tuple[int, int, int, int, int]:
    """Checks every message shares; returns (type, length, version, typev2, typev1)."""
    # Written as plain ifs (not _need) so the error texts are only built on failure: this is
    # the hot path of every decode.
    n = len(data)
    if n < HDR_LEN:
        raise ClcTruncated(field="header", offset=0, expected=f"at least {HDR_LEN} bytes",
                           found=f"{n} bytes", rule=_R_WAIT)
    eyecatcher, ctype, length, flags = _HDR.unpack_from(data, 0)
    if eyecatcher not in EYECATCHERS:
        raise ClcBadEyecatcher(field="hdr.eyecatcher", offset=0,
                               expected="e2d4c3d9 (SMCR) or e2d4c3c4 (SMCD)",
                               found=eyecatcher.hex(), rule=_R_HDR)
    if not 1 <= ctype <= 4:
        raise ClcBadType(field="hdr.type", offset=4,
                         expected="1..4 (PROPOSAL, ACCEPT, CONFIRM, DECLINE)",
                         found=_type_name(ctype), rule=_R_HDR)
    version = flags >> 4
    if version < SMC_V1:
        raise ClcBadVersion(field="hdr.version", offset=7, expected=">= 1", found=str(version),
                            rule=_R_WAIT)
    return ctype, length, version, (flags >> 2) & 3, flags & 3


def _check_size(data: bytes, length: int) -> None:
    n = len(data)
    if n < length:
        raise ClcTruncated(field="message", offset=n, expected=f"{length} bytes (hdr.length)",
                           found=f"{n} bytes", rule=_R_WAIT)
    if n != length:
        raise ClcBadLength(field="hdr.length", offset=5,
                           expected=f"{n} (the bytes given; use decode_stream for several "
                                    "messages)", found=str(length), rule=_R_WAIT)


def _check_trailer(data: bytes, length: int) -> bytes:
    trailer = data[length - TRL_LEN: length]
    if trailer not in EYECATCHERS:
        raise ClcBadEyecatcher(field="trl.eyecatcher", offset=length - TRL_LEN,
                               expected="e2d4c3d9 (SMCR) or e2d4c3c4 (SMCD)",
                               found=trailer.hex(), rule=_R_HDR)
    return trailer


def _dec_decline(data: bytes, length: int, version: int, typev2: int, typev1: int) -> Decline:
    want = DECLINE_LEN if version == SMC_V1 else DECLINE_V2_LEN
    _need(length == want, ClcBadLength, "hdr.length", 5,
          f"{want} for a v{'1' if version == SMC_V1 else '2+'} Decline", length, _R_DECL)
    _check_size(data, length)
    id_for_peer = data[8:16]
    diag, os_byte, reserved2 = struct.unpack_from(">IB3s", data, 16)
    diag_v2: tuple[int, ...] = (0, 0, 0, 0)
    if version != SMC_V1:
        diag_v2 = struct.unpack_from(">4I", data, 24)
    return Decline(eyecatcher=data[0:4], version=version, typev2=typev2, typev1=typev1,
                   id_for_peer=id_for_peer, peer_diagnosis=diag, os_type=os_byte >> 4,
                   reserved=os_byte & 0xF, reserved2=reserved2, peer_diagnosis_v2=diag_v2,
                   trailer=data[length - TRL_LEN: length])


def _dec_accept_confirm(data: bytes, ctype: int, length: int, version: int, typev2: int,
                        typev1: int, check_trl: bool) -> Accept | Confirm:
    cls: type[Accept] | type[Confirm] = Accept if ctype == ClcType.ACCEPT else Confirm
    if typev1 not in (SmcType.R, SmcType.D):
        raise ClcBadField(field="hdr.typev1", offset=7,
                          expected="R (0) or D (1) in an Accept/Confirm",
                          found=f"{typev1} ({SmcType(typev1).name})", rule=_R_ACC)
    is_d = typev1 == SmcType.D
    if version == SMC_V1:
        want = SMCD_CLC_ACCEPT_CONFIRM_LEN if is_d else SMCR_CLC_ACCEPT_CONFIRM_LEN
        if length != want:
            raise ClcBadLength(field="hdr.length", offset=5,
                               expected=f"{want} for a v1 SMC-{'D' if is_d else 'R'} "
                                        "Accept/Confirm", found=str(length), rule=_R_ACC)
    else:
        want = SMCD_CLC_ACCEPT_CONFIRM_LEN_V2 if is_d else SMCR_CLC_ACCEPT_CONFIRM_LEN_V2
        if length < want:
            raise ClcBadLength(field="hdr.length", offset=5,
                               expected=f">= {want} for a v2 SMC-{'D' if is_d else 'R'} "
                                        "Accept/Confirm", found=str(length), rule=_R_ACC)
    _check_size(data, length)
    trailer = _check_trailer(data, length) if check_trl else data[length - TRL_LEN: length]
    head = {"eyecatcher": data[0:4], "version": version, "typev2": typev2, "typev1": typev1,
            "trailer": trailer}
    if not is_d:
        return cls(**head, smcr_body=data[HDR_LEN: length - TRL_LEN])  # type: ignore[arg-type]
    gid, token, dmbe_idx, size_byte, reserved4, linkid = struct.unpack_from(">QQBB2s4s", data, 8)
    d0 = {"gid": gid, "token": token, "dmbe_idx": dmbe_idx, "dmbe_size": size_byte >> 4,
          "reserved3": size_byte & 0xF, "reserved4": reserved4, "linkid": linkid}
    if version == SMC_V1:
        return cls(**head, **d0, v1_reserved=data[32:44])  # type: ignore[arg-type]
    chid, eid, gid_ext = struct.unpack_from(">H32sQ", data, 32)
    rest = data[SMCD_FCE_OFFSET: length - TRL_LEN]
    fce: FirstContactExt | None = None
    if typev2 & SMC_FIRST_CONTACT_MASK and len(rest) >= FCE_LEN:
        fce = _dec_fce(rest, len(rest) >= FCE_V2X_LEN)
        rest = rest[fce.size:]
    return cls(**head, **d0, chid=chid, eid=eid, gid_ext=gid_ext,  # type: ignore[arg-type]
               first_contact_ext=fce, extra=rest)


def _dec_fce(b: bytes, v2x: bool) -> FirstContactExt:
    x: FirstContactExtV2x | None = None
    if v2x:
        mc, ml, fm, veo, r4 = struct.unpack_from(">BBHI8s", b, FCE_LEN)
        x = FirstContactExtV2x(max_conns=mc, max_links=ml, feature_mask=fm,
                               vendor_exp_options=veo, reserved4=r4)
    return FirstContactExt(v2_direct=bool(b[0] >> 7), reserved=b[0] & 0x7F, os_type=b[1] >> 4,
                           release=b[1] & 0xF, reserved2=b[2:4], hostname=b[4:36], v2x=x)


def _dec_proposal(data: bytes, length: int, version: int, typev2: int, typev1: int,
                  check_trl: bool) -> Proposal:
    t1, t2 = SmcType(typev1), SmcType(typev2)
    v2 = version != SMC_V1
    # A length no Proposal can have (the smallest: v1, iparea_offset 0, no IPv6 prefixes).
    minimum = (PROPOSAL_BASE_LEN + PROPOSAL_SMCD_LEN + TRL_LEN if v2
               else PROPOSAL_BASE_LEN + PROPOSAL_PREFIX_LEN + TRL_LEN)
    _need(length >= minimum, ClcBadLength, "hdr.length", 5,
          f">= {minimum} for a v{'2+' if v2 else '1'} Proposal", length, _R_PROP)
    _check_size(data, length)
    # The kernel reads from a zeroed 652-byte buffer holding the message.
    buf = data if length >= PROPOSAL_AREA_LEN else data + bytes(PROPOSAL_AREA_LEN - length)
    ipoff = struct.unpack_from(">H", buf, 38)[0]
    # smc_clc_proposal_get_prefix: NULL if iparea_offset > sizeof(struct smc_clc_msg_smcd)
    _need(ipoff <= PROPOSAL_SMCD_LEN, ClcBadField, "iparea_offset", 38,
          "<= 40 (smc_clc_proposal_get_prefix returns NULL beyond)", ipoff, _R_PROP)
    prfx_at = PROPOSAL_BASE_LEN + ipoff
    cnt = buf[prfx_at + 7]
    _need(cnt <= SMC_CLC_MAX_V6_PREFIX, ClcBadField, "pclc_prfx.ipv6_prefixes_cnt",
          prfx_at + 7, f"<= {SMC_CLC_MAX_V6_PREFIX}", cnt, _R_PROP)
    prefix_size = PROPOSAL_PREFIX_LEN + IPV6_PREFIX_LEN * cnt
    v2_at = sd_at = -1
    eid_cnt = gid_cnt = 0
    if not v2:
        _need(t1 != SmcType.N, ClcBadField, "hdr.typev1", 7, "R, D or B in a v1 Proposal",
              "2 (N)", _R_PROP)
        want = PROPOSAL_BASE_LEN + ipoff + prefix_size + TRL_LEN
    else:
        if t2 != SmcType.N:
            # smc_get_clc_msg_smcd: NULL if typev1 offers SMC-D and iparea_offset != 40
            _need(not (t1.smcd and ipoff != PROPOSAL_SMCD_LEN), ClcBadField, "iparea_offset",
                  38, "40 when typev1 offers SMC-D (else no SMC-D area, so no v2 extension)",
                  ipoff, "smc_get_clc_msg_smcd")
            v2off = struct.unpack_from(">H", buf, 50)[0]
            _need(1 <= v2off <= V2_EXT_OFFSET_MAX, ClcBadField, "pclc_smcd.v2_ext_offset", 50,
                  f"1..{V2_EXT_OFFSET_MAX} when typev2 != N (smc_get_clc_v2_ext)", v2off,
                  _R_PROP)
            v2_at = 52 + v2off
            eid_cnt, gid_cnt = buf[v2_at], buf[v2_at + 1]
            _need(eid_cnt <= SMC_CLC_MAX_UEID, ClcBadField, "pclc_v2_ext.hdr.eid_cnt", v2_at,
                  f"<= {SMC_CLC_MAX_UEID}", eid_cnt, _R_PROP)
            if t2.smcd:
                _need(gid_cnt <= SMCD_CLC_MAX_V2_GID_ENTRIES, ClcBadField,
                      "pclc_v2_ext.hdr.ism_gid_cnt", v2_at + 1,
                      f"<= {SMCD_CLC_MAX_V2_GID_ENTRIES}", gid_cnt, _R_PROP)
        want = (PROPOSAL_BASE_LEN + PROPOSAL_SMCD_LEN
                + (prefix_size if t1 != SmcType.N else 0)
                + (V2_EXT_LEN + EID_LEN * eid_cnt if t2 != SmcType.N else 0)
                + (SMCD_V2_EXT_LEN + GID_CHID_LEN * gid_cnt if t2.smcd else 0)
                + TRL_LEN)
    _need(length == want, ClcBadLength, "hdr.length", 5,
          f"{want} (the sum of the parts the header and counts announce)", length, _R_PROP)
    trailer = _check_trailer(data, length) if check_trl else data[length - TRL_LEN: length]

    # --- the parts, and the byte ranges they cover --------------------------------------
    covered: list[tuple[int, int]] = [(0, PROPOSAL_BASE_LEN), (length - TRL_LEN, length)]
    smcd: ProposalSmcd | None = None
    if v2 or ipoff == PROPOSAL_SMCD_LEN:
        gid, chid, v2off_raw = struct.unpack_from(">QHH", buf, 40)
        smcd = ProposalSmcd(ism=GidChid(gid=gid, chid=chid), v2_ext_offset=v2off_raw,
                            vendor_oui=buf[52:55], vendor_exp_options=buf[55:60],
                            reserved=buf[60:80])
        covered.append((40, 80))
    prefix: ProposalPrefix | None = None
    if t1 != SmcType.N:
        p = prfx_at
        prefixes = tuple(
            Ipv6Prefix(prefix=buf[q: q + 16], prefix_len=buf[q + 16])
            for q in range(p + 8, p + 8 + IPV6_PREFIX_LEN * cnt, IPV6_PREFIX_LEN)
        )
        prefix = ProposalPrefix(outgoing_subnet=buf[p: p + 4], prefix_len=buf[p + 4],
                                reserved=buf[p + 5: p + 7], ipv6_prefixes=prefixes)
        covered.append((p, p + prefix_size))
    v2_ext: ProposalV2Ext | None = None
    if v2_at >= 0:
        _, _, rsv1, flag, rsv2, sdoff, roce, mc, ml, fm, rsv = struct.unpack_from(
            ">BBBB2sH16sBBH12s", buf, v2_at)
        eids = tuple(buf[q: q + EID_LEN] for q in range(v2_at + V2_EXT_LEN,
                                                        v2_at + V2_EXT_LEN + EID_LEN * eid_cnt,
                                                        EID_LEN))
        covered.append((v2_at, v2_at + V2_EXT_LEN + EID_LEN * eid_cnt))
        smcd_v2: SmcdV2Ext | None = None
        # smc_get_clc_smcd_v2_ext: NULL if the offset is 0 or > 288 (the server then declines
        # with NOV2DEXT); the bytes the length counts for it stay in ``gaps``.
        if t2.smcd and 1 <= sdoff <= SMCD_V2_EXT_OFFSET_MAX:
            sd_at = v2_at + 8 + sdoff
            entries = tuple(
                GidChid(gid=g, chid=c) for g, c in (
                    _GIDCHID.unpack_from(buf, q)
                    for q in range(sd_at + SMCD_V2_EXT_LEN,
                                   sd_at + SMCD_V2_EXT_LEN + GID_CHID_LEN * gid_cnt,
                                   GID_CHID_LEN)))
            smcd_v2 = SmcdV2Ext(system_eid=buf[sd_at: sd_at + 32],
                                reserved=buf[sd_at + 32: sd_at + 48], gidchids=entries)
            covered.append((sd_at, sd_at + SMCD_V2_EXT_LEN + GID_CHID_LEN * gid_cnt))
        v2_ext = ProposalV2Ext(ism_gid_cnt=gid_cnt, reserved1=rsv1, release=flag >> 4,
                               flag_rsvd=(flag >> 1) & 7, seid=bool(flag & 1), reserved2=rsv2,
                               smcd_v2_ext_offset=sdoff, roce=roce, max_conns=mc,
                               max_links=ml, feature_mask=fm, reserved=rsv, user_eids=eids,
                               smcd_v2_ext=smcd_v2)
    return Proposal(eyecatcher=data[0:4], version=version, typev2=t2, typev1=t1,
                    id_for_peer=data[8:16], gid=data[16:32], mac=data[32:38],
                    iparea_offset=ipoff, smcd=smcd, prefix=prefix, v2_ext=v2_ext,
                    gaps=_gaps(data, length, covered), trailer=trailer)


def _gaps(data: bytes, length: int, covered: list[tuple[int, int]]) -> tuple[
        tuple[int, bytes], ...]:
    """Runs of message bytes inside [0, length) that no part covers."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    for start, end in sorted(covered):
        if start > pos:
            out.append((pos, data[pos: min(start, length)]))
        pos = max(pos, end)
        if pos >= length:
            break
    if pos < length:
        out.append((pos, data[pos:length]))
    return tuple(g for g in out if g[1])


def _decode(data: bytes, check_trl: bool = True) -> ClcMessage:
    ctype, length, version, typev2, typev1 = _check_prefix_header(data)
    if ctype == ClcType.DECLINE:
        # smc_clc_msg_hdr_valid: a Decline's trailer is never checked.
        return _dec_decline(data, length, version, typev2, typev1)
    if ctype == ClcType.PROPOSAL:
        return _dec_proposal(data, length, version, typev2, typev1, check_trl)
    return _dec_accept_confirm(data, ctype, length, version, typev2, typev1, check_trl)


def decode(data: bytes | bytearray | memoryview) -> ClcMessage:
    """Decode one CLC message, checked as the kernel checks it on receipt.

    ``data`` must be exactly one message (its size equal to the header's length). Raises
    :class:`ClcError` (a subclass naming field, offset, expected and found) and nothing else.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ClcBadField(field="data", offset=-1, expected="bytes",
                          found=type(data).__name__, rule="decode")
    try:
        return _decode(bytes(data))
    except ClcError:
        raise
    except Exception as exc:  # pragma: no cover - a bug; keep the error contract anyway
        raise ClcBadField(field="message", offset=0, expected="a decodable CLC message",
                          found=f"internal error {type(exc).__name__}: {exc}",
                          rule="decode") from exc


def decode_stream(data: bytes | bytearray | memoryview) -> list[ClcMessage]:
    """Decode concatenated CLC messages (a captured TCP payload), each by its header length.

    Raises :class:`ClcError` with ``.index`` and ``.message_offset`` naming the bad message;
    ``.offset`` is then absolute in ``data``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ClcBadField(field="data", offset=-1, expected="bytes",
                          found=type(data).__name__, rule="decode_stream")
    raw = bytes(data)
    out: list[ClcMessage] = []
    pos = 0
    while pos < len(raw):
        index = len(out)
        if len(raw) - pos < HDR_LEN:
            raise ClcTruncated(field="header", offset=pos, expected=f"at least {HDR_LEN} bytes",
                               found=f"{len(raw) - pos} bytes", rule=_R_WAIT, index=index,
                               message_offset=pos)
        length = struct.unpack_from(">H", raw, pos + 5)[0]
        if length < HDR_LEN:
            raise ClcBadLength(field="hdr.length", offset=pos + 5,
                               expected=f">= {HDR_LEN} (at least a header)", found=str(length),
                               rule=_R_WAIT, index=index, message_offset=pos)
        try:
            out.append(_decode(raw[pos: pos + length]))
        except ClcError as err:
            raise err.in_stream(index, pos) from err
        pos += length
    return out


def iter_stream(
    chunks: Iterable[bytes], *, max_buffer: int = 1 << 20
) -> Iterator[tuple[int, ClcMessage, bytes]]:
    """Decode concatenated CLC messages from a stream of byte chunks, as they complete.

    Yields ``(offset, message, raw)`` per message, ``offset`` absolute in the stream. Memory stays
    bounded whatever the stream's length: at most one chunk plus one unfinished message (a
    message is at most 65535 bytes, ``hdr.length`` is 16 bits) is held; ``max_buffer`` caps a
    caller's oversized chunk. Raises :class:`ClcError` like :func:`decode_stream` (``.index``,
    ``.message_offset`` and an absolute ``.offset``), including for a message cut short at the
    end of the stream.
    """
    buf = bytearray()
    base = 0  # stream offset of buf[0]
    index = 0
    for chunk in chunks:
        buf += chunk
        pos = 0
        n = len(buf)
        while n - pos >= HDR_LEN:
            length = (buf[pos + 5] << 8) | buf[pos + 6]
            if length < HDR_LEN:
                raise ClcBadLength(field="hdr.length", offset=base + pos + 5,
                                   expected=f">= {HDR_LEN} (at least a header)",
                                   found=str(length), rule=_R_WAIT, index=index,
                                   message_offset=base + pos)
            if n - pos < length:
                break
            raw = bytes(buf[pos: pos + length])
            try:
                msg = _decode(raw)
            except ClcError as err:
                raise err.in_stream(index, base + pos) from err
            yield base + pos, msg, raw
            index += 1
            pos += length
        if pos:
            del buf[:pos]
            base += pos
        if len(buf) > max(max_buffer, 0xFFFF + HDR_LEN):  # pragma: no cover - bounded above
            raise ClcBadLength(field="message", offset=base, expected="a message of at most "
                               "65535 bytes", found=f"{len(buf)} bytes buffered", rule=_R_WAIT,
                               index=index, message_offset=base)
    if buf:
        if len(buf) < HDR_LEN:
            raise ClcTruncated(field="header", offset=base, expected=f"at least {HDR_LEN} bytes",
                               found=f"{len(buf)} bytes", rule=_R_WAIT, index=index,
                               message_offset=base)
        try:  # the same error decode_stream gives for a message cut short
            _decode(bytes(buf))
        except ClcError as err:
            raise err.in_stream(index, base) from err
        length = (buf[5] << 8) | buf[6]  # pragma: no cover - a short message never decodes
        raise ClcTruncated(field="message", offset=base + len(buf),
                           expected=f"{length} bytes (hdr.length)", found=f"{len(buf)} bytes",
                           rule=_R_WAIT, index=index, message_offset=base)


def check_receivable(data: bytes, expected_type: ClcType, buflen: int) -> ClcMessage:
    """Decode ``data`` as ``smc_clc_wait_msg`` receives it when waiting for ``expected_type``.

    Rules on top of :func:`decode`, all from ``smc_clc_wait_msg`` (net/smc/smc_clc.c):

    * the type must be ``expected_type`` or DECLINE (a Decline is accepted whatever was
      expected), else -EPROTO (:class:`ClcBadType`);
    * ``buflen`` is the receive buffer: 160 (``SMC_CLC_MAX_ACCEPT_LEN``) for the client's
      Accept, 652 (``sizeof(struct smc_clc_msg_proposal_area)``) for the server's Proposal and
      Confirm. A message longer than the buffer is read only up to ``buflen`` (the rest is
      drained) and its trailer is not checked (``check_trl = false``).
    """
    ctype, _length, _version, _t2, _t1 = _check_prefix_header(data)
    if ctype not in (expected_type, ClcType.DECLINE):
        raise ClcBadType(field="hdr.type", offset=4,
                         expected=f"{int(expected_type)} ({ClcType(expected_type).name}) "
                                  f"or 4 (DECLINE)",
                         found=_type_name(ctype), rule=_R_WAIT)
    length = struct.unpack_from(">H", data, 5)[0]
    return _decode(bytes(data), check_trl=length <= buflen)


# --------------------------------------------------------------------------------------------
# Building messages the way Linux does
# --------------------------------------------------------------------------------------------


def build_proposal(
    *,
    typev1: SmcType = SmcType.N,
    typev2: SmcType = SmcType.D,
    version: int = SMC_V2,
    ism_v1: GidChid = GidChid(gid=0, chid=0),
    prefix: ProposalPrefix | None = None,
    user_eids: tuple[bytes, ...] = (),
    gidchids: tuple[GidChid, ...] = (),
    release: int = 1,
    seid: bool = False,
    system_eid: bytes = bytes(EID_LEN),
    feature_mask: int = 1,
    id_for_peer: bytes = bytes(8),
    gid: bytes = bytes(16),
    mac: bytes = bytes(6),
) -> Proposal:
    """A Proposal laid out as ``smc_clc_send_proposal`` lays it out (parts back to back).

    ``iparea_offset`` = 40 when a v1 type is offered (else 0), ``v2_ext_offset`` = 28 (+ the
    prefix area), ``smcd_v2_ext_offset`` = 32 + 32 * eid_cnt. ``prefix`` defaults to an empty
    IPv4 prefix area when ``typev1 != N``.
    """
    if typev1 != SmcType.N and prefix is None:
        prefix = ProposalPrefix()
    if typev1 == SmcType.N:
        prefix = None
    prefix_size = prefix.size if prefix is not None else 0
    v2 = version >= SMC_V2
    v2_ext: ProposalV2Ext | None = None
    if v2 and typev2 != SmcType.N:
        smcd_v2 = (SmcdV2Ext(system_eid=system_eid, gidchids=gidchids) if typev2.smcd
                   else None)
        v2_ext = ProposalV2Ext(
            ism_gid_cnt=len(gidchids) if typev2.smcd else 0, release=release,
            seid=seid if typev2.smcd else False,
            smcd_v2_ext_offset=(V2_EXT_LEN - 8 + EID_LEN * len(user_eids)) if typev2.smcd else 0,
            feature_mask=feature_mask, user_eids=user_eids, smcd_v2_ext=smcd_v2)
    ipoff = PROPOSAL_SMCD_LEN if typev1 != SmcType.N else 0
    smcd: ProposalSmcd | None = None
    if v2 or ipoff == PROPOSAL_SMCD_LEN:
        v2off = (PROPOSAL_SMCD_LEN - 12 + prefix_size) if v2_ext is not None else 0
        smcd = ProposalSmcd(ism=ism_v1, v2_ext_offset=v2off)
    return Proposal(version=version, typev1=typev1, typev2=typev2, id_for_peer=id_for_peer,
                    gid=gid, mac=mac, iparea_offset=ipoff, smcd=smcd, prefix=prefix,
                    v2_ext=v2_ext)


# --------------------------------------------------------------------------------------------
# Dissection (field by field, wire order)
# --------------------------------------------------------------------------------------------


class Field(NamedTuple):
    """One field of a dissected message, in wire order.

    ``mask`` is set for a bit field inside ``raw`` (e.g. ``hdr.version`` = 0xF0 of byte 7);
    ``value`` is the decoded value (int, str or bytes); ``meaning`` a human reading.
    A NamedTuple, not a frozen dataclass: decoding a capture stream builds about 20 per message
    and a frozen dataclass's ``__init__`` cost most of the decoder's time (issue 16).
    """

    name: str
    offset: int
    size: int
    raw: bytes
    value: int | str | bytes | None
    meaning: str = ""
    mask: int | None = None


def _eid_text(b: bytes, label: str) -> str:
    if not any(b):
        return f"{label}: none (all zero)"
    if all(32 <= c < 127 for c in b):
        return label if b.strip(b" ") else f"{label}: all blank"
    return f"{label} (not printable)"


def _text_value(b: bytes) -> str | bytes:
    """An EID or host name as text when it is printable ASCII, else the raw bytes."""
    if any(b) and all(32 <= c < 127 for c in b):
        return b.decode("ascii")
    return b


def _chid_meaning(chid: int) -> str:
    if chid == 0xFFFF:
        return "loopback-ism (emulated ISM, SMC_LO_RESERVED_CHID)"
    if chid & 0xFF00 == 0xFF00:
        return "emulated ISM device"
    return "native ISM device" if chid else "none"


class _Dissector:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fields: list[Field] = []

    def add(self, name: str, offset: int, size: int, value: int | str | bytes | None,
            meaning: str = "", mask: int | None = None) -> None:
        self.fields.append(Field(name=name, offset=offset, size=size,
                                 raw=self.data[offset: offset + size], value=value,
                                 meaning=meaning, mask=mask))

    def raw(self, name: str, offset: int, size: int, meaning: str = "") -> None:
        b = self.data[offset: offset + size]
        if not meaning:
            meaning = "reserved" if "reserved" in name or "rsvd" in name else ""
            if meaning and any(b):
                meaning = "reserved (non-zero)"
        self.add(name, offset, size, b, meaning)

    def uint(self, name: str, offset: int, size: int, meaning: str = "") -> int:
        value = int.from_bytes(self.data[offset: offset + size], "big")
        self.add(name, offset, size, value, meaning)
        return value


def _eyecatcher_meaning(b: bytes) -> str:
    if b == EYECATCHER_SMCR:
        return '"SMCR" (EBCDIC)'
    if b == EYECATCHER_SMCD:
        return '"SMCD" (EBCDIC)'
    return "not an eyecatcher"


def _dissect_header(d: _Dissector, m: ClcMessage) -> None:
    b7 = d.data[7]
    d.add("hdr.eyecatcher", 0, 4, d.data[0:4], _eyecatcher_meaning(d.data[0:4]))
    d.add("hdr.type", 4, 1, d.data[4], ClcType(d.data[4]).name)
    d.add("hdr.length", 5, 2, int.from_bytes(d.data[5:7], "big"), "bytes, header and trailer")
    d.add("hdr.version", 7, 1, b7 >> 4, f"SMC v{b7 >> 4}", mask=0xF0)
    t2, t1 = (b7 >> 2) & 3, b7 & 3
    if isinstance(m, Proposal):
        d.add("hdr.typev2", 7, 1, t2, f"SMC {SmcType(t2).name} offered for v2", mask=0x0C)
        d.add("hdr.typev1", 7, 1, t1, f"SMC {SmcType(t1).name} offered for v1", mask=0x03)
    elif isinstance(m, Decline):
        d.add("hdr.typev2", 7, 1, t2,
              "out of sync" if t2 & 2 else "in sync" + (" (bit 0 set)" if t2 & 1 else ""),
              mask=0x0C)
        d.add("hdr.typev1", 7, 1, t1, "not checked by the receiver (Linux sends 0)", mask=0x03)
    else:
        d.add("hdr.typev2", 7, 1, t2,
              ("first contact" if t2 & 2 else "not first contact")
              + (" (bit 0 set)" if t2 & 1 else ""), mask=0x0C)
        d.add("hdr.typev1", 7, 1, t1, f"SMC-{SmcType(t1).name}", mask=0x03)


def _dissect_proposal(d: _Dissector, m: Proposal) -> None:
    L = len(d.data)
    d.raw("lcl.id_for_peer", 8, 8, "SMC-R system id" if any(d.data[8:16]) else "zero (no SMC-R)")
    d.raw("lcl.gid", 16, 16, "RoCE GID" if any(d.data[16:32]) else "zero (no SMC-R)")
    d.raw("lcl.mac", 32, 6, "RoCE MAC" if any(d.data[32:38]) else "zero (no SMC-R)")
    d.uint("iparea_offset", 38, 2, f"prefix area at {40 + m.iparea_offset}")
    parts: list[tuple[int, str, list[Field]]] = []

    def part(at: int, label: str, fill: object) -> None:
        sub = _Dissector(d.data)
        fill(sub)  # type: ignore[operator]
        parts.append((at, label, [f for f in sub.fields if f.offset < L - TRL_LEN]))

    if m.smcd is not None:
        s = m.smcd

        def fill_smcd(x: _Dissector) -> None:
            x.uint("pclc_smcd.ism.gid", 40, 8, "v1 ISM GID" if s.ism.gid else "none")
            x.uint("pclc_smcd.ism.chid", 48, 2, _chid_meaning(s.ism.chid))
            x.uint("pclc_smcd.v2_ext_offset", 50, 2,
                   f"v2 extension at {52 + s.v2_ext_offset}" if s.v2_ext_offset else "none")
            x.raw("pclc_smcd.vendor_oui", 52, 3)
            x.raw("pclc_smcd.vendor_exp_options", 55, 5)
            x.raw("pclc_smcd.reserved", 60, 20)
        part(40, "smcd", fill_smcd)
    if m.prefix is not None:
        p = m.prefix
        at = 40 + m.iparea_offset

        def fill_prefix(x: _Dissector) -> None:
            x.add("pclc_prfx.outgoing_subnet", at, 4, ".".join(str(c) for c in p.outgoing_subnet),
                  "IPv4 subnet")
            x.uint("pclc_prfx.prefix_len", at + 4, 1, "significant bits")
            x.raw("pclc_prfx.reserved", at + 5, 2)
            x.uint("pclc_prfx.ipv6_prefixes_cnt", at + 7, 1, "IPv6 prefixes")
            for i, pre in enumerate(p.ipv6_prefixes):
                q = at + 8 + IPV6_PREFIX_LEN * i
                x.add(f"pclc_prfx_ipv6[{i}].prefix", q, 16, _ipv6_text(pre.prefix), "IPv6 prefix")
                x.uint(f"pclc_prfx_ipv6[{i}].prefix_len", q + 16, 1, "significant bits")
        part(at, "prefix", fill_prefix)
    if m.v2_ext is not None and m.smcd is not None:
        v = m.v2_ext
        at = 52 + m.smcd.v2_ext_offset

        def fill_v2(x: _Dissector) -> None:
            x.uint("pclc_v2_ext.hdr.eid_cnt", at, 1, "user EIDs (UEIDs)")
            x.uint("pclc_v2_ext.hdr.ism_gid_cnt", at + 1, 1, "GID/CHID entries")
            x.raw("pclc_v2_ext.hdr.reserved1", at + 2, 1)
            x.add("pclc_v2_ext.hdr.flag.release", at + 3, 1, v.release,
                  f"SMC release {v.release}", mask=0xF0)
            x.add("pclc_v2_ext.hdr.flag.rsvd", at + 3, 1, v.flag_rsvd,
                  "reserved" + (" (non-zero)" if v.flag_rsvd else ""), mask=0x0E)
            x.add("pclc_v2_ext.hdr.flag.seid", at + 3, 1, int(v.seid),
                  "system EID in use" if v.seid else "no system EID", mask=0x01)
            x.raw("pclc_v2_ext.hdr.reserved2", at + 4, 2)
            x.uint("pclc_v2_ext.hdr.smcd_v2_ext_offset", at + 6, 2,
                   f"SMC-Dv2 extension at {at + 8 + v.smcd_v2_ext_offset}"
                   if v.smcd_v2_ext_offset else "none")
            x.raw("pclc_v2_ext.roce", at + 8, 16, "RoCEv2 GID" if any(v.roce) else "zero")
            x.uint("pclc_v2_ext.max_conns", at + 24, 1, "SMC-Rv2")
            x.uint("pclc_v2_ext.max_links", at + 25, 1, "SMC-Rv2")
            x.uint("pclc_v2_ext.feature_mask", at + 26, 2,
                   "SMC_SPF_EMULATED_ISM_DEV" if v.feature_mask & 1 else "")
            x.raw("pclc_v2_ext.reserved", at + 28, 12)
            for i, eid in enumerate(v.user_eids):
                x.add(f"pclc_v2_ext.user_eids[{i}]", at + 40 + EID_LEN * i, EID_LEN,
                      _text_value(eid), _eid_text(eid, "user EID (UEID)"))
        part(at, "v2", fill_v2)
        if v.smcd_v2_ext is not None:
            sv = v.smcd_v2_ext
            sat = at + 8 + v.smcd_v2_ext_offset

            def fill_sd(x: _Dissector) -> None:
                x.add("pclc_smcd_v2_ext.system_eid", sat, 32, _text_value(sv.system_eid),
                      _eid_text(sv.system_eid, "system EID"))
                x.raw("pclc_smcd_v2_ext.reserved", sat + 32, 16)
                for i, g in enumerate(sv.gidchids):
                    q = sat + 48 + GID_CHID_LEN * i
                    x.uint(f"pclc_gidchids[{i}].gid", q, 8, "ISM GID")
                    x.uint(f"pclc_gidchids[{i}].chid", q + 8, 2, _chid_meaning(g.chid))
            part(sat, "smcdv2", fill_sd)
    for offset, gap in m.gaps:
        if offset < L - TRL_LEN:
            size = min(len(gap), L - TRL_LEN - offset)
            parts.append((offset, "gap", [Field(name="gap", offset=offset, size=size,
                                                raw=gap[:size], value=gap[:size],
                                                meaning="bytes no part covers")]))
    for _at, _label, fields in sorted(parts, key=lambda t: t[0]):
        d.fields.extend(fields)


def _ipv6_text(b: bytes) -> str:
    groups = [b[i: i + 2].hex() for i in range(0, 16, 2)]
    return ":".join(g.lstrip("0") or "0" for g in groups)


def _dissect_accept_confirm(d: _Dissector, m: _AcceptConfirm) -> None:
    L = len(d.data)
    if m.typev1 == SmcType.R:
        d.raw("smcr_body", 8, L - 12, "SMC-R Accept/Confirm body (not broken down)")
        return
    d.uint("d0.gid", 8, 8, "sender's ISM GID")
    d.uint("d0.token", 16, 8, "sender's DMB token")
    d.uint("d0.dmbe_idx", 24, 1, "DMB element index")
    size = smc_uncompress_bufsize(m.dmbe_size)
    d.add("d0.dmbe_size", 25, 1, m.dmbe_size,
          f"{size // 1024} KiB DMB ({size - 32} bytes usable after the CDC header)", mask=0xF0)
    d.add("d0.reserved3", 25, 1, m.reserved3, "reserved" + (" (non-zero)" if m.reserved3 else ""),
          mask=0x0F)
    d.raw("d0.reserved4", 26, 2)
    d.raw("d0.linkid", 28, 4, "link group id (raw copy of the sender's lgr->id)")
    if m.version < SMC_V2:
        d.raw("reserved", 32, 12)
        return
    d.uint("d1.chid", 32, 2, _chid_meaning(m.chid))
    d.add("d1.eid", 34, 32, _text_value(m.eid), _eid_text(m.eid, "negotiated EID"))
    d.uint("d1.gid_ext", 66, 8, "GID extension (emulated ISM)" if m.gid_ext else "none")
    at = SMCD_FCE_OFFSET
    f = m.first_contact_ext
    if f is not None:
        d.add("fce.v2_direct", at, 1, int(f.v2_direct), "SMC-R only", mask=0x80)
        d.add("fce.reserved", at, 1, f.reserved, "reserved", mask=0x7F)
        d.add("fce.os_type", at + 1, 1, f.os_type, OS_TYPES.get(f.os_type, "unknown"), mask=0xF0)
        d.add("fce.release", at + 1, 1, f.release, f"SMC release {f.release}", mask=0x0F)
        d.raw("fce.reserved2", at + 2, 2)
        d.add("fce.hostname", at + 4, 32, _text_value(f.hostname),
              _eid_text(f.hostname, "sender's host name"))
        if f.v2x is not None:
            d.uint("fce_v2x.max_conns", at + 36, 1, "SMC-R only (reserved3 for SMC-D)")
            d.uint("fce_v2x.max_links", at + 37, 1, "SMC-R only (reserved3 for SMC-D)")
            d.uint("fce_v2x.feature_mask", at + 38, 2,
                   "SMC_SPF_EMULATED_ISM_DEV" if f.v2x.feature_mask & 1 else "")
            d.uint("fce_v2x.vendor_exp_options", at + 40, 4)
            d.raw("fce_v2x.reserved4", at + 44, 8)
        at += f.size
    if m.extra:
        d.raw("extra", at, len(m.extra), "bytes after the known fields (accepted, ignored)")


def _dissect_decline(d: _Dissector, m: Decline) -> None:
    d.raw("id_for_peer", 8, 8, "SMC-R system id" if any(m.id_for_peer) else "zero")
    d.uint("peer_diagnosis", 16, 4, describe_decline(m.peer_diagnosis))
    d.add("os_type", 20, 1, m.os_type,
          OS_TYPES.get(m.os_type, "not set" if m.os_type == 0 else "unknown"), mask=0xF0)
    d.add("reserved", 20, 1, m.reserved, "reserved", mask=0x0F)
    d.raw("reserved2", 21, 3)
    if m.version >= SMC_V2:
        for i in range(SMC_DECL_DIAG_COUNT_V2):
            d.uint(f"peer_diagnosis_v2[{i}]", 24 + 4 * i, 4,
                   describe_decline(m.peer_diagnosis_v2[i]) if m.peer_diagnosis_v2[i] else "none")


def dissect(data_or_msg: bytes | bytearray | ClcMessage) -> list[Field]:
    """The fields of one message in wire order (decoding and checking bytes first).

    Raises :class:`ClcError` for bytes the kernel would not accept.
    """
    if isinstance(data_or_msg, (bytes, bytearray, memoryview)):
        data = bytes(data_or_msg)
        msg = decode(data)
    else:
        msg = data_or_msg
        data = encode(msg)
    return dissect_decoded(msg, data)


def dissect_decoded(msg: ClcMessage, data: bytes) -> list[Field]:
    """:func:`dissect` for a message already decoded from ``data`` (its exact bytes): a stream
    decoder has both and need not decode or encode again."""
    d = _Dissector(data)
    _dissect_header(d, msg)
    if isinstance(msg, Proposal):
        _dissect_proposal(d, msg)
    elif isinstance(msg, Decline):
        _dissect_decline(d, msg)
    else:
        _dissect_accept_confirm(d, msg)
    L = len(data)
    d.add("trl.eyecatcher", L - TRL_LEN, TRL_LEN, data[L - TRL_LEN:],
          _eyecatcher_meaning(data[L - TRL_LEN:])
          + (" (not checked for a Decline)" if isinstance(msg, Decline) else ""))
    return d.fields


__all__ = [
    "DECLINE_LEN", "DECLINE_V2_LEN", "EYECATCHER_SMCD", "EYECATCHER_SMCR", "PROPOSAL_AREA_LEN",
    "SMC_CLC_MAX_ACCEPT_LEN", "Accept", "ClcBadEyecatcher", "ClcBadField", "ClcBadLength",
    "ClcBadType", "ClcBadVersion", "ClcError", "ClcMessage", "ClcTruncated", "ClcType",
    "Confirm", "Decline", "Field", "FirstContactExt", "FirstContactExtV2x", "GidChid",
    "Ipv6Prefix", "Proposal", "ProposalPrefix", "ProposalSmcd", "ProposalV2Ext", "SmcType",
    "SmcdV2Ext", "build_proposal", "check_receivable", "decode", "decode_stream", "dissect",
    "dissect_decoded", "encode", "iter_stream",
]
