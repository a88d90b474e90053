"""Compare what the real kernel did (kernel scenarios) with the executable specification.

Theory of operation
-------------------
Four comparisons, each producing :class:`Check` records (``ok`` or not, with evidence); a
failed check is a *finding* about the kernel or the spec, shown with the scenario that
produced it - never hidden:

* **codec** (:func:`codec_checks`): every CLC message captured on ``lo`` decodes with the
  spec's codec (:func:`smcd_check.spec.clc.decode`) and re-encodes to exactly the same bytes.
* **handshake** (:func:`handshake_checks`): each side of each captured handshake is replayed
  through the spec's handshake (:mod:`smcd_check.spec.handshake`), fed the *kernel's* inputs:
  the loopback-ism GID pair and DMB tokens from smc_diag's DMB record, the link-group id
  (``linkid``), the DMB length, the UEID the scenario set, the guest's host name, the peer's
  captured CLC bytes. Every CLC message the spec sends must equal the captured one byte for
  byte; its outcome (reason and peer diagnosis) must equal smc_diag's fallback record.
  First contact: a side's first SMC-D connection in a boot creates its link group (the kernel
  keeps a link group for minutes after its last connection); later ones reuse it.
* **outcome** (within :func:`handshake_checks`): smc_diag's mode (SMCD / FALLBACK_TCP) and
  fallback reason / peer diagnosis against the spec's :class:`~smcd_check.spec.handshake.
  Outcome`; plus, for fallback connections, the marker string must appear on ``lo`` and for
  SMC-D connections it must not (the data went through the DMB).
* **trace** (:func:`trace_checks`): every cursor snapshot (smc_diag's conninfo of both ends,
  taken in one dump) is a state the spec's data path allows: the relations below, computed
  with the spec's cursor arithmetic (:func:`smcd_check.spec.cursor.distance` over the ring of
  ``rmbe_size`` bytes, positions modulo ``2**16 * size``). For one direction writer W ->
  reader R (ring length ``L`` = R's ``rmbe_size`` = W's ``peer_rmbe_size``):

  - ``ring``: every count is below ``L``;
  - ``order``: ``W.rx_cons <= R.tx_cons <= R.rx_prod <= W.tx_prod <= W.tx_sent <=
    W.tx_prep`` along the stream, and the whole chain spans at most ``L`` bytes (the writer
    never overwrites unconsumed data; the reader never reads past the producer; each side's
    knowledge of the other lags behind the truth, never ahead). The kernel names: ``rx_*`` are
    ``local_rx_ctrl`` (received from the peer), ``tx_prod``/``tx_cons`` ``local_tx_ctrl``
    (this side's own cursors as last announced / current), ``tx_prep/sent/fin`` the
    ``tx_curs_*``;
  - ``fin``: ``W.tx_fin`` lies in ``[W.rx_cons - L, W.tx_sent]`` (merged mode: fin follows
    the consumer cursor received; copy mode: the sent cursor);
  - ``sizes``: ``W.peer_rmbe_size == R.rmbe_size`` and merged mode ``W.sndbuf_size ==
    R.rmbe_size`` (the ghost sndbuf is the peer's DMB).

  smc_diag reads these fields without the socket lock, so a snapshot can in principle catch
  an update half done; a violation is reported as a finding with the snapshot, for a human to
  judge.

Not done: SMC-R, IPv6 prefix areas (the spec's handshake does not model IPv6 prefixes: the
``ipv6`` scenario's replay is reported as not comparable), TCP fast open (not modelled by the
spec either).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.kernel.wire import (
    connections,
    frames_of,
    segments,
    split_clc,
)

#: the UEID the harness adds (harness.c: UEID)
HARNESS_UEID = "SMCD-CHECK-LOOPBACK-ISM"
#: the host name SMC puts in first-contact extensions: ``smc_hostname`` is copied from the
#: UTS node name once, in ``smc_clc_init`` at boot (SMC is built in), before /init runs
#: ``hostname smcd-check``; so the kernel sends the default "(none)"
GUEST_HOSTNAME = "(none)"
#: the urgent-data scenarios (urg.c), judged by :mod:`.urg_checks` (kept here so that module
#: is imported only when one of them ran)
URG_SCENARIO_NAMES = ("urg-basic", "duplex", "urg-findings", "urg-wrap", "urg-phantom")
#: smc_diag mode values
MODE_SMCR, MODE_FALLBACK, MODE_SMCD = 0, 1, 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One comparison: what, where, verdict and the evidence."""

    kind: str  # codec | handshake | outcome | marker | trace | transfer | claim | finding
    scenario: str
    subject: str
    ok: bool
    detail: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "scenario": self.scenario, "subject": self.subject,
                "ok": self.ok, "detail": self.detail, "evidence": dict(self.evidence)}


# ------------------------------------------------------------------------------ helpers

def clc_of(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per TCP connection of a scenario: client port, CLC messages each way, trailing data."""
    segs = segments(frames_of(result))
    out = []
    for conn in connections(segs, result.get("port")):
        c_msgs, c_rest = split_clc(conn.c2s)
        s_msgs, s_rest = split_clc(conn.s2c)
        out.append({"client_port": conn.client[1], "c2s": c_msgs, "s2c": s_msgs,
                    "c2s_rest": c_rest, "s2c_rest": s_rest})
    return out


def diag_socks(result: Mapping[str, Any], label: str = "open") -> list[Mapping[str, Any]]:
    for view in result.get("diag", []):
        if view.get("label") == label:
            return list(view.get("socks", []))
    return []


def _side(socks: Iterable[Mapping[str, Any]], sport: int, dport: int) -> Mapping[str, Any] | None:
    for s in socks:
        if s.get("sport") == sport and s.get("dport") == dport:
            return s
    return None


# ------------------------------------------------------------------------------ codec

def codec_checks(name: str, result: Mapping[str, Any]) -> list[Check]:
    """Every captured CLC message decodes and re-encodes byte-exactly with the spec's codec."""
    from smcd_check.spec import clc

    checks = []
    for conn in clc_of(result):
        for direction in ("c2s", "s2c"):
            for i, raw in enumerate(conn[direction]):
                subject = f"port {conn['client_port']} {direction} #{i}"
                try:
                    msg = clc.decode(raw)
                    again = clc.encode(msg)
                except clc.ClcError as exc:
                    checks.append(Check(kind="codec", scenario=name, subject=subject, ok=False,
                                        detail=f"spec codec rejects the kernel's bytes: {exc}",
                                        evidence={"hex": raw.hex()}))
                    continue
                ok = again == raw
                checks.append(Check(
                    kind="codec", scenario=name, subject=subject, ok=ok,
                    detail=f"{type(msg).__name__} v{raw[7] >> 4}, {len(raw)} bytes"
                    + ("" if ok else ": re-encoding differs"),
                    evidence={} if ok else {"kernel": raw.hex(), "spec": again.hex()},
                ))
    return checks


# ------------------------------------------------------------------------------ handshake

@dataclass(slots=True)
class BootState:
    """What the kernel keeps across scenarios of one boot: the link groups that exist.

    One set for both roles: on one host with loopback-ism, ``smc_conn_create`` matches an SMC-D
    link group by device and peer GID only (``smcd_lgr_match``), so a client can reuse the link
    group its own host's server side created (seen in the ``reuse`` scenario).
    """

    lgr_ids: set[int] = field(default_factory=set)
    #: the loopback-ism GID pair (gid, gid_ext): one device per boot, taken from any smc_diag
    #: DMB record of the boot (a fallback connection has none of its own)
    lo_gid: tuple[int, int] | None = None

    def learn(self, results: Iterable[Mapping[str, Any]]) -> None:
        for res in results:
            for view in _views(res):
                for sock in view.get("socks", []) if isinstance(view, Mapping) else []:
                    d = sock.get("dmbinfo")
                    if d and self.lo_gid is None:
                        self.lo_gid = (int(d["my_gid"]), int(d["my_gid_ext"]))


def _host_cfg(*, ueid: bool, diag: Mapping[str, Any] | None, syn_smc: bool,
              lo_gid: tuple[int, int] | None) -> Any:
    from smcd_check.spec import handshake as hs

    devices: tuple[Any, ...] = ()
    rcvbuf = hs.DEFAULT_RCVBUF
    if diag is not None and "dmbinfo" in diag:
        d = diag["dmbinfo"]
        devices = (hs.loopback_device(int(d["my_gid"]), int(d["my_gid_ext"])),)
    elif lo_gid is not None:
        devices = (hs.loopback_device(*lo_gid),)
    if diag is not None and "conninfo" in diag:
        rcvbuf = 2 * (int(diag["conninfo"]["rmbe_size"]) + 32)
    return hs.host_config(ueids=[HARNESS_UEID] if ueid else [], hostname=GUEST_HOSTNAME,
                          devices=devices, rcvbuf=rcvbuf, syn_smc=syn_smc)


def _drive(role: str, cfg: Any, diag: Mapping[str, Any] | None, peer_msgs: Sequence[bytes],
           first_contact: bool) -> tuple[list[bytes], Any, list[str]]:
    """Run one side of the spec's handshake on the kernel's inputs; return (sent CLC bytes,
    outcome, notes)."""
    from smcd_check.spec import handshake as hs

    notes: list[str] = []
    state = hs.client_init() if role == "client" else hs.server_init()
    sent: list[bytes] = []
    queue: list[Any] = [hs.Connect() if role == "client" else hs.ListenWork()]
    pending_peer = list(peer_msgs)
    dmb = (diag or {}).get("dmbinfo", {})
    info = (diag or {}).get("conninfo", {})
    for _ in range(64):
        if not queue:
            if state.outcome is not None or not pending_peer:
                break
            queue.append(hs.RecvBytes(data=pending_peer.pop(0)))
        ev = queue.pop(0)
        res = hs.step(cfg, state, ev)
        state = res.state
        for eff in res.effects:
            if isinstance(eff, hs.SendClc):
                sent.append(eff.data)
            elif isinstance(eff, hs.RequestConn):
                if not dmb:
                    notes.append("RequestConn but smc_diag gave no DMB record")
                    queue.append(hs.ConnCreateFailed(reason=hs.DeclineCode.MEM))
                    continue
                queue.append(hs.ConnCreated(
                    lgr_id=int(dmb["linkid"]), first_contact_local=first_contact,
                    dmb_token=int(dmb["token"]), dmb_len=int(info.get("rmbe_size", 65504)) + 32))
            elif isinstance(eff, hs.AttachPeerDmb):
                if dmb and int(dmb["peer_token"]) != eff.peer_token:
                    notes.append(f"spec attaches peer token {eff.peer_token:#x}, kernel has "
                                 f"{int(dmb['peer_token']):#x}")
                queue.append(hs.AttachDone())
            else:
                notes.append(f"effect {type(eff).__name__}")
    return sent, state.outcome, notes


#: what each handshake scenario sets up: (UEID present, client is SMC, server is SMC)
HANDSHAKE_SETUP: Mapping[str, tuple[bool, bool, bool]] = {
    "noueid": (False, True, True),
    "smcd": (True, True, True),
    "reuse": (True, True, True),
    "tcp-server": (True, True, False),
    "tcp-client": (True, False, True),
    "bufsizes": (True, True, True),
    "data": (True, True, True),
    "data-small": (True, True, True),
    "data-oneway": (True, True, True),
    "sockopt-level": (True, True, True),
    "close-client": (True, True, True),
    "close-server": (True, True, True),
    "shutwr-client": (True, True, True),
    "shutwr-server": (True, True, True),
    "shutrd-client": (True, True, True),
    "shutrdwr-client": (True, True, True),
    "abort-client": (True, True, True),
    "abort-server": (True, True, True),
    "linger0-client": (True, True, True),
    "wrap": (True, True, True),
}


def handshake_checks(name: str, result: Mapping[str, Any], boot: BootState) -> list[Check]:
    """Replay both sides of each connection of a handshake scenario through the spec."""
    from smcd_check.spec import handshake as hs

    setup = HANDSHAKE_SETUP.get(name)
    checks: list[Check] = []
    if setup is None or result.get("error"):
        return checks
    ueid, c_smc, s_smc = setup
    port = int(result["port"])
    views = diag_socks(result, "open") or diag_socks(result, "before")
    for conn in clc_of(result):
        cport = conn["client_port"]
        c_diag = _side(views, cport, port)
        s_diag = _side(views, port, cport)
        for role, is_smc, diag, mine, theirs in (
            ("client", c_smc, c_diag, conn["c2s"], conn["s2c"]),
            ("server", s_smc, s_diag, conn["s2c"], conn["c2s"]),
        ):
            if not is_smc:
                continue
            subject = f"{role} of port {cport}"
            lgr = int(diag["dmbinfo"]["linkid"]) if diag and "dmbinfo" in diag else None
            first = lgr is not None and lgr not in boot.lgr_ids
            cfg = _host_cfg(ueid=ueid, diag=diag, syn_smc=c_smc and s_smc, lo_gid=boot.lo_gid)
            try:
                sent, outcome, notes = _drive(role, cfg, diag, theirs, first)
            except Exception as exc:  # a spec crash on kernel inputs is a finding, shown
                checks.append(Check(kind="handshake", scenario=name, subject=subject, ok=False,
                                    detail=f"spec raised {type(exc).__name__}: {exc}"))
                continue
            if lgr is not None:
                boot.lgr_ids.add(lgr)
            same = sent == list(mine)
            ev: dict[str, Any] = {"first_contact": first}
            if not same:
                ev["kernel"] = [m.hex() for m in mine]
                ev["spec"] = [m.hex() for m in sent]
            checks.append(Check(
                kind="handshake", scenario=name, subject=subject, ok=same,
                detail=(f"{len(sent)} CLC message(s) byte-identical" if same else
                        f"spec sent {len(sent)} message(s), kernel {len(mine)}; differ")
                + ("; " + "; ".join(notes) if notes else ""),
                evidence=ev,
            ))
            if diag is None or outcome is None:
                checks.append(Check(kind="outcome", scenario=name, subject=subject,
                                    ok=False,
                                    detail="no outcome to compare (spec did not finish or no "
                                    "smc_diag record)",
                                    evidence={"outcome": repr(outcome)}))
                continue
            mode = int(diag["mode"])
            fb = diag.get("fallback", {})
            k_reason, k_peer = int(fb.get("reason", 0)), int(fb.get("peer_diagnosis", 0))
            if outcome.kind is hs.OutcomeKind.ACTIVE:
                ok = mode == MODE_SMCD and k_reason == 0
            else:
                s_reason = int(outcome.reason) if outcome.reason is not None else 0
                ok = (mode == MODE_FALLBACK and k_reason == s_reason
                      and k_peer == outcome.peer_diagnosis)
            checks.append(Check(
                kind="outcome", scenario=name, subject=subject, ok=ok,
                detail=f"spec {outcome.kind.value} reason "
                f"{(int(outcome.reason) if outcome.reason is not None else 0):#010x} peer "
                f"{outcome.peer_diagnosis:#010x}; kernel mode {mode} reason {k_reason:#010x} "
                f"peer {k_peer:#010x}",
            ))
    return checks


# ------------------------------------------------------------------------------ markers/transfers

def marker_checks(name: str, result: Mapping[str, Any]) -> list[Check]:
    """The marker strings appear on lo exactly when the connection fell back to TCP."""
    checks = []
    conns = result.get("connections", [])
    views = diag_socks(result, "open")
    port = int(result.get("port", 0))
    payload = b"".join(base64.b64decode(f["data"]) for f in result.get("frames", []))
    for c in conns:
        cport = c.get("client_port")
        diag = _side(views, cport, port) if cport is not None else None
        if diag is None:
            continue
        fallback = int(diag["mode"]) == MODE_FALLBACK
        for key in ("marker_c2s", "marker_s2c"):
            marker = str(c.get(key, "")).encode()
            if not marker:
                continue
            on_wire = marker in payload
            checks.append(Check(
                kind="marker", scenario=name, subject=f"port {cport} {key}",
                ok=on_wire == fallback and bool(c.get(key + "_ok")),
                detail=f"mode {'FALLBACK_TCP' if fallback else 'SMCD'}; marker "
                f"{'seen' if on_wire else 'not seen'} on lo; delivered "
                f"{bool(c.get(key + '_ok'))}",
            ))
    return checks


def transfer_checks(name: str, result: Mapping[str, Any]) -> list[Check]:
    checks = []
    for t in result.get("transfers", []):
        ok = (t["received"] == t["total"] and t["mismatch_at"] == -1
              and t.get("checksum_sent") == t.get("checksum_received"))
        mbps = t["total"] / max(1, t["elapsed_us"])
        checks.append(Check(
            kind="transfer", scenario=name, subject=t["dir"], ok=ok,
            detail=f"{t['received']}/{t['total']} bytes, {mbps:.1f} MB/s in the guest, "
            f"checksum {t.get('checksum_received', 'n/a')}, first mismatch {t['mismatch_at']}",
        ))
    return checks


# ------------------------------------------------------------------------------ trace validation

def _curs(v: Sequence[int]) -> Any:
    from smcd_check.spec.cursor import Cursor

    return Cursor(wrap=int(v[0]), count=int(v[1]))


def snapshot_problems(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> list[str]:
    """Relations (module docstring) that one writer/reader conninfo pair breaks."""
    from smcd_check.spec.cursor import Ring, distance

    w, r = writer["conninfo"], reader["conninfo"]
    size = int(r["rmbe_size"])
    problems = []
    if int(w["peer_rmbe_size"]) != size:
        problems.append(f"sizes: writer peer_rmbe_size {w['peer_rmbe_size']} != reader "
                        f"rmbe_size {size}")
    try:
        ring = Ring(size=size)
    except Exception as exc:
        return [*problems, f"ring: {exc}"]
    names = {"W.rx_cons": w["rx_cons"], "R.tx_cons": r["tx_cons"], "R.rx_prod": r["rx_prod"],
             "W.tx_prod": w["tx_prod"], "W.tx_sent": w["tx_sent"], "W.tx_prep": w["tx_prep"],
             "W.tx_fin": w["tx_fin"]}
    for k, v in names.items():
        if int(v[1]) >= size:
            problems.append(f"ring: {k} count {v[1]} >= ring size {size}")
    if problems:
        return problems
    chain = ["W.rx_cons", "R.tx_cons", "R.rx_prod", "W.tx_prod", "W.tx_sent", "W.tx_prep"]
    total = 0
    for a, b in itertools.pairwise(chain):
        d = distance(ring, _curs(names[a]), _curs(names[b]))
        if d > size:
            problems.append(f"order: {b} {names[b]} is behind {a} {names[a]} "
                            f"(distance {d - ring.period})")
        total += d if d <= size else 0
    if not problems and total > size:
        problems.append(f"order: W.rx_cons .. W.tx_prep spans {total} bytes > ring {size}")
    fin, sent = _curs(names["W.tx_fin"]), _curs(names["W.tx_sent"])
    if distance(ring, fin, sent) > size:
        problems.append(f"fin: tx_fin {names['W.tx_fin']} is ahead of tx_sent "
                        f"{names['W.tx_sent']}")
    return problems


def trace_checks(name: str, result: Mapping[str, Any]) -> list[Check]:
    """Every snapshot of both directions of every connection is a state the spec allows."""
    views = list(result.get("snapshots", []))
    for key in ("diag", "diag_after", "diag_after_peer"):
        views += [v for v in result.get(key, []) if isinstance(v, Mapping)]
    port = result.get("port")
    checks = []
    bad: list[dict[str, Any]] = []
    n = 0
    for view in views:
        socks = [s for s in view.get("socks", []) if "conninfo" in s]
        for a in socks:
            if a.get("sport") == port:
                continue  # iterate from the client's record
            b = _side(socks, int(a["dport"]), int(a["sport"]))
            if b is None:
                continue
            for writer, reader, direction in ((a, b, "c2s"), (b, a, "s2c")):
                n += 1
                probs = snapshot_problems(writer, reader)
                if probs:
                    bad.append({"view": view.get("label"), "direction": direction,
                                "problems": probs, "writer": writer["conninfo"],
                                "reader": reader["conninfo"]})
    if n:
        checks.append(Check(
            kind="trace", scenario=name, subject=f"{n} directional snapshot(s)", ok=not bad,
            detail="all allowed by the spec's cursor relations" if not bad else
            f"{len(bad)} snapshot(s) break a relation: {bad[0]['problems'][0]}",
            evidence={"violations": bad[:5]} if bad else {},
        ))
    return checks


def _views(result: Mapping[str, Any]) -> list[Any]:
    """Every smc_diag view of a scenario, the urgent-data cases' own included."""
    views: list[Any] = []
    for key in ("diag", "diag_after", "snapshots", "diag_after_peer", "diag_accepted"):
        views += list(result.get(key, []))
    for case in result.get("cases", []):
        if isinstance(case, Mapping):
            views += list(case.get("diag", []))
    return views


def _linkids(result: Mapping[str, Any]) -> set[int]:
    """Every link-group id in a scenario's smc_diag views (they exist from now on)."""
    ids = set()
    for view in _views(result):
        for sock in view.get("socks", []) if isinstance(view, Mapping) else []:
            if "dmbinfo" in sock:
                ids.add(int(sock["dmbinfo"]["linkid"]))
    return ids


def all_checks(results: Mapping[str, Mapping[str, Any]], order: Sequence[str]) -> list[Check]:
    """Every check for every scenario result, in boot order (first contact depends on it)."""
    boot = BootState()
    boot.learn(results[n] for n in order if n in results)
    out: list[Check] = []
    for name in order:
        res = results.get(name)
        if res is None:
            continue
        if name.startswith("peer-"):  # the user-space CLC peer's scenarios: claims, findings
            from smcd_check.conformance.kernel.peer_checks import peer_checks

            out += peer_checks(name, res)
            continue
        if name in URG_SCENARIO_NAMES:  # urgent data, both directions: claims, findings
            from smcd_check.conformance.kernel.urg_checks import urg_checks

            out += codec_checks(name, res)
            boot.lgr_ids |= _linkids(res)
            out += urg_checks(name, res)
            out += trace_checks(name, res)
            continue
        out += codec_checks(name, res)
        out += handshake_checks(name, res, boot)
        boot.lgr_ids |= _linkids(res)
        out += marker_checks(name, res)
        out += transfer_checks(name, res)
        out += trace_checks(name, res)
    return out
