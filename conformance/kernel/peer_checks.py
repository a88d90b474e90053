"""Judge the user-space CLC peer's scenarios (``kernel run peer-*``): claims and kernel faults.

Theory of operation
-------------------
Each ``peer-*`` scenario (``peer.c``) feeds the kernel CLC messages a well-behaved peer would not
send and records what the kernel did (smc_diag of its socket, the messages it sent, the kernel
log, tasks stuck in D state). Two kinds of :class:`~.checks.Check` come out:

* ``claim`` - the spec's handshake (:mod:`smcd_check.spec.handshake`), fed the same messages and
  this boot's loopback-ism GIDs, ends the way the kernel did (``ok``), or not (a disagreement:
  the spec or this reading of the kernel is wrong);
* ``finding`` - a kernel fault reproduced (``ok`` is False when the fault shows): an Oops, a
  worker stuck for good, an orphaned client writing into another connection. ``smcd-check kernel
  run NAME`` exits 1 when one reproduces; the README names the kernel function at fault.

Kernel-side facts used (Linux 6.12.118): smc_diag modes (1 FALLBACK_TCP, 2 SMCD); a server
socket that failed its handshake is queued closed and dropped by ``accept()`` (the peer saw
``done`` with ``err`` -1); the x86-64 layouts of ``struct smc_init_info`` (``ism_dev[]`` at
0x160, ``ism_selected`` at 0x1bb) and ``struct smcd_ops`` (``get_dev`` at 0x38) to read the
Oops' code bytes without kallsyms (the guest kernel has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smcd_check.conformance.kernel.checks import GUEST_HOSTNAME, HARNESS_UEID, Check
from smcd_check.spec.decline import DeclineCode

MODE_FALLBACK, MODE_SMCD = 1, 2
#: the Oops' "Code:" bytes of ``smcd = ini->ism_dev[ini->ism_selected]; smcd->ops->get_dev(smcd)``
#: in smc_lgr_create: movzx eax, byte [r15+0x1bb]; mov rdi, [r15+rax*8+0x160]; <mov rax, [rdi]>;
#: call [rax+0x38]
GET_DEV_NULL_CODE = "41 0f b6 87 bb 01 00 00 49 8b bc c7 60 01 00 00 <48> 8b 07 ff 50 38"


def _spec_side(role: str, gids: tuple[int, int], inputs: Sequence[bytes], *,
               first_contact_local: bool = True, attach_errno: Any = None) -> Any:
    """Run one side of the spec's handshake on these inputs (answers: the connection is
    created as the Accept / the kernel said, the attach fails with ``attach_errno``)."""
    from smcd_check.spec import handshake as hs

    cfg = hs.host_config(ueids=[HARNESS_UEID], hostname=GUEST_HOSTNAME,
                         devices=(hs.loopback_device(*gids),))
    state = hs.client_init() if role == "client" else hs.server_init()
    queue: list[Any] = [hs.Connect() if role == "client" else hs.ListenWork()]
    pending = list(inputs)
    while queue or (pending and state.outcome is None):
        ev = queue.pop(0) if queue else hs.RecvBytes(data=pending.pop(0))
        res = hs.step(cfg, state, ev)
        state = res.state
        for eff in res.effects:
            if isinstance(eff, hs.RequestConn):
                queue.append(hs.ConnCreated(lgr_id=256, first_contact_local=first_contact_local,
                                            dmb_token=0x5151, dmb_len=65536))
            elif isinstance(eff, hs.AttachPeerDmb):
                queue.append(hs.AttachDone(errno=attach_errno))
    return state


def _hex(data: Mapping[str, Any], key: str) -> bytes:
    return bytes.fromhex(str(data.get(key, "")))


def _gids(data: Mapping[str, Any]) -> tuple[int, int]:
    return int(data["lo_gid"]), int(data["lo_gid_ext"])


def _kind(state: Any) -> str:
    return state.outcome.kind.value if state.outcome is not None else "running"


def _gid_unchecked(name: str, d: Mapping[str, Any]) -> list[Check]:
    out = []
    gids = _gids(d)
    acc = _hex(d, "donor_accept")
    cli = d.get("client", {})
    st = _spec_side("client", gids, [acc], first_contact_local=True)
    acc_gid = int.from_bytes(acc[8:16], "big") if len(acc) >= 16 else -1
    kernel_active = int(cli.get("mode", -1)) == MODE_SMCD
    spec_peer = st.session.peer_gid if st.session is not None else None
    out.append(Check(
        kind="claim", scenario=name, subject="the client does not check the Accept's GID",
        ok=kernel_active and _kind(st) == "active" and int(cli.get("peer_gid", -1)) == acc_gid
        == spec_peer and acc_gid != gids[0],
        detail=f"Accept from GID {acc_gid:#x} (this host: {gids[0]:#x}): kernel mode "
               f"{cli.get('mode')}, peer_gid {int(cli.get('peer_gid', 0)):#x}; spec "
               f"{_kind(st)}, peer_gid {spec_peer:#x}" if spec_peer is not None else "",
        evidence={"accept": acc.hex(), "kernel_client": dict(cli)}))
    prop, conf = _hex(d, "kernel_proposal"), _hex(d, "confirm")
    srv = d.get("server", {})
    st = _spec_side("server", gids, [prop, conf], first_contact_local=True)
    spec_peer = st.session.peer_gid if st.session is not None else None
    ok = (int(srv.get("mode", -1)) == MODE_SMCD and _kind(st) == "active"
          and int(srv.get("peer_gid", -1)) == spec_peer == gids[0]
          and int(d.get("confirm_gid", 0)) != gids[0] and int(d.get("confirm_chid", 0)) != 0xFFFF)
    out.append(Check(
        kind="claim", scenario=name,
        subject="the server does not check the Confirm's GID and CHID",
        ok=ok,
        detail=f"Confirm naming GID {int(d.get('confirm_gid', 0)):#x}, CHID "
               f"{int(d.get('confirm_chid', 0)):#06x}: kernel mode {srv.get('mode')} with peer "
               f"GID {int(srv.get('peer_gid', 0)):#x} (the Proposal's); spec {_kind(st)}",
        evidence={"confirm": conf.hex(), "kernel_server": dict(srv)}))
    return out


def _attach_fail(name: str, d: Mapping[str, Any]) -> list[Check]:
    from smcd_check.spec.handshake import Errno

    gids = _gids(d)
    prop, acc, conf = _hex(d, "proposal"), _hex(d, "accept"), _hex(d, "confirm")
    first = bool(d.get("accept_first_contact"))
    cli, srv = d.get("client", {}), d.get("server", {})
    sc = _spec_side("client", gids, [acc], first_contact_local=first)
    bogus = conf[:16] + int(d.get("confirm_token_sent", 0)).to_bytes(8, "big") + conf[24:]
    ss = _spec_side("server", gids, [prop, bogus], first_contact_local=first,
                    attach_errno=Errno.EINVAL)
    kernel_ok = (int(cli.get("mode", -1)) == MODE_SMCD and int(srv.get("done", 0)) == 1
                 and int(srv.get("err", 0)) == -1 and not srv.get("sent"))
    out = [Check(
        kind="claim", scenario=name,
        subject="a server-side attach failure leaves the client ACTIVE",
        ok=kernel_ok and _kind(sc) == "active" and _kind(ss) == "error",
        detail=f"kernel: client mode {cli.get('mode')}, server dropped without a Decline "
               f"(err {srv.get('err')}); spec: client {_kind(sc)}, server {_kind(ss)}",
        evidence={"kernel_client": dict(cli), "kernel_server": dict(srv)})]
    reused = bool(d.get("dmb_reused"))
    injected = bool(d.get("new_server_got_orphan_bytes"))
    out.append(Check(
        kind="finding", scenario=name,
        subject="the orphaned client writes into another connection's DMB",
        ok=not (reused and injected),
        detail=(f"the failed server connection's DMB {int(d.get('server_dmb_token', 0)):#x} went "
                f"back to its link group's pool while the orphaned client kept it attached as its "
                f"sndbuf; a new connection got it (dmb_reused={reused}) and received the orphan's "
                f"bytes (received={injected}); its own peer's next bytes then did not arrive "
                f"(recv {d.get('new_server_recv_after_legit')}). smc_listen_work "
                f"(smcd_buf_attach failure -> smc_listen_decline, nothing tells the client) and "
                f"smc_conn_free/smc_buf_unuse (the DMB is pooled while attached by the peer)"),
        evidence={k: d.get(k) for k in ("server_dmb_token", "client_peer_token", "later",
                                         "orphan_send", "new_server_recv", "new_server_got",
                                         "new_server_recv_after_legit")}))
    return out


def _accept_v3(name: str, d: Mapping[str, Any]) -> list[Check]:
    gids = _gids(d)
    acc = _hex(d, "accept")
    st = _spec_side("client", gids, [acc])
    kmsg = "\n".join(str(x) for x in d.get("kmsg", []))
    oops = "NULL pointer dereference" in kmsg and "smc_hs_wq" in kmsg
    code = GET_DEV_NULL_CODE in kmsg
    cli = d.get("client", {})
    out = [Check(
        kind="claim", scenario=name,
        subject="an Accept with CLC version 3 is not rejected: NULL ism_dev[0]",
        ok=oops and not int(cli.get("done", 0)) and _kind(st) == "oops",
        detail=f"kernel: Oops in a smc_hs_wq worker={oops}, connect never completed="
               f"{not int(cli.get('done', 0))}; spec: {_kind(st)}",
        evidence={"accept": acc.hex()})]
    # a healthy loopback handshake takes milliseconds; the scenario waits 2.5 s
    hang = not int(d.get("later_connect_completed", 1))
    out.append(Check(
        kind="finding", scenario=name,
        subject="kernel Oops: smc_lgr_create dereferences ism_dev[0] == NULL",
        ok=not oops,
        detail=(f"smc_connect_ism determines the CHID only for version == SMC_V2, so "
                f"ism_selected stays 0; smc_conn_create -> smc_lgr_create: "
                f"smcd->ops->get_dev(smcd) with smcd NULL (Code bytes match: {code}); the worker "
                f"dies in smc_hs_wq holding smc_server_lgr_pending: a later kernel-kernel "
                f"SMC-D connect did not complete in 2.5 s: {hang}"),
        evidence={"kmsg": d.get("kmsg", []), "dstate_after": d.get("dstate_after"),
                  "later_connect_completed": d.get("later_connect_completed")}))
    return out


def _syncerr(name: str, d: Mapping[str, Any]) -> list[Check]:
    gids = _gids(d)
    prop = _hex(d, "kernel_proposal")
    out = []
    for case in d.get("cases", []):
        first = int(case.get("accept_first_contact", -1)) == 1
        decl = bytes.fromhex(str(case.get("decline", "")))
        st = _spec_side("server", gids, [prop, decl], first_contact_local=first)
        srv = case.get("server", {})
        stuck = "smc_hs_wq" in str(case.get("dstate", "")) and not int(srv.get("done", 0))
        if first:
            out.append(Check(
                kind="claim", scenario=name,
                subject="out-of-sync Decline, first-contact link group: the worker hangs",
                ok=stuck and _kind(st) == "hang",
                detail=f"kernel: listen worker stuck in D state={stuck}; spec: {_kind(st)}",
                evidence={"case": dict(case)}))
            out.append(Check(
                kind="finding", scenario=name,
                subject="an out-of-sync Decline deadlocks the server's listen worker",
                ok=not stuck,
                detail="smc_clc_wait_msg -> smc_lgr_terminate_sched delists the link group; "
                       "smc_conn_free then skips smc_lgr_unregister_conn; smc_conn_abort -> "
                       "smc_lgr_cleanup_early -> __smc_lgr_terminate -> lock_sock() of the "
                       "socket smc_listen_work holds: D state for good",
                evidence={"dstate": case.get("dstate")}))
        else:
            # The termination work (smc_lgr_terminate_sched) races with accept(): it kills the
            # fallen-back socket either while it still sits in the accept queue (accept()
            # drops it) or just after user space took it (it was accepted as a fallback for
            # PEERDECL / SYNCERR, and its TCP connection is then aborted). Both orders were
            # seen under qemu; both are the spec's "killed with its link group".
            done = int(srv.get("done", 0)) == 1
            dropped = done and int(srv.get("err", 0)) == -1
            killed_after_accept = (
                done and int(srv.get("err", 0)) == 0 and int(srv.get("eof", 0)) == 1
                and int(srv.get("reason", 0)) == int(DeclineCode.PEERDECL)
                and int(srv.get("peer_diagnosis", 0)) == int(DeclineCode.SYNCERR))
            how = ("dropped from the accept queue" if dropped else
                   "accepted as a PEERDECL/SYNCERR fallback, then aborted" if killed_after_accept
                   else "neither dropped nor killed")
            out.append(Check(
                kind="claim", scenario=name,
                subject="out-of-sync Decline, reused link group: the fallen-back socket dies",
                ok=(dropped or killed_after_accept) and _kind(st) == "error",
                detail=f"kernel: socket {how}, TCP reset={srv.get('eof')}; "
                       + (f"spec: {_kind(st)} {st.outcome.errno!r}" if st.outcome
                          else "spec: no outcome"),
                evidence={"case": dict(case)}))
    return out


def peer_checks(name: str, result: Mapping[str, Any]) -> list[Check]:
    """The claim and finding checks of one ``peer-*`` scenario (none if it could not run)."""
    if result.get("error") or "lo_gid" not in result:
        return []
    judge = {"peer-gid-unchecked": _gid_unchecked, "peer-attach-fail": _attach_fail,
             "peer-accept-v3": _accept_v3, "peer-syncerr-first": _syncerr}.get(name)
    return judge(name, result) if judge else []
