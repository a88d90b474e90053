"""Catalogue area ``handshake``: CLC client and server endpoints fed with bytes.

Each case creates endpoints with ``hs_new`` (a loopback-ism host: GID, UEIDs, host name, and what
its lifecycle answers) and feeds them CLC bytes - the other endpoint's output (``Ref("c",
"out.0")``: the first message the client wrote) or hand-packed messages from
:mod:`.clc`. Expected outputs and outcomes come from :mod:`smcd_check.spec.handshake`;
the steps that show a kernel fact pin it (the Proposal Linux 6.12 sends for loopback-ism, the
decline codes of ``smc_listen_v2_check`` / ``smc_listen_find_device``, -EPROTO without fallback
for an invalid message). Sources: net/smc/af_smc.c ``__smc_connect``, ``smc_connect_ism``,
``smc_listen_work``; net/smc/smc_clc.c ``smc_clc_wait_msg``.
"""

from __future__ import annotations

from smcd_check.conformance.catalogue.clc import (
    accept_confirm,
    decline,
    proposal_v2,
)
from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

AF = "net/smc/af_smc.c"
NOUEID, NOSMCDDEV, PEERDECL = 0x03030008, 0x03030001, 0x05000000
EPROTO = 71
SERVER = {"dmb_token": 0x5151, "lgr_id": 512}


def _accept_chid(chid: int) -> str:
    """A v2 first-contact Accept whose d1.chid is ``chid`` (bytes 32..33)."""
    raw = bytearray(accept_confirm())
    raw[32:34] = chid.to_bytes(2, "big")
    return bytes(raw).hex()


def client(bind: str = "c", **config: object) -> Step:
    return step("hs_new", role="client", config=config, bind=bind)


def server(bind: str = "s", **config: object) -> Step:
    return step("hs_new", role="server", config={**SERVER, **config}, bind=bind)


def feed(ep: str, data: object, bind: str | None = None) -> Step:
    return step("hs_feed", ep=Ref(ep, "ep"), data=data, bind=bind)


def out(bind: str, i: int = 0) -> Ref:
    return Ref(bind, f"out.{i}")


def outcome(kind: str, reason: int | None = None, peer_diagnosis: int = 0,
            errno: int | None = None) -> dict[str, object]:
    return {"errno": errno, "kind": kind, "peer_diagnosis": peer_diagnosis, "reason": reason}


def pin(index: int, fn: str, **value: object) -> Pin:
    return Pin(index=index, error=None, value=tuple(value.items()), source=f"{AF} {fn}")


def case(cid: str, title: str, description: str, fn: str, steps: list[Step],
         pins: tuple[Pin, ...] = ()) -> Case:
    return Case(id=f"handshake.{cid}", area=Area.HANDSHAKE, title=title,
                description=description, source=f"{AF} {fn}", steps=tuple(steps), pins=pins,
                rules=(fn,))


CASES: tuple[Case, ...] = (
    case("client.proposal", "the client's Proposal is Linux's loopback-ism Proposal",
         "v2 header, typev1 N, typev2 D, one UEID, GID/CHID entries (gid, 0xFFFF) and "
         "(gid_ext, 0xFFFF), release 1, feature mask 1: byte for byte as packed from the "
         "kernel's layout.", "smc_clc_send_proposal",
         [client()], (pin(0, "smc_clc_send_proposal", out=[proposal_v2().hex()],
                          outcome=None),)),
    case("pair.loopback-active", "client and server reach SMC-D over loopback-ism",
         "Proposal -> Accept (first contact) -> Confirm: both sides ACTIVE.", "smc_listen_work",
         [client(), server(), feed("s", out("c"), "accept"), feed("c", out("accept"), "confirm"),
          feed("s", out("confirm"), "done")],
         (pin(4, "smc_listen_work", out=[], outcome=outcome("active")),)),
    case("pair.split-delivery", "messages split into small pieces are reassembled",
         "TCP may deliver the Proposal in pieces; the server waits for the whole message.",
         "smc_clc_wait_msg",
         [server(), feed("s", proposal_v2()[:7].hex()), feed("s", proposal_v2()[7:100].hex()),
          feed("s", proposal_v2()[100:].hex())],
         (pin(2, "smc_clc_wait_msg", out=[], outcome=None),)),
    case("server.no-ueid", "a client without UEIDs is declined with NOUEID",
         "SMC-Dv2 offered, eid_cnt 0 and no SEID: SMC_CLC_DECL_NOUEID (0x03030008); both fall "
         "back to TCP.", "smc_listen_v2_check",
         [client(ueids=[]), server(), feed("s", out("c"), "decl"), feed("c", out("decl"), "c2")],
         (pin(3, "smc_connect_clc", out=[],
              outcome=outcome("declined", PEERDECL, peer_diagnosis=NOUEID)),)),
    case("server.no-common-ueid", "no UEID in common: NOSMCDDEV",
         "SMC-Dv2 is dropped without its own code; only SMC-D was offered, so "
         "smc_listen_find_device returns SMC_CLC_DECL_NOSMCDDEV (0x03030001).",
         "smc_listen_find_device",
         [client(ueids=["OTHER-UEID"]), server(), feed("s", out("c"), "decl")],
         (pin(2, "smc_listen_find_device", out=[decline(code=NOSMCDDEV).hex()],
              outcome=outcome("declined", NOSMCDDEV)),)),
    case("server.hand-packed-proposal", "the server accepts the hand-packed Linux Proposal",
         "The Proposal packed from the kernel's layout is answered with an Accept.",
         "smc_listen_work", [server(), feed("s", proposal_v2().hex(), "acc")]),
    case("server.invalid-proposal", "an invalid Proposal is -EPROTO: no Decline, no fallback",
         "eid_cnt 9 fails smc_clc_msg_prop_valid; smc_clc_wait_msg returns -EPROTO and the "
         "server socket fails.", "smc_clc_wait_msg",
         [server(), feed("s", proposal_v2(eid_cnt=9).hex())],
         (pin(1, "smc_clc_wait_msg", out=[], outcome=outcome("error", errno=EPROTO)),)),
    case("server.garbage", "garbage instead of a Proposal is -EPROTO",
         "A bad eyecatcher fails smc_clc_msg_hdr_valid.", "smc_clc_wait_msg",
         [server(), feed("s", "00" * 64)],
         (pin(1, "smc_clc_wait_msg", out=[], outcome=outcome("error", errno=EPROTO)),)),
    case("server.client-declines", "a Decline instead of a Proposal: PEERDECL, fallback",
         "smc_clc_wait_msg accepts a Decline whatever it waits for.", "smc_clc_wait_msg",
         [server(), feed("s", decline(code=0x03030000).hex())],
         (pin(1, "smc_listen_work", out=[],
              outcome=outcome("declined", PEERDECL, peer_diagnosis=0x03030000)),)),
    case("client.accept-v1", "a v1 Accept answering a v2-only Proposal is refused",
         "smc_connect_check_aclc: the Accept's type must have been offered (typev1 N here): "
         "SMC_CLC_DECL_MODEUNSUPP.", "smc_connect_check_aclc",
         [client(), feed("c", accept_confirm(version=1).hex())],
         (pin(1, "smc_connect_check_aclc", outcome=outcome("declined", 0x03040000)),)),
    case("client.wrong-message", "a Confirm instead of an Accept is -EPROTO",
         "smc_clc_wait_msg: anything but the expected type or a Decline.", "smc_clc_wait_msg",
         [client(), feed("c", accept_confirm(ctype=3).hex())],
         (pin(1, "smc_clc_wait_msg", out=[], outcome=outcome("error", errno=EPROTO)),)),
    case("client.accept-wrong-chid", "an Accept naming a CHID that was not offered",
         "smc_v2_determine_accepted_chid finds no offered device with that CHID: -EPROTO.",
         "smc_connect_ism",
         [client(), feed("c", _accept_chid(0x1234))],
         (pin(1, "smc_connect_ism", out=[], outcome=outcome("error", errno=EPROTO)),)),
    case("client.accept-other-gid", "an Accept from an unknown loopback GID still connects",
         "The client does not check the server's GID against its device (the lgr is new).",
         "smc_connect_ism",
         [client(), feed("c", accept_confirm().hex(), "conf")]),
)
