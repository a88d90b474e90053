"""Catalogue area ``lifecycle``: loopback-ism DMBs from register to release (capability ``device``).

The device operations of net/smc/smc_loopback.c (6.12.118, the v6.11+ "nocopy" device):
``smc_lo_register_dmb`` (lowest free slot, unique token, zeroed memory), ``smc_lo_unregister_dmb``
/ ``smc_lo_detach_dmb`` (drop a reference, free at zero), ``smc_lo_attach_dmb`` (a reference for
the peer's ghost sndbuf) and ``smc_lo_move_data`` (sf = 0 is a no-op, sf = 1 looks up, checks
bounds, copies, signals or -EPIPE). Expected observations come from the spec
(:mod:`smcd_check.spec.lifecycle` through :mod:`.spec_device`); the steps that show a kernel
errno or slot number pin it, citing the function. Tokens are compared symbolically (they are
random in the kernel), so a target that hands out the same token twice fails too.
"""

from __future__ import annotations

from smcd_check.conformance.runner.run import Area, Case, Pin, Step, step
from smcd_check.conformance.targets.adapter import Ref

D = 16384  # the smallest SMC-D DMB
LO = "net/smc/smc_loopback.c"
UNKNOWN = 0xDEAD_BEEF_0BAD_F00D  # a token no device handed out (tokens are random u64)


def tok(name: str) -> Ref:
    return Ref(name, "token")


def reg(name: str, size: int = D) -> Step:
    return step("dev_register_dmb", size=size, bind=name)


def pin(index: int, error: str | None, fn: str, **value: object) -> Pin:
    return Pin(index=index, error=error, value=tuple(value.items()), source=f"{LO} {fn}")


def case(cid: str, title: str, description: str, fn: str, steps: list[Step],
         pins: tuple[Pin, ...] = (), rules: tuple[str, ...] = ()) -> Case:
    return Case(id=f"lifecycle.{cid}", area=Area.LIFECYCLE, title=title,
                description=description, source=f"{LO} {fn}", steps=tuple(steps), pins=pins,
                rules=rules or (fn,))


_REG, _UNREG, _ATT = "smc_lo_register_dmb", "smc_lo_unregister_dmb", "smc_lo_attach_dmb"
_DET, _MOVE = "smc_lo_detach_dmb", "smc_lo_move_data"

CASES: tuple[Case, ...] = (
    case("dmb.register", "register gives slot 0 and the requested length",
         "The first DMB takes the lowest free slot.", _REG, [reg("d1")],
         (pin(0, None, _REG, sba_idx=0, len=D),)),
    case("dmb.register-1mib", "a 1 MiB DMB (the largest SMC-D size) registers",
         "SMCD_DMBE_SIZES = 6: 16 KiB << 6.", _REG, [reg("d1", 16384 << 6)],
         (pin(0, None, _REG, len=16384 << 6),)),
    case("dmb.register-zeroed", "a new DMB reads as zeros", "Memory is allocated zeroed.",
         _REG, [reg("d1"), step("dev_read_dmb", token=tok("d1"), offset=0, size=64)]),
    case("dmb.tokens-distinct", "two DMBs get distinct tokens and slots 0, 1",
         "Tokens are unique in the device table; slots are taken lowest first.", _REG,
         [reg("d1"), reg("d2"), step("dev_attach_dmb", token=tok("d2")),
          step("dev_attach_dmb", token=tok("d1"))],
         (pin(1, None, _REG, sba_idx=1),), rules=(_REG, "tokens unique")),
    case("dmb.lowest-free-slot", "a freed slot is reused first",
         "After the DMB in slot 1 is released, the next DMB gets slot 1 again.", _REG,
         [reg("d1"), reg("d2"), reg("d3"), step("dev_unregister_dmb", token=tok("d2")),
          reg("d4")], (pin(4, None, _REG, sba_idx=1),)),
    case("dmb.unregister-unknown", "unregister of an unknown token is -EINVAL",
         "The hash-table lookup fails.", _UNREG,
         [step("dev_unregister_dmb", token=UNKNOWN, strict=True)], (pin(0, "EINVAL", _UNREG),)),
    case("dmb.unregister-twice", "a second unregister (refcount was 1) is -EINVAL",
         "The first unregister released the node; its token is gone.", _UNREG,
         [reg("d1"), step("dev_unregister_dmb", token=tok("d1")),
          step("dev_unregister_dmb", token=tok("d1"), strict=True)],
         (pin(2, "EINVAL", _UNREG),)),
    case("dmb.released-memory-gone", "after release the token no longer resolves",
         "Reads and moves on a released token fail (-EINVAL).", _UNREG,
         [reg("d1"), step("dev_unregister_dmb", token=tok("d1")),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=8),
          step("dev_move_data", token=tok("d1"), offset=0, data="11" * 8, signal=True,
               strict=True)], (pin(3, "EINVAL", _MOVE),)),
    case("attach.unknown", "attach of an unknown token is -EINVAL", "Lookup fails.", _ATT,
         [step("dev_attach_dmb", token=UNKNOWN, strict=True)], (pin(0, "EINVAL", _ATT),)),
    case("attach.same-memory", "an attached DMB is the same memory",
         "attach_dmb returns the node's token, slot and length (the ghost sndbuf).", _ATT,
         [reg("d1"), step("dev_attach_dmb", token=tok("d1"), bind="g1")],
         (pin(1, None, _ATT, sba_idx=0, len=D),)),
    case("attach.outlives-owner", "an attached peer keeps the DMB after the owner unregisters",
         "Refcounted nodes (v6.11+): after the owner's unregister the token still resolves, "
         "move_data still copies and the slot stays taken; only the detach frees it. The "
         "use-after-free class fixed by the nocopy refcount.", _UNREG,
         [reg("d1"), step("dev_attach_dmb", token=tok("d1")),
          step("dev_unregister_dmb", token=tok("d1")),
          step("dev_move_data", token=tok("d1"), offset=32, data="ab" * 16, signal=True),
          step("dev_read_dmb", token=tok("d1"), offset=32, size=16),
          reg("d2"),
          step("dev_detach_dmb", token=tok("d1")),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=8),
          reg("d3")],
         (pin(3, "EPIPE", _MOVE), pin(5, None, _REG, sba_idx=1), pin(7, "EINVAL", _MOVE),
          pin(8, None, _REG, sba_idx=0)),
         rules=(_UNREG, _DET, "no use after release", "ghost outlives owner")),
    case("detach.owner-keeps", "a detach leaves the owner's reference",
         "attach + detach returns to refcount 1: the DMB stays registered.", _DET,
         [reg("d1"), step("dev_attach_dmb", token=tok("d1")),
          step("dev_detach_dmb", token=tok("d1")),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=8),
          step("dev_unregister_dmb", token=tok("d1")),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=8)],
         (pin(3, None, _DET), pin(5, "EINVAL", _UNREG))),
    case("detach.unknown", "detach of an unknown token is -EINVAL", "Lookup fails.", _DET,
         [step("dev_detach_dmb", token=UNKNOWN, strict=True)], (pin(0, "EINVAL", _DET),)),
    case("attach.two-peers", "two attaches need two detaches after the owner left",
         "Each reference is counted.", _ATT,
         [reg("d1"), step("dev_attach_dmb", token=tok("d1")),
          step("dev_attach_dmb", token=tok("d1")),
          step("dev_unregister_dmb", token=tok("d1")),
          step("dev_detach_dmb", token=tok("d1")),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=4),
          step("dev_detach_dmb", token=tok("d1")),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=4)],
         (pin(5, None, _DET), pin(7, "EINVAL", _DET))),
    # ------------------------------------------------------------------ move_data
    case("move.sf0-no-lookup", "move_data with sf = 0 succeeds without a lookup",
         "On a nocopy device the data is already in the peer DMB: return 0 at once, even for "
         "an unknown token.", _MOVE,
         [step("dev_move_data", token=UNKNOWN, offset=0, data="00" * 4, signal=False)],
         (pin(0, None, _MOVE),)),
    case("move.sf0-no-copy", "move_data with sf = 0 copies nothing",
         "The nocopy shortcut skips the memcpy.", _MOVE,
         [reg("d1"), step("dev_move_data", token=tok("d1"), offset=64, data="ff" * 8,
                          signal=False),
          step("dev_read_dmb", token=tok("d1"), offset=64, size=8)]),
    case("move.signal-copies", "move_data with sf = 1 copies, then -EPIPE without a connection",
         "No connection is set for the slot, so the signal fails after the copy.", _MOVE,
         [reg("d1"), step("dev_move_data", token=tok("d1"), offset=0, data="fe" + "00" * 31,
                          signal=True),
          step("dev_read_dmb", token=tok("d1"), offset=0, size=32)],
         (pin(1, "EPIPE", _MOVE),)),
    case("move.unknown-token", "move_data with sf = 1 on an unknown token is -EINVAL",
         "Lookup fails before anything is copied.", _MOVE,
         [step("dev_move_data", token=UNKNOWN, offset=0, data="00", signal=True, strict=True)],
         (pin(0, "EINVAL", _MOVE),)),
    case("move.bounds-last-byte", "a move ending exactly at the DMB end is in bounds",
         "offset + size == len is allowed.", _MOVE,
         [reg("d1"), step("dev_move_data", token=tok("d1"), offset=D - 4, data="01020304",
                          signal=True),
          step("dev_read_dmb", token=tok("d1"), offset=D - 4, size=4)],
         (pin(1, "EPIPE", _MOVE),)),
    case("move.bounds-past-end", "a move past the DMB end is -EINVAL and copies nothing",
         "6.12.97 backport of 'dibs: loopback: validate offset and size in move_data()'.",
         _MOVE,
         [reg("d1"), step("dev_move_data", token=tok("d1"), offset=D - 4, data="aa" * 8,
                          signal=True, strict=True),
          step("dev_read_dmb", token=tok("d1"), offset=D - 4, size=4)],
         (pin(1, "EINVAL", _MOVE),), rules=(_MOVE, "move_data bounds")),
    case("move.bounds-offset-past-end", "an offset beyond the DMB is -EINVAL",
         "Even a 1-byte move at offset len is out of bounds.", _MOVE,
         [reg("d1"), step("dev_move_data", token=tok("d1"), offset=D, data="aa", signal=True,
                          strict=True)],
         (pin(1, "EINVAL", _MOVE),), rules=(_MOVE, "move_data bounds")),
)


# --- link-group choice (capability link-group, issue 17): smc_conn_create / smcd_lgr_match
_CORE = "net/smc/smc_core.c smc_conn_create, smcd_lgr_match"


def _lgr(role: str, gid: int, ext: int = 0, *, peer_first: bool = False,
         strict: bool = False) -> Step:
    return step("lgr_conn_create", role=role, peer_gid=gid, peer_gid_ext=ext, vlan=0,
                first_contact_peer=peer_first, strict=strict)


def _lgr_case(cid: str, title: str, description: str, steps: list[Step],
              pins: tuple[Pin, ...] = ()) -> Case:
    return Case(id=f"lifecycle.lgr.{cid}", area=Area.LIFECYCLE, title=title,
                description=description, source=_CORE, steps=tuple(steps), pins=pins,
                rules=("smcd_lgr_match", "a link group is reused only for its own peer"))


def _first(index: int, first: bool) -> Pin:
    return Pin(index=index, error=None, value=(("first_contact", first),), source=_CORE)


LGR_CASES: tuple[Case, ...] = (
    _lgr_case("same-peer-reuses", "a second connection to the same peer joins its link group",
              "smcd_lgr_match: same peer GID (and gid_ext on a virtual device), same device.",
              [_lgr("server", 2), _lgr("server", 2)], (_first(0, True), _first(1, False))),
    _lgr_case("other-peer-new", "a connection to another peer gets a link group of its own",
              "The v6.8 precedence bug (b40584d14570, fixed by c3dfcdb65ec1) made any link "
              "group match a peer with another GID.",
              [_lgr("server", 2), _lgr("server", 3), _lgr("server", 2)],
              (_first(1, True), _first(2, False))),
    _lgr_case("gid-ext-counts", "on a virtual device a different gid_ext is another peer",
              "loopback-ism GIDs are 128 bits: smcd_lgr_match compares gid_ext too.",
              [_lgr("server", 2, 7), _lgr("server", 2, 8)], (_first(1, True),)),
    _lgr_case("role-ignored", "a client joins the link group its host's server side made",
              "smcd_lgr_match does not compare the role (seen on Linux 6.12.118).",
              [_lgr("server", 2), _lgr("client", 2)], (_first(1, False),)),
    _lgr_case("client-syncerr", "a client told 'reuse' without a link group is refused",
              "smc_conn_create: no match for a client without first contact from its peer is "
              "SMC_CLC_DECL_SYNCERR.", [_lgr("client", 5, strict=True)],
              (Pin(index=0, error="ENOENT", source=_CORE),)),
)
CASES = CASES + LGR_CASES
