"""Property tests of the handshake machines: any peer input ends legally; pairs complete.

Hypothesis draws whole peer behaviours: valid messages of every type (from the codec, fields
drawn), the same messages mutated (bit flips, truncation, a changed length or version byte),
arbitrary bytes, split and coalesced into arbitrary chunks, timeouts and EOF, and arbitrary
answers from the lifecycle to each request.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from smcd_check.spec import clc
from smcd_check.spec.decline import DeclineCode
from smcd_check.spec.handshake import (
    INVARIANTS,
    SEND_SEQUENCES,
    TERMINAL_PHASES,
    TRANSITIONS,
    AttachDone,
    AttachPeerDmb,
    BufCreateFailed,
    ConnAbort,
    ConnCreated,
    ConnCreateFailed,
    Connect,
    Delivery,
    Errno,
    Event,
    ForbiddenHandshakeStep,
    HandshakeState,
    HostConfig,
    InconsistentAnswer,
    LgrPolicy,
    ListenWork,
    OutcomeKind,
    PairConfig,
    Phase,
    RecvBytes,
    RecvEof,
    RecvTimeout,
    RequestConn,
    Role,
    SendClc,
    SideEnv,
    client_init,
    host_config,
    loopback_device,
    run_back_to_back,
    server_init,
    step,
)
from smcd_check.spec.properties import violated

GID, GID_EXT = 0x314274D28D9AFB2C, 0xB9C97DD435AB2D9F
UEID = "SMCD-CONFORMANCE-UEID"
LO = loopback_device(GID, GID_EXT)
LOOP = host_config(devices=(LO,), ueids=(UEID,))

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

u64 = st.integers(0, 2**64 - 1)
chids = st.sampled_from([0, 0x1234, 0xFF00, 0xFFFF])
eids = st.sampled_from([UEID.encode().ljust(32), b"OTHER".ljust(32), bytes(32)])


@st.composite
def accept_confirms(draw: st.DrawFn, cls: type[clc.Accept] | type[clc.Confirm]) -> bytes:
    version = draw(st.sampled_from([1, 2, 2, 2, 3]))
    first = draw(st.booleans())
    fields: dict[str, object] = {
        "version": version, "typev2": 2 if first else 0,
        "typev1": draw(st.sampled_from([clc.SmcType.D, clc.SmcType.D, clc.SmcType.R])),
        "gid": draw(st.sampled_from([GID, 0x1111])), "token": draw(u64),
        "dmbe_size": draw(st.integers(0, 15)), "linkid": bytes([0, 1, 0, 0]),
    }
    if fields["typev1"] is clc.SmcType.R:
        body = 100 if version >= 2 else 56
        return clc.encode(cls(version=version, typev2=fields["typev2"],  # type: ignore[arg-type]
                              typev1=clc.SmcType.R, eyecatcher=clc.EYECATCHER_SMCR,
                              trailer=clc.EYECATCHER_SMCR, smcr_body=bytes(body)))
    if version >= 2:
        fields.update(chid=draw(chids), eid=draw(eids), gid_ext=draw(st.sampled_from(
            [GID_EXT, 0])))
        if first and draw(st.booleans()):
            v2x = clc.FirstContactExtV2x(feature_mask=draw(st.integers(0, 3))) if draw(
                st.booleans()) else None
            fields["first_contact_ext"] = clc.FirstContactExt(
                release=draw(st.integers(0, 15)), hostname=b"peer".ljust(32), v2x=v2x)
    return clc.encode(cls(**fields))  # type: ignore[arg-type]


@st.composite
def proposals(draw: st.DrawFn) -> bytes:
    typev2 = draw(st.sampled_from(list(clc.SmcType)))
    typev1 = draw(st.sampled_from(list(clc.SmcType)))
    version = draw(st.sampled_from([1, 2, 2, 3]))
    if version == 1 and typev1 is clc.SmcType.N:
        typev1 = clc.SmcType.D
    entries = draw(st.lists(st.sampled_from([
        clc.GidChid(gid=GID, chid=0xFFFF), clc.GidChid(gid=GID_EXT, chid=0xFFFF),
        clc.GidChid(gid=0x1111, chid=0x1234)]), max_size=4))
    p = clc.build_proposal(
        version=version, typev1=typev1, typev2=typev2 if version >= 2 else clc.SmcType.N,
        ism_v1=clc.GidChid(gid=draw(st.sampled_from([0, GID])), chid=draw(chids)),
        user_eids=tuple(draw(st.lists(eids.filter(lambda e: e[0] != 0), max_size=2,
                                      unique=True))),
        gidchids=tuple(entries), release=draw(st.integers(0, 3)), seid=draw(st.booleans()),
    )
    return clc.encode(p)


declines = st.builds(
    lambda v, code, sync: clc.encode(clc.Decline(version=v, peer_diagnosis=code,
                                                 typev2=2 if sync else 0,
                                                 os_type=0 if v == 1 else 2)),
    st.sampled_from([1, 2]), st.sampled_from([int(c) for c in DeclineCode] + [0x12345678]),
    st.booleans())

valid_messages = st.one_of(proposals(), accept_confirms(clc.Accept),
                           accept_confirms(clc.Confirm), declines)


@st.composite
def good_accepts(draw: st.DrawFn) -> bytes:
    """Accepts a loopback client takes: v2, CHID 0xFFFF, first contact or not."""
    first = draw(st.booleans())
    fce = None
    if first:
        release = draw(st.sampled_from([1, 1, 0, 2]))
        fce = clc.FirstContactExt(
            release=release, hostname=b"peer".ljust(32),
            v2x=clc.FirstContactExtV2x(feature_mask=1) if release else None)
    return clc.encode(clc.Accept(
        version=2, typev2=2 if first else 0, gid=GID, token=draw(u64),
        dmbe_size=draw(st.integers(0, 15)), linkid=bytes([0, 1, 0, 0]), chid=0xFFFF,
        eid=UEID.encode().ljust(32), gid_ext=GID_EXT, first_contact_ext=fce))


@st.composite
def good_confirms(draw: st.DrawFn) -> bytes:
    """Confirms a loopback server takes (release 1, or a mismatching 0)."""
    first = draw(st.booleans())
    fce = None
    if first:
        release = draw(st.sampled_from([1, 1, 0]))
        fce = clc.FirstContactExt(
            release=release, hostname=b"peer".ljust(32),
            v2x=clc.FirstContactExtV2x(feature_mask=1) if release else None)
    return clc.encode(clc.Confirm(
        version=2, typev2=2 if first else 0, gid=GID, token=draw(u64), dmbe_size=2,
        linkid=bytes([0, 2, 0, 0]), chid=0xFFFF, eid=UEID.encode().ljust(32), gid_ext=GID_EXT,
        first_contact_ext=fce))


def _proposal_of(cfg: HostConfig) -> bytes:
    r = step(cfg, client_init(), Connect())
    return next(e.data for e in r.effects if isinstance(e, SendClc))


good_proposals = st.sampled_from([_proposal_of(h) for h in (
    host_config(devices=(LO,), ueids=(UEID,)), host_config(devices=(LO,)),
    host_config(devices=(LO,), ueids=("OTHER", UEID)),
    host_config(devices=(loopback_device(7, 8),), ueids=(UEID,)))])


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A message from ``base`` with one corruption: a bit flip, a cut, a rewritten length,
    version or type byte, or trailing garbage."""
    data = bytearray(draw(base))
    how = draw(st.sampled_from(["flip", "truncate", "length", "version", "type", "extend"]))
    if how == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "length":
        data[5:7] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    elif how == "version":
        data[7] = (draw(st.integers(0, 15)) << 4) | (data[7] & 0xF)
    elif how == "type":
        data[4] = draw(st.integers(0, 6))
    else:
        data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def payloads(role: Role) -> st.SearchStrategy[bytes]:
    """What the peer of ``role`` may write: mostly what ``role`` expects, then anything."""
    good: st.SearchStrategy[bytes]
    if role is Role.CLIENT:
        good = st.one_of(good_accepts(), accept_confirms(clc.Accept))
    else:
        good = st.one_of(good_confirms(), good_confirms(), good_proposals, proposals(),
                         accept_confirms(clc.Confirm))
    return st.one_of(good, good, good, declines, mutated(good), mutated(valid_messages),
                     valid_messages, st.binary(max_size=40))


@st.composite
def peer_script(draw: st.DrawFn, role: Role) -> list[Event]:
    """A peer: some payloads, concatenated then cut into chunks, then a timeout or EOF."""
    choice = draw(st.integers(0, 9))  # explicit weights: one_of favours its first branches
    if choice < 5:
        first = draw(good_accepts() if role is Role.CLIENT else good_proposals)
    elif choice < 7 and role is Role.SERVER:
        first = draw(proposals())
    else:
        first = draw(payloads(role))
    stream = first + b"".join(draw(st.lists(payloads(role), max_size=2)))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=3)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    events: list[Event] = [RecvBytes(data=c) for c in chunks if c]
    events.append(draw(st.sampled_from([RecvTimeout(), RecvEof(), RecvTimeout()])))
    return events


answers = st.one_of(
    st.builds(lambda t, first: ("created", t, first), u64, st.booleans()),
    st.builds(lambda r: ("failed", r),
              st.sampled_from([DeclineCode.MEM, DeclineCode.ISMVLANERR, DeclineCode.SYNCERR])),
    st.builds(lambda e: ("buffail", e), st.sampled_from([Errno.ENOSPC, Errno.ENOMEM])),
)


def answer_for(req: RequestConn, drawn: tuple[object, ...]) -> Event:
    """An answer the request's policy allows (anything else is local misuse)."""
    kind = drawn[0]
    first = {LgrPolicy.CREATE_ONLY: True, LgrPolicy.REUSE_ONLY: False}.get(
        req.policy, bool(drawn[-1]) if kind == "created" else True)
    if kind == "created":
        token = drawn[1]
        assert isinstance(token, int)
        return ConnCreated(lgr_id=256, first_contact_local=first, dmb_token=token,
                           dmb_len=65536)
    if kind == "failed":
        reason = drawn[1]
        assert isinstance(reason, DeclineCode)
        return ConnCreateFailed(reason=reason)
    errno = drawn[1]
    assert isinstance(errno, Errno)
    return BufCreateFailed(lgr_id=256, first_contact_local=first, errno=errno)


def drive(cfg: HostConfig, state: HandshakeState, script: list[Event],
          data: st.DataObject) -> tuple[HandshakeState, list[object]]:
    """Feed the script; answer every lifecycle request at once with a drawn answer."""
    effects: list[object] = []
    pending: list[Event] = []
    for ev in script:
        pending.append(ev)
        while pending:
            e = pending.pop(0)
            result = step(cfg, state, e)
            if state.phase in TERMINAL_PHASES:
                assert result.effects == () and result.state.phase is state.phase
            state = result.state
            for eff in result.effects:
                effects.append(eff)
                if isinstance(eff, RequestConn):
                    # mostly success (explicit weight), else any answer
                    drawn = (("created", data.draw(u64), data.draw(st.booleans()))
                             if data.draw(st.integers(0, 3)) else data.draw(answers))
                    pending.insert(0, answer_for(eff, drawn))
                elif isinstance(eff, AttachPeerDmb):
                    pending.insert(0, AttachDone(errno=data.draw(
                        st.sampled_from([None, None, Errno.ENOMEM, Errno.EINVAL]))))
    return state, effects


def check_legal_end(state: HandshakeState, effects: list[object]) -> None:
    assert state.phase in TERMINAL_PHASES
    o = state.outcome
    assert o is not None
    event(f"{state.role.value}: {o.kind.value} {o.reason.name if o.reason else o.errno}")
    if o.kind is OutcomeKind.ERROR:
        assert o.errno is not None and o.reason is None
    elif o.kind is OutcomeKind.DECLINED:
        assert o.reason is not None and o.errno is None
    elif o.kind is OutcomeKind.FALLBACK:
        assert o.reason is DeclineCode.PEERNOSMC
    assert any(seq[: len(state.sent)] == state.sent for seq in SEND_SEQUENCES[state.role])
    if clc.ClcType.DECLINE in state.sent:
        assert o.kind is OutcomeKind.DECLINED and o.reason is not DeclineCode.PEERDECL
    if o.kind is not OutcomeKind.ACTIVE:
        # every connection registered was aborted: answers that registered one are
        # ConnCreated and BufCreateFailed; each is followed by exactly one ConnAbort
        assert state.conn is None
    sends = [e for e in effects if isinstance(e, SendClc)]
    assert tuple(e.msg_type for e in sends) == state.sent
    for e in sends:
        assert clc.decode(e.data).type is e.msg_type  # everything sent is a valid message


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

HOSTS = [LOOP, LOOP, LOOP, host_config(devices=(LO,)),
         host_config(devices=(loopback_device(GID, GID_EXT),
                              replace(loopback_device(1, 2), name="lo2", chid=0xFF00)),
                     ueids=(UEID, "OTHER")),
         host_config(), host_config(devices=(LO,), ueids=(UEID,), syn_smc=False)]


@given(cfg=st.sampled_from(HOSTS), script=peer_script(Role.CLIENT), data=st.data())
@example(cfg=LOOP, script=[RecvBytes(data=clc.encode(clc.Accept(
    version=3, typev2=2, gid=GID, chid=0xFFFF, linkid=bytes(4)))), RecvTimeout()],
    data=None)  # type: ignore[arg-type]
def test_handshake_client_ends_legally_on_any_peer_input(
        cfg: HostConfig, script: list[Event], data: st.DataObject) -> None:
    """Whatever a server sends (valid, mutated, reordered, split, or nothing) and whatever the
    lifecycle answers, the client never raises, ends in a terminal phase with an outcome that
    fits its kind, sent only Proposal/Confirm/Decline in a legal order, and leaves no
    connection registered unless ACTIVE."""
    if data is None:  # the explicit example: no lifecycle answer is needed
        state, effects = client_init(), []
        for ev in [Connect(), *script]:
            r = step(cfg, state, ev)
            state = r.state
            effects.extend(r.effects)
    else:
        state, effects = drive(cfg, client_init(), [Connect(), *script], data)
    check_legal_end(state, effects)


@given(cfg=st.sampled_from(HOSTS), script=peer_script(Role.SERVER), data=st.data())
def test_handshake_server_ends_legally_on_any_peer_input(
        cfg: HostConfig, script: list[Event], data: st.DataObject) -> None:
    """Whatever a client sends and whatever the lifecycle answers, the server never raises and
    ends legally: terminal phase, coherent outcome, only Accept then at most a Decline (or a
    lone Decline), no connection left registered after a failure."""
    state, effects = drive(cfg, server_init(), [ListenWork(), *script], data)
    check_legal_end(state, effects)


@given(split_at=st.lists(st.integers(1, 223), max_size=4),
       coalesce=st.booleans())
def test_handshake_pair_completes_however_tcp_segments_the_messages(
        split_at: list[int], coalesce: bool) -> None:
    """TCP may deliver a CLC message in pieces: the loopback pair still reaches ACTIVE on both
    sides with the same negotiated values, and every invariant holds."""
    def tamper(d: Delivery) -> tuple[bytes, ...]:
        cuts = sorted({c for c in split_at if c < len(d.data)})
        pieces = [d.data[a:b] for a, b in zip([0, *cuts], [*cuts, len(d.data)], strict=True)]
        return (d.data,) if coalesce else tuple(pieces)

    r = run_back_to_back(LOOP, LOOP, tamper=tamper)
    assert (r.state.client.phase, r.state.server.phase) == (Phase.ACTIVE, Phase.ACTIVE)
    assert violated(INVARIANTS, PairConfig(client=LOOP, server=LOOP), r.state) == ()


SUCCESS_PAIRS: list[tuple[HostConfig, HostConfig, dict[str, object]]] = [
    (LOOP, LOOP, {}),
    (host_config(devices=(LO,), ueids=("A", UEID)), host_config(devices=(LO,), ueids=(UEID,)),
     {}),
]


@pytest.mark.parametrize(("client", "server", "kw"), SUCCESS_PAIRS)
def test_handshake_pair_completes_success_configurations(
        client: HostConfig, server: HostConfig, kw: dict[str, object]) -> None:
    """Back to back, every success configuration ends ACTIVE on both sides, invariants hold."""
    r = run_back_to_back(client, server, **kw)  # type: ignore[arg-type]
    assert (r.state.client.phase, r.state.server.phase) == (Phase.ACTIVE, Phase.ACTIVE)
    assert violated(INVARIANTS, PairConfig(client=client, server=server), r.state) == ()


#: the invariants that compare the two sides' views; a corrupted field the kernel does not
#: validate (a GID, a token, a DMB size) breaks them while both sides go ACTIVE
AGREEMENT: frozenset[str] = frozenset({
    "active sides agree on the CLC version", "active sides agree on the device",
    "active sides agree on first contact", "active sides know each other's DMB",
})


@given(drop=st.sets(st.tuples(st.sampled_from(list(Role)), st.integers(0, 2))),
       flip=st.one_of(st.none(), st.tuples(st.sampled_from(list(Role)), st.integers(0, 2),
                                           st.integers(0, 223), st.integers(0, 7))),
       server_env=st.sampled_from([SideEnv(), SideEnv(dmb_errno=Errno.ENOSPC),
                                   SideEnv(attach_errno=Errno.EINVAL),
                                   SideEnv(conn_fail=DeclineCode.MEM)]),
       client_env=st.sampled_from([SideEnv(), SideEnv(dmb_errno=Errno.ENOMEM),
                                   SideEnv(attach_errno=Errno.ENOMEM)]))
@example(drop=set(), flip=(Role.SERVER, 0, 8, 0), server_env=SideEnv(),
         client_env=SideEnv())  # thorough-profile find: a flipped Accept GID is accepted
def test_handshake_pair_invariants_hold_under_faults(
        drop: set[tuple[Role, int]], flip: tuple[Role, int, int, int] | None,
        server_env: SideEnv, client_env: SideEnv) -> None:
    """With messages dropped and the lifecycle failing, the pair still ends (both sides
    terminal) and every named invariant holds; each registered connection is aborted unless
    its side is ACTIVE. A corrupted bit may additionally break only the agreement invariants
    (the kernel does not check the Accept/Confirm GID, token or size), never the others."""
    flipped: list[bool] = []

    def tamper(d: Delivery) -> tuple[bytes, ...]:
        if (d.sender, d.index) in drop:
            return ()
        if flip is not None and (flip[0], flip[1]) == (d.sender, d.index) and flip[2] < len(
                d.data):
            b = bytearray(d.data)
            b[flip[2]] ^= 1 << flip[3]
            flipped.append(True)
            return (bytes(b),)
        return (d.data,)

    r = run_back_to_back(LOOP, LOOP, tamper=tamper, server_env=server_env,
                         client_env=client_env)
    assert r.state.client.phase in TERMINAL_PHASES
    assert r.state.server.phase in TERMINAL_PHASES
    broken = set(violated(INVARIANTS, PairConfig(client=LOOP, server=LOOP), r.state))
    assert broken <= (AGREEMENT if flipped else set())
    aborts = [e for _r, e in r.trace if isinstance(e, ConnAbort)]
    created = [e for _r, e in r.trace if isinstance(e, ConnCreated | BufCreateFailed)]
    active = sum(s.phase is Phase.ACTIVE for s in (r.state.client, r.state.server))
    assert len(created) == len(aborts) + active


def test_handshake_client_takes_a_corrupted_accept_gid_without_check() -> None:
    """A finding the fault search made: smc_connect_ism copies the Accept's d0.gid as peer GID
    and nothing compares it with what was proposed, so one flipped bit gives two ACTIVE sides
    that disagree on the device (the client's link group records a GID nobody has)."""
    def tamper(d: Delivery) -> tuple[bytes, ...]:
        if d.sender is Role.SERVER:
            return (d.data[:8] + bytes([d.data[8] ^ 1]) + d.data[9:],)
        return (d.data,)

    r = run_back_to_back(LOOP, LOOP, tamper=tamper)
    assert (r.state.client.phase, r.state.server.phase) == (Phase.ACTIVE, Phase.ACTIVE)
    assert violated(INVARIANTS, PairConfig(client=LOOP, server=LOOP), r.state) == (
        "active sides agree on the device",)
    assert r.lgrs[-1].peer_gid == GID ^ (1 << 56)


# --------------------------------------------------------------------------------------------
# Local misuse and the table
# --------------------------------------------------------------------------------------------


def test_handshake_connect_twice_is_forbidden_and_changes_nothing() -> None:
    state = step(LOOP, client_init(), Connect()).state
    with pytest.raises(ForbiddenHandshakeStep, match="Connect when role=client"):
        step(LOOP, state, Connect())
    assert state.phase is Phase.PROPOSAL_SENT


def test_handshake_unasked_answer_is_forbidden() -> None:
    with pytest.raises(ForbiddenHandshakeStep):
        step(LOOP, server_init(), ConnCreated(lgr_id=256, first_contact_local=True,
                                              dmb_token=1, dmb_len=65536))
    with pytest.raises(ForbiddenHandshakeStep):
        step(LOOP, client_init(), ListenWork())


def test_handshake_answer_against_the_policy_is_rejected() -> None:
    """A client whose peer announced first contact must get a new link group."""
    s = step(LOOP, client_init(), Connect()).state
    accept = run_back_to_back(LOOP, LOOP).trace
    acc = next(e.data for r, e in accept
               if isinstance(e, SendClc) and e.msg_type is clc.ClcType.ACCEPT)
    s = step(LOOP, s, RecvBytes(data=acc)).state
    with pytest.raises(InconsistentAnswer, match="first_contact_local=False"):
        step(LOOP, s, ConnCreated(lgr_id=256, first_contact_local=False, dmb_token=1,
                                  dmb_len=65536))
    with pytest.raises(InconsistentAnswer, match="DMB length"):
        step(LOOP, s, ConnCreated(lgr_id=256, first_contact_local=True, dmb_token=1,
                                  dmb_len=1000))


def test_handshake_table_names_every_phase_for_each_role() -> None:
    """Every (role, phase) the machines can be in has a row; terminal rows take only peer
    events and keep the phase."""
    for (_role, phase), row in TRANSITIONS.items():
        if phase in TERMINAL_PHASES:
            assert set(row) == {RecvBytes, RecvTimeout, RecvEof}
            assert all(targets == {phase} for targets in row.values())
    for role in Role:
        assert (role, Phase.ACTIVE) in TRANSITIONS
    assert (Role.CLIENT, Phase.INIT) in TRANSITIONS and (Role.SERVER, Phase.LISTEN) in TRANSITIONS


def test_handshake_invariants_name_the_clause_that_breaks() -> None:
    """Each invariant is falsifiable: a pair edited to disagree is reported by name."""
    good = run_back_to_back(LOOP, LOOP).state
    cfg = PairConfig(client=LOOP, server=LOOP)
    assert violated(INVARIANTS, cfg, good) == ()
    c, s = good.client, good.server
    assert c.session is not None and s.session is not None

    def with_client(**kw: object) -> tuple[str, ...]:
        return violated(INVARIANTS, cfg, replace(good, client=replace(c, **kw)))

    def with_session(**kw: object) -> tuple[str, ...]:
        return with_client(session=replace(c.session, **kw))

    assert with_session(version=1) == ("active sides agree on the CLC version",)
    assert with_session(peer_gid_ext=0) == ("active sides agree on the device",)
    assert with_session(first_contact_local=False) == ("active sides agree on first contact",)
    assert with_session(peer_token=1) == ("active sides know each other's DMB",)
    assert with_client(phase=Phase.DECLINED, outcome=replace(
        c.outcome, kind=OutcomeKind.DECLINED)) == (
        "a failed handshake leaves no connection registered",
        "a side sends only the messages its role allows")
    assert with_client(sent=(clc.ClcType.CONFIRM,)) == (
        "a side sends only the messages its role allows",)
    assert with_client(phase=Phase.ACTIVE, outcome=None) == ("handshake states are well typed",)
    declined = replace(good, server=replace(
        s, sent=(clc.ClcType.ACCEPT, clc.ClcType.DECLINE)))
    assert violated(INVARIANTS, cfg, declined) == (
        "a side sends only the messages its role allows",
        "a side that sent a Decline has fallen back")
