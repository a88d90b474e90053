"""The handshake machines reproduce, byte for byte, what Linux 6.12.118 sent over loopback-ism.

Golden bytes: TCP payloads of a capture on ``lo`` of a real Linux 6.12.118 kernel with
``CONFIG_SMC_LO`` (client and server in one qemu guest, 127.0.0.1), and of Debian's stock 6.12.118
kernel (no SMC-D device). Extracted with a few lines of ``struct``: for each pcap record, skip
the 14-byte Ethernet header, the IPv4 header (IHL * 4) and the TCP header (data offset * 4); the
rest is the payload, printed as hex. ``tshark -r FILE -V`` shows the same messages field by field.

Inputs fed to the machines are the ones the kernel had: loopback-ism GID 0x314274d28d9afb2c /
gid_ext 0xb9c97dd435ab2d9f, CHID 0xFFFF, UEID "SMCD-CONFORMANCE-UEID" (blank padded), host name
"(none)", 64 KiB DMBs, link groups 256 (server) and 512 (client) as ``smc_lgr_list.num`` gave
them, and the DMB tokens the kernel drew (the spec takes tokens as inputs).
"""

from __future__ import annotations

from smcd_check.spec.decline import DeclineCode
from smcd_check.spec.handshake import (
    INVARIANTS,
    BackToBack,
    ClcType,
    OutcomeKind,
    PairConfig,
    Role,
    SendClc,
    SideEnv,
    host_config,
    loopback_device,
    run_back_to_back,
)
from smcd_check.spec.properties import violated

GID = 0x314274D28D9AFB2C
GID_EXT = 0xB9C97DD435AB2D9F
UEID = "SMCD-CONFORMANCE-UEID"

# smclo-6.12_lo.pcap, frame 4 (57324 -> 40123): Proposal v2 without UEID, 192 bytes
PROPOSAL_NO_UEID = bytes.fromhex(
    "e2d4c3d90100c026000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000001c000000000000000000000000"
    "0000000000000000000000000000000000020010000000200000000000000000"
    "0000000000000000000000010000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000314274d28d9afb2cffffb9c97dd435ab2d9fffffe2d4c3d9"
)
# frame 6 (40123 -> 57324): Decline v2, NOUEID 0x03030008, os_type Linux, 44 bytes
DECLINE_NOUEID = bytes.fromhex(
    "e2d4c3d904002c20000000000000000003030008200000000000000000000000"
    "0000000000000000e2d4c3d9"
)
# frame 17 (49144 -> 40124): Proposal v2 with one UEID, 224 bytes
PROPOSAL_UEID = bytes.fromhex(
    "e2d4c3d90100e026000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000001c000000000000000000000000"
    "0000000000000000000000000000000001020010000000400000000000000000"
    "000000000000000000000001000000000000000000000000534d43442d434f4e"
    "464f524d414e43452d5545494420202020202020202020200000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000314274d28d9afb2cffffb9c97dd435ab2d9fffffe2d4c3d9"
)
# frame 19 (40124 -> 49144): Accept v2, first contact, 52-byte extension, 130 bytes
ACCEPT_FIRST = bytes.fromhex(
    "e2d4c3c402008229314274d28d9afb2c056bb09d0d41d3dd0020000000010000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9f00210000286e6f6e6529202020202020202020202020"
    "202020202020202020202020202000000001000000000000000000000000e2d4"
    "c3c4"
)
# frame 21 (49144 -> 40124): Confirm v2, first contact, 130 bytes
CONFIRM_FIRST = bytes.fromhex(
    "e2d4c3c403008229314274d28d9afb2c05cbebea105b723a0020000000020000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9f00210000286e6f6e6529202020202020202020202020"
    "202020202020202020202020202000000001000000000000000000000000e2d4"
    "c3c4"
)
# frame 31 (40125 -> 34960): Accept v2 reusing the link group, 78 bytes
ACCEPT_REUSE = bytes.fromhex(
    "e2d4c3c402004e21314274d28d9afb2c056bb09d0d41d3dd0020000000010000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9fe2d4c3c4"
)
# frame 33 (34960 -> 40125): Confirm v2 reusing the link group, 78 bytes
CONFIRM_REUSE = bytes.fromhex(
    "e2d4c3c403004e21314274d28d9afb2c40240bd884458f7a0020000000010000"
    "ffff534d43442d434f4e464f524d414e43452d55454944202020202020202020"
    "2020b9c97dd435ab2d9fe2d4c3c4"
)
# debian-6.12-stock_lo.pcap, frame 4 (47042 -> 40123): the stock kernel has no SMC-D device:
# the client declines before any Proposal, Decline v1 NOSMCDEV 0x03030000, 28 bytes
DECLINE_V1_NOSMCDEV = bytes.fromhex(
    "e2d4c3d904001c1000000000000000000303000000000000e2d4c3d9"
)

LO = loopback_device(GID, GID_EXT)
WITH_UEID = host_config(devices=(LO,), ueids=(UEID,))
NO_UEID = host_config(devices=(LO,))


def sent(result: BackToBack) -> list[tuple[Role, ClcType, bytes]]:
    """The CLC messages written, in order, by sender."""
    return [(role, eff.msg_type, eff.data) for role, eff in result.trace
            if isinstance(eff, SendClc)]


def test_handshake_capture_no_ueid_is_declined_with_the_kernels_bytes() -> None:
    """Phase 1 of the capture: no UEID, the server declines NOUEID, both fall back."""
    result = run_back_to_back(NO_UEID, NO_UEID)
    assert sent(result) == [
        (Role.CLIENT, ClcType.PROPOSAL, PROPOSAL_NO_UEID),
        (Role.SERVER, ClcType.DECLINE, DECLINE_NOUEID),
    ]
    # smc_diag in the capture's console: server fallback_rsn 0x03030008, client 0x05000000
    # with peer_diag 0x03030008
    client, server = result.state.client.outcome, result.state.server.outcome
    assert client is not None and server is not None
    assert (client.kind, client.reason, client.peer_diagnosis) == (
        OutcomeKind.DECLINED, DeclineCode.PEERDECL, 0x03030008)
    assert (server.kind, server.reason, server.peer_diagnosis) == (
        OutcomeKind.DECLINED, DeclineCode.NOUEID, 0)


def first_connection() -> BackToBack:
    return run_back_to_back(
        WITH_UEID, WITH_UEID,
        client_env=SideEnv(dmb_tokens=(0x05CBEBEA105B723A,)),
        server_env=SideEnv(dmb_tokens=(0x056BB09D0D41D3DD,)),
    )


def test_handshake_capture_first_contact_reproduces_proposal_accept_confirm() -> None:
    """Phase 2: a common UEID: Proposal 224, Accept 130 (first contact), Confirm 130."""
    result = first_connection()
    assert sent(result) == [
        (Role.CLIENT, ClcType.PROPOSAL, PROPOSAL_UEID),
        (Role.SERVER, ClcType.ACCEPT, ACCEPT_FIRST),
        (Role.CLIENT, ClcType.CONFIRM, CONFIRM_FIRST),
    ]
    assert violated(INVARIANTS, PairConfig(client=WITH_UEID, server=WITH_UEID),
                    result.state) == ()
    c, s = result.state.client.session, result.state.server.session
    assert c is not None and s is not None
    # what smc_diag showed: rmbe 65504 on both sides, tokens crossed, link ids 0x100 / 0x200
    assert (c.peer_rmbe_size, s.peer_rmbe_size) == (65504, 65504)
    assert (c.lgr_id, s.lgr_id) == (512, 256)
    assert (c.peer_token, s.peer_token) == (0x056BB09D0D41D3DD, 0x05CBEBEA105B723A)
    assert c.peer_hostname == b"(none)" + b" " * 26


def test_handshake_capture_second_connection_reuses_the_link_group_in_78_bytes() -> None:
    """Phase 3: both sides find link group 256; Accept and Confirm carry no extension."""
    first = first_connection()
    result = run_back_to_back(
        WITH_UEID, WITH_UEID, lgrs=first.lgrs, next_lgr_id=768,
        client_env=SideEnv(dmb_tokens=(0x40240BD884458F7A,)),
        server_env=SideEnv(dmb_tokens=(0x056BB09D0D41D3DD,)),  # the server reused its DMB
    )
    assert sent(result) == [
        (Role.CLIENT, ClcType.PROPOSAL, PROPOSAL_UEID),
        (Role.SERVER, ClcType.ACCEPT, ACCEPT_REUSE),
        (Role.CLIENT, ClcType.CONFIRM, CONFIRM_REUSE),
    ]
    c, s = result.state.client.session, result.state.server.session
    assert c is not None and s is not None
    assert (c.lgr_id, s.lgr_id, c.first_contact_local, s.first_contact_local) == (
        256, 256, False, False)
    assert len(result.lgrs) == 2  # no new link group


def test_handshake_capture_stock_kernel_declines_v1_before_any_proposal() -> None:
    """A host without SMC-D device and no ISMv2 capability sends a v1 Decline NOSMCDEV."""
    stock = host_config()
    result = run_back_to_back(stock, stock)
    assert sent(result) == [(Role.CLIENT, ClcType.DECLINE, DECLINE_V1_NOSMCDEV)]
    client, server = result.state.client.outcome, result.state.server.outcome
    assert client is not None and server is not None
    assert (client.reason, server.reason, server.peer_diagnosis) == (
        DeclineCode.NOSMCDEV, DeclineCode.PEERDECL, 0x03030000)
