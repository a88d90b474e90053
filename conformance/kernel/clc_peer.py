"""The kernel's CLC endpoints as a conformance target: ``clc_decode``, ``hs_new``, ``hs_feed``.

Theory of operation
-------------------
Inside the guest, the harness's user-space CLC peer (``peer.c``: a BPF sock_ops program writes
the SMC TCP option into the SYN / SYN-ACK of its plain TCP sockets) speaks raw CLC bytes to a
kernel AF_SMC socket in either role:

* ``hs_new(role="client")``: a kernel AF_SMC socket connects (non-blocking) to the peer's
  listener and sends its Proposal; ``hs_new(role="server")``: the peer's socket connects to a
  kernel AF_SMC listener, whose listen work waits for a Proposal;
* ``hs_feed(ep, data)``: the peer writes ``data`` to the kernel endpoint and watches what the
  kernel does: the CLC messages it sends back (framed by their length), and when its handshake
  ends, how (smc_diag of the socket: mode SMCD -> ``active``; FALLBACK_TCP with reason
  ``PEERNOSMC`` -> ``fallback``, any other reason -> ``declined``, with the peer diagnosis; a
  client's connect that fails -> ``error`` with its ``SO_ERROR``; a server socket the kernel
  dropped, never accepted -> ``error`` whose errno is :data:`NOT_OBSERVED`).
  The kernel is *waiting* (outcome None) when it sent a Proposal / an Accept, or when it stayed
  silent for the quiet time (300 ms) after our bytes (an incomplete message).
* ``clc_decode(data)``: the message is fed to a kernel endpoint in the role that receives its
  type - Proposal (and anything that is no Accept, Confirm or Decline) to a server waiting for
  a Proposal, Accept and Decline to a client waiting for an Accept, Confirm to a server waiting
  for a Confirm (after the kernel's own Proposal and its Accept) - followed by a FIN, so a short
  message ends as the short read it is. The kernel *rejected* it (``EPROTO``) when the endpoint
  failed without sending anything: the client's connect fails with EPROTO, or the server drops
  the socket (``smc_clc_wait_msg`` -> -EPROTO -> ``smc_listen_decline`` -> out_err). It *took*
  it when it answered or finished otherwise. The result names the type the kernel took it as (a
  Decline shows as the ``PEERDECL`` fallback); version, length and fields are
  :data:`NOT_OBSERVED` (the kernel does not show how it read them). A Confirm's DMB token is
  replaced by the server's own (it exists), so that a valid Confirm is not failed by
  ``smcd_buf_attach`` instead.

Identity translation
--------------------
A case names its hosts' identities in ``config`` (``gid``, ``gid_ext``, ``dmb_token``,
``lgr_id``, ``hostname``); the kernel draws its own (GIDs at random per boot, DMB tokens at
random, link-group ids by count) and sends the host name it read at boot. The target maps them,
field by field at the fixed offsets of the CLC layouts, so the spec's expected bytes can be
compared with the kernel's byte for byte:

* from the kernel (``out``): Proposal - this boot's GID pair -> the endpoint's ``gid`` /
  ``gid_ext`` (wherever the 8 bytes occur: in the v1 area and the GID/CHID list);
  Accept/Confirm - ``gid`` (8..16), ``gid_ext`` (66..74) likewise, the DMB token (16..24) ->
  ``dmb_token`` (remembered), the link id (28..32) -> ``lgr_id`` (host-order bytes, as the
  kernel copies ``lgr->id``), the first-contact host name (78..110) -> ``hostname``;
* to the kernel (``hs_feed``): Proposal - the receiving endpoint's ``gid`` / ``gid_ext`` ->
  this boot's pair (loopback-ism talks only to itself: ``smc_lo_query_rgid``); Accept/Confirm
  - ``gid`` / ``gid_ext`` equal to the receiver's -> this boot's; the DMB token -> the kernel
  token it stands for (learned from an earlier ``out``), else a *donor* DMB (a DMB that exists
  on the device, see ``peer.c``): the spec assumes that the DMB a peer names exists
  (``AttachPeerDmb`` succeeds), so the kernel gets one that does.

UEIDs are not translated: the kernel's UEID table is set to the endpoint's ``ueids`` before its
creation and before each feed (the table is host-wide; the spec's hosts each have their own).
``dmb_len`` becomes ``SO_RCVBUF`` (the DMB is ``sk_rcvbuf / 2`` rounded up to a power of two).

First contact: the kernel reuses any link group of the device with the same peer GID; before
the first endpoint of a case the target *purges* the link groups whose peer is this host's own
GID (``peer_purge`` in ``peer.c``), so the kernel starts each case with none, like the spec's
environment (which has no link groups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.targets.adapter import NOT_OBSERVED, Observation, Op

#: one serve-mode call: (ok, key/values, detail)
Call = Callable[[str], tuple[bool, dict[str, str], str]]

PEERNOSMC = 0x03010000
PEERDECL = 0x05000000
EPROTO = 71
MODE_FALLBACK, MODE_SMCD = 1, 2
HARNESS_UEID = "SMCD-CHECK-LOOPBACK-ISM"

#: the endpoint config keys and defaults (the spec target's, conformance/PROTOCOL.md section 8)
DEFAULTS: dict[str, Any] = {
    "gid": 0x1122334455667788,
    "gid_ext": 0x99AABBCCDDEEFF00,
    "devices": None,
    "ueids": ["SMCD-CHECK-UEID"],
    "hostname": "smcd-check",
    "ipv4": [0x7F000001, 8],
    "vlan_id": 0,
    "route_pnetid": None,
    "ns_pnetids": [],
    "rcvbuf": 131072,
    "smc_release": 1,
    "syn_smc": True,
    "ipsec": False,
    "system_eid": None,
    "dmb_token": 0x0A0B0C0D0E0F1011,
    "dmb_len": 65536,
    "lgr_id": 256,
    "lgr": "new",
    "dmb_fail": None,
    "attach_fail": None,
}
#: config keys whose value the guest cannot take other than the default: its one route is lo,
#: 127.0.0.1/8, no VLAN, no PNET ids, no SEID (not s390), no IPsec, release 1, and its peer
#: always sends the SMC option; its only SMC-D device is loopback-ism
FIXED_KEYS: dict[str, str] = {
    "devices": "its only SMC-D device is loopback-ism (no native ISM, no SMC-Dv1)",
    "ipv4": "its route is lo, 127.0.0.1/8",
    "vlan_id": "lo has no VLAN",
    "route_pnetid": "no PNET table is set up", "ns_pnetids": "no PNET table is set up",
    "smc_release": "Linux 6.12 is SMC release 1",
    "syn_smc": "its peer always sends the SMC TCP option",
    "ipsec": "the guest has no IPsec",
    "system_eid": "a system EID exists only on s390",
    "dmb_fail": "smc_buf_create cannot be made to fail (loopback-ism has 5000 DMB slots)",
}
#: CLC_WAIT_TIME (net/smc/smc_clc.h: 6 * HZ) in ms, and how long past it we wait
CLC_WAIT_MS = 6000


class PeerProtocolError(Exception):
    """The guest's peer answered something unexpected (the target is broken)."""


class _Unsupported(Exception):
    """The case asks for a host the guest cannot be (the operation is refused EOPNOTSUPP)."""


@dataclass(frozen=True, slots=True)
class BootIdentity:
    """What the guest's peer learned once per boot (``peer_init``)."""

    gid: int
    gid_ext: int
    donor_token: int
    hostname: bytes  # 32 bytes, blank padded, as in a first-contact extension

    @staticmethod
    def parse(kv: Mapping[str, str]) -> BootIdentity:
        try:
            return BootIdentity(gid=int(kv["gid"]), gid_ext=int(kv["gid_ext"]),
                                donor_token=int(kv["donor"]),
                                hostname=bytes.fromhex(kv["host"]))
        except (KeyError, ValueError) as exc:
            raise PeerProtocolError(f"peer_init answered {dict(kv)}: {exc}") from exc


@dataclass(slots=True)
class Endpoint:
    guest_ep: int
    role: str  # "client" | "server"
    cfg: dict[str, Any]
    inbound: Any = None  # Inbound (defined below)
    #: a client whose host has no link group (``lgr`` "new") sees the Accept's peer GID as
    #: this fresh value, so smc_conn_create finds none to join (the client never checks it)
    fresh_gid: int = 0


def _b8(v: int) -> bytes:
    return (v & (2**64 - 1)).to_bytes(8, "big")


def _swap8(data: bytes, old: int, new: int) -> bytes:
    """Replace every occurrence of the 8-byte big-endian ``old`` by ``new``."""
    if old == new:
        return data
    return data.replace(_b8(old), _b8(new))


def linkid_bytes(lgr_id: int) -> bytes:
    """The link id as the kernel copies it (``lgr->id``, host order: little-endian x86)."""
    from smcd_check.spec.handshake import linkid_bytes as spec_linkid

    return bytes(spec_linkid(lgr_id))


def hostname_field(name: str) -> bytes:
    from smcd_check.spec.handshake import hostname_field as spec_host

    return bytes(spec_host(name))


@dataclass(slots=True)
class IdentityMap:
    """The translation between a case's identities and the kernel's, for one case."""

    boot: BootIdentity
    #: kernel DMB token -> (endpoint handle, config token), learned from the kernel's output
    tokens: dict[int, tuple[int, int]] = field(default_factory=dict)

    def from_kernel(self, ep: int, cfg: Mapping[str, Any], raw: bytes) -> bytes:
        """A message the kernel endpoint ``ep`` sent, in the case's identities."""
        if len(raw) < 8:
            return raw
        b = self.boot
        ctype = raw[4]
        if ctype == 1:
            out = _swap8(raw, b.gid, int(cfg["gid"]))
            return _swap8(out, b.gid_ext, int(cfg["gid_ext"]))
        if ctype not in (2, 3) or len(raw) < 34:
            return raw
        m = bytearray(raw)
        if m[8:16] == _b8(b.gid):
            m[8:16] = _b8(int(cfg["gid"]))
        real = int.from_bytes(m[16:24], "big")
        self.tokens[real] = (ep, int(cfg["dmb_token"]))
        m[16:24] = _b8(int(cfg["dmb_token"]))
        m[28:32] = linkid_bytes(int(cfg["lgr_id"]))
        version = m[7] >> 4
        if version >= 2 and len(m) >= 74 and m[66:74] == _b8(b.gid_ext):
            m[66:74] = _b8(int(cfg["gid_ext"]))
        first = (m[7] >> 2) & 2
        if version >= 2 and first and len(m) >= 110 and bytes(m[78:110]) == b.hostname:
            m[78:110] = hostname_field(str(cfg["hostname"]))
        return bytes(m)

    def to_kernel(self, ep: int, cfg: Mapping[str, Any], raw: bytes, *,
                  peer_gid: int | None = None, missing_token: int | None = None) -> bytes:
        """A message for the kernel endpoint ``ep``, in the kernel's identities.

        ``peer_gid``: what an Accept/Confirm naming the receiver's own GID becomes (default
        this boot's GID); ``missing_token``: a token no DMB has, used instead of the donor when
        the case wants the attach to fail."""
        if len(raw) < 8:
            return raw
        b = self.boot
        ctype = raw[4]
        if ctype == 1:
            out = _swap8(raw, int(cfg["gid"]), b.gid)
            return _swap8(out, int(cfg["gid_ext"]), b.gid_ext)
        if ctype not in (2, 3) or len(raw) < 24:
            return raw
        m = bytearray(raw)
        if m[8:16] == _b8(int(cfg["gid"])):
            m[8:16] = _b8(b.gid if peer_gid is None else peer_gid)
        if len(m) >= 74 and m[66:74] == _b8(int(cfg["gid_ext"])):
            m[66:74] = _b8(b.gid_ext if peer_gid is None else peer_gid ^ 0x5A5A)
        named = int.from_bytes(m[16:24], "big")
        real = self.real_token(ep, named, missing_token)
        m[16:24] = _b8(real)
        return bytes(m)

    def real_token(self, receiver: int, cfg_token: int, missing: int | None = None) -> int:
        """The kernel DMB a case's token stands for: one another endpoint of this case sent
        under that name, else the donor (a DMB that exists) - or ``missing`` (none) when the
        case wants the attach to fail."""
        if missing is not None:
            return missing
        mine = None
        for real, (owner, name) in self.tokens.items():
            if name == cfg_token:
                if owner != receiver:
                    return real
                mine = real
        return mine if mine is not None else self.boot.donor_token


#: fields of an Accept/Confirm the translation rewrites: (start, end) byte ranges
_AC_FIELDS = ((8, 16), (16, 24), (66, 74))


@dataclass(slots=True)
class Inbound:
    """The bytes a case feeds to one kernel endpoint, as a stream of CLC messages.

    A case may split a message anywhere (``pair.split-delivery``); the target forwards every
    piece at once, translated, except that a field to be translated that is not complete yet is
    held back until it is (its start is the *safe* length). Bytes after something that is no
    CLC header (length < 8) pass through untranslated.
    """

    msg: bytearray = field(default_factory=bytearray)  # the current message so far (as fed)
    sent: int = 0  # bytes of it already forwarded
    raw_mode: bool = False  # the stream stopped being CLC: forward as is

    def feed(self, data: bytes, translate: Callable[[bytes], bytes],
             values: tuple[bytes, ...] = ()) -> bytes:
        """Forward ``data``: returns the translated bytes that may go to the kernel now.
        ``values``: the 8-byte values a Proposal translation swaps (a cut tail that may begin
        one is held back)."""
        out = bytearray()
        self.msg += data
        while True:
            if self.raw_mode:
                out += self.msg[self.sent:]
                self.sent = len(self.msg)
                return bytes(out)
            if len(self.msg) < 8:
                out += self.msg[self.sent:]  # the header itself is never translated
                self.sent = len(self.msg)
                return bytes(out)
            length = int.from_bytes(self.msg[5:7], "big")
            if length < 8:
                self.raw_mode = True
                continue
            if len(self.msg) >= length:
                whole = translate(bytes(self.msg[:length]))
                out += whole[self.sent:]
                del self.msg[:length]
                self.sent = 0
                continue
            part = bytes(self.msg)
            safe = _safe_length(part, values)
            if safe > self.sent:  # a translation never changes the length
                out += translate(part)[self.sent:safe]
                self.sent = safe
            return bytes(out)


def _safe_length(part: bytes, values: tuple[bytes, ...]) -> int:
    """How much of an incomplete message can be forwarded translated: up to the start of a
    field that is cut (Accept/Confirm), or of a tail that may begin a value to be swapped
    (Proposal)."""
    ctype = part[4]
    n = len(part)
    if ctype in (2, 3):
        for start, end in _AC_FIELDS:
            if start < n < end:
                return start
        return n
    if ctype == 1:
        for k in range(min(7, n), 0, -1):
            tail = part[n - k:]
            if any(v[:k] == tail for v in values):
                return n - k
    return n


def outcome_of(role: str, kv: Mapping[str, str]) -> dict[str, Any] | None:
    """The spec's outcome dict from a guest reply (None while the handshake runs)."""
    if kv.get("done") != "1":
        return None
    err = int(kv.get("err", "0"))
    if err == -1 and role == "server":
        return {"errno": NOT_OBSERVED, "kind": "error", "peer_diagnosis": 0, "reason": None}
    if err:
        return {"errno": err, "kind": "error", "peer_diagnosis": 0, "reason": None}
    mode = int(kv.get("mode", "-1"))
    if mode == MODE_SMCD:
        return {"errno": None, "kind": "active", "peer_diagnosis": 0, "reason": None}
    if mode == MODE_FALLBACK:
        reason = int(kv.get("reason", "0"))
        return {"errno": None, "kind": "fallback" if reason == PEERNOSMC else "declined",
                "peer_diagnosis": int(kv.get("pdiag", "0")), "reason": reason}
    return {"errno": None, "kind": f"smc_diag mode {mode}", "peer_diagnosis": 0, "reason": None}


def messages(kv: Mapping[str, str]) -> list[bytes]:
    """The complete CLC messages in a guest reply (plus any unframed rest, as one piece)."""
    out = [bytes.fromhex(h) for h in kv.get("out", "-").split(",") if h and h != "-"]
    rest = kv.get("rest", "-")
    if rest and rest != "-":
        out.append(bytes.fromhex(rest))
    return out


def ueid_arg(ueids: Any) -> str:
    """The ``peer_ueids`` argument: ``-`` or comma-separated hex of each UEID."""
    if not ueids:
        return "-"
    return ",".join(str(u).encode().hex() for u in ueids)


class KernelPeer:
    """``clc_decode`` / ``hs_new`` / ``hs_feed`` on the guest's user-space CLC peer.

    ``call`` sends one serve-mode command; it raises the target's TargetBroken itself when the
    guest does not answer. Problems the guest reports for an endpoint (a crash in the kernel
    log, tasks stuck in uninterruptible sleep) are passed to ``on_trouble``, which raises.
    """

    def __init__(self, call: Call, boot: BootIdentity,
                 on_trouble: Callable[[str, Mapping[str, str]], None]) -> None:
        self.call = call
        self.boot = boot
        self.on_trouble = on_trouble
        self.map = IdentityMap(boot)
        self.eps: dict[int, Endpoint] = {}
        self.ueids: Any = [HARNESS_UEID]
        self.purged = False
        self.holder = False  # a kernel-kernel pair keeps own-GID link groups alive
        self.serial = 0

    # -- case boundaries ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the case (the guest's ``reset`` closes the sockets); restore the UEID."""
        self.map = IdentityMap(self.boot)
        self.eps = {}
        self.purged = False
        self.holder = False  # the guest's reset closed its sockets
        if self.ueids != [HARNESS_UEID]:
            self._cmd(f"peer_ueids {ueid_arg([HARNESS_UEID])}")
            self.ueids = [HARNESS_UEID]

    def _cmd(self, line: str) -> dict[str, str]:
        ok, kv, detail = self.call(line)
        if not ok:
            raise PeerProtocolError(f"{line.split()[0]}: {kv.get('error')} {detail}")
        return kv

    def _ep_cmd(self, line: str) -> dict[str, str]:
        kv = self._cmd(line)
        if kv.get("kmsg", "-") != "-" or kv.get("dstate", "-") != "-":
            self.on_trouble(line.split()[0], kv)
        return kv

    def _set_ueids(self, ueids: Any) -> None:
        if self.ueids is None or list(ueids) != list(self.ueids):
            self._cmd(f"peer_ueids {ueid_arg(ueids)}")
            self.ueids = list(ueids)

    def _lgr_state(self, role: str, lgr: str) -> None:
        """Give the host the link groups an endpoint's ``lgr`` says it has.

        "reuse": one to reuse - a kernel-kernel pair, kept open, holds link groups whose peer
        is this host's own GID (a server reuses one; a client told "not first contact" by an
        Accept from its own GID joins one). "new", server: none - the own-GID link groups are
        purged (``peer_purge``), so its Accept makes first contact. "new", client: nothing to
        do here - the Accept's GID reaches it as a fresh value no link group has.
        """
        if lgr == "reuse":
            if not self.holder:
                self._purge()
                self._cmd("open 65536")
                self.holder = True
        elif role == "server":
            if self.holder:
                raise _Unsupported("config.lgr: this case wants a link group to reuse on one "
                                   "endpoint and none on a server of the same kernel host")
            if not self.purged:
                self._purge()

    def _purge(self) -> None:
        self._cmd("peer_purge")
        self.purged = True
        self.ueids = None  # the purge adds the harness UEID: set the table again

    # -- operations -----------------------------------------------------------------------------

    def apply(self, op: Op) -> Observation:
        a = op.kwargs()
        try:
            if op.name == "hs_new":
                return self.hs_new(a["role"], a["config"])
            if op.name in ("hs_feed", "hs_eof", "hs_timeout"):
                return self.hs_feed(a["ep"], a.get("data"), op.name)
            return self.clc_decode(a["data"])
        except _Unsupported as exc:
            return Observation.failure("EOPNOTSUPP", str(exc))

    def hs_new(self, role: Any, config: Any) -> Observation:
        if role not in ("client", "server"):
            return Observation.failure("EINVAL", f"role={role!r}: expected client or server")
        if not isinstance(config, dict) or set(config) - set(DEFAULTS):
            return Observation.failure("EINVAL", f"config keys: {sorted(DEFAULTS)}")
        cfg = {**DEFAULTS, **config}
        for key, why in FIXED_KEYS.items():
            if cfg[key] != DEFAULTS[key]:
                raise _Unsupported(f"config.{key} (not the default) cannot be set up in the "
                                   f"kernel target's guest: {why}")
        if cfg["lgr"] not in ("new", "reuse"):
            return Observation.failure("EINVAL", f"config.lgr={cfg['lgr']!r}: new or reuse")
        if cfg["attach_fail"] not in (None, "EINVAL"):
            raise _Unsupported(f"config.attach_fail={cfg['attach_fail']!r}: the kernel target "
                               "can make smcd_buf_attach fail only with EINVAL (no such DMB)")
        rcvbuf, dmb_len = int(cfg["rcvbuf"]), int(cfg["dmb_len"])
        kernel_dmb = 16384
        while kernel_dmb < rcvbuf // 2:
            kernel_dmb *= 2
        if dmb_len != kernel_dmb:
            raise _Unsupported(f"config.dmb_len={dmb_len}: the kernel picks the DMB from rcvbuf "
                               f"{rcvbuf} itself ({kernel_dmb} bytes, __smc_buf_create)")
        self._lgr_state(role, cfg["lgr"])
        try:
            self._set_ueids(cfg["ueids"])
        except PeerProtocolError as exc:  # the kernel refused the UEID: like the spec's config
            return Observation.failure("EINVAL", str(exc))
        rcv = 0 if rcvbuf == DEFAULTS["rcvbuf"] else rcvbuf // 2  # SO_RCVBUF doubles it
        kv = self._ep_cmd(f"{'hsc' if role == 'client' else 'hss'} {rcv}")
        handle = int(kv["ep"])
        self.serial += 1
        fresh = 0
        if role == "client" and cfg["lgr"] == "new":
            fresh = (0xF5E5 << 48) | (self.boot.gid & 0xFFFF_FFFF_0000) | self.serial
        self.eps[handle] = Endpoint(guest_ep=handle, role=role, cfg=cfg, fresh_gid=fresh)
        return Observation.success({"ep": handle, **self._result(handle, kv)})

    def hs_feed(self, ep: Any, data: Any, what: str = "hs_feed") -> Observation:
        e = self.eps.get(ep) if isinstance(ep, int) else None
        if e is None:
            return Observation.failure("EBADF", f"unknown endpoint {ep!r}")
        self._set_ueids(e.cfg["ueids"])
        if what == "hs_eof":
            kv = self._ep_cmd(f"hsfin {e.guest_ep}")
        elif what == "hs_timeout":  # the kernel's own CLC_WAIT_TIME runs out
            kv = self._ep_cmd(f"hso {e.guest_ep} {CLC_WAIT_MS + 2500}")
        else:
            try:
                raw = bytes.fromhex(data)
            except (TypeError, ValueError):
                return Observation.failure("EINVAL", "data: expected a hex string")
            wire = self._to_kernel(e, raw)
            kv = self._ep_cmd(f"hsf {e.guest_ep} {wire.hex() or '-'}")
        return Observation.success(self._result(e.guest_ep, kv))

    def _to_kernel(self, e: Endpoint, raw: bytes) -> bytes:
        """The bytes to forward for this feed: every message translated, a field split across
        feeds held back until it is complete (see :class:`Inbound`)."""
        if e.inbound is None:
            e.inbound = Inbound()

        missing = None
        if e.cfg["attach_fail"] == "EINVAL":  # a token no DMB has: smcd_buf_attach fails
            missing = 0xDEAD_0000_0000_0000 | (self.serial & 0xFFFF)

        def translate(msg: bytes) -> bytes:
            return self.map.to_kernel(e.guest_ep, e.cfg, msg, peer_gid=e.fresh_gid or None,
                                      missing_token=missing)

        values = (_b8(int(e.cfg["gid"])), _b8(int(e.cfg["gid_ext"])))
        return bytes(e.inbound.feed(raw, translate, values))

    def _result(self, handle: int, kv: Mapping[str, str]) -> dict[str, Any]:
        e = self.eps.get(handle)
        cfg = e.cfg if e is not None else DEFAULTS
        role = e.role if e is not None else "client"
        out = [self.map.from_kernel(handle, cfg, m).hex() for m in messages(kv)]
        # what the endpoint asked its lifecycle (smc_conn_create, smcd_buf_attach, ...) happens
        # inside the kernel: not observable from user space
        return {"out": out, "outcome": outcome_of(role, kv), "effects": NOT_OBSERVED}

    def clc_decode(self, data: Any) -> Observation:
        try:
            raw = bytes.fromhex(data)
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", f"data={data!r}: expected a hex string")
        ctype = raw[4] if len(raw) > 4 else None
        self._set_ueids([HARNESS_UEID])  # the server slots use the kernel's own Proposal
        if ctype in (2, 4):
            kv = self._ep_cmd("hsc 0")
            if not any(m[4:5] == b"\x01" for m in messages(kv)):
                raise PeerProtocolError(f"the kernel client sent no Proposal: {dict(kv)}")
            slot, ep = 2, int(kv["ep"])
        elif ctype == 3:
            kv = self._ep_cmd("hss 0")
            ep = int(kv["ep"])
            kv = self._ep_cmd(f"hsp {ep}")
            accepts = [m for m in messages(kv) if m[4:5] == b"\x02"]
            if not accepts:
                raise PeerProtocolError(f"the kernel server did not accept its own Proposal: "
                                        f"{dict(kv)}")
            if len(raw) >= 24:  # name a DMB that exists: the server's own
                raw = raw[:16] + accepts[0][16:24] + raw[24:]
            slot = 3
        else:
            kv = self._ep_cmd("hss 0")
            slot, ep = 1, int(kv["ep"])
        kv = self._ep_cmd(f"hsff {ep} {raw.hex() or '-'}")
        answered = messages(kv)
        role = "client" if slot == 2 else "server"
        outcome = outcome_of(role, kv)
        if outcome is None and not answered:
            kv = self._ep_cmd(f"hso {ep} 2000")
            answered = messages(kv)
            outcome = outcome_of(role, kv)
        if outcome is None and not answered:
            raise PeerProtocolError("the kernel neither answered nor ended its handshake within "
                                    "2 s of a message and a FIN")
        if not answered and outcome is not None and outcome["kind"] == "error":
            errno = outcome["errno"]
            if errno in (EPROTO, NOT_OBSERVED):
                return Observation.failure("EPROTO", "the kernel dropped the connection "
                                           "without a CLC answer (smc_clc_wait_msg: -EPROTO)")
            return Observation.failure(_errname(errno), "the kernel's handshake failed "
                                       "without a CLC answer")
        took = slot
        if outcome is not None and outcome["kind"] == "declined" and \
                outcome["reason"] == PEERDECL and not answered:
            took = 4
        return Observation.success({"type": took, "version": NOT_OBSERVED,
                                    "length": NOT_OBSERVED, "fields": NOT_OBSERVED})


def _errname(errno: Any) -> str:
    import errno as errno_mod

    return errno_mod.errorcode.get(int(errno), f"E{errno}") if isinstance(errno, int) else "EIO"
