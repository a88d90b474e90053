"""Spec-target backend for SMC-D connections (``conn-copy``, ``conn-merged``).

Theory of operation
-------------------
:mod:`smcd_check.spec.datapath` specifies *one direction* of a connection (writer A -> reader
B's DMB) with its internal steps (move data, write the CDC, receive it, window update) as
separate actions. A connected pair at the socket API is two such directions, ``a->b`` and
``b->a``, and each socket call is one API-level action followed by a run of every enabled
internal action until none is left ("quiescence"): the kernel runs the moves and the CDC inside
``sendmsg`` and the receiver's tasklet right after, so a non-blocking caller sees the quiescent
state. The mapping (kernel function on the left):

* ``conn_send(x, data)`` (``smc_tx_sendmsg``): repeat ``WriterAppWrite(n)`` with ``n =
  min(rest, write_space)`` in x's writing direction, quiescing after each chunk, until the data
  is in or no space is left; the result is the number of bytes accepted (0 = no room now).
* ``conn_recv(x, max)`` (``smc_rx_recvmsg``): ``ReaderRead(min(max, bytes_to_rcv))`` in x's
  reading direction, then quiesce. The spec's rings carry byte *tags*, not bytes; the returned
  bytes are the stream slice the spec delivered (its ``delivered in order`` invariant guarantees
  they are exactly the next bytes written). ``eof`` = nothing left and a close/abort flag from
  the peer (or our own close).
* ``conn_shutdown`` = ``WriterShutdownWrite``; ``conn_close`` = ``WriterClose`` (own writing
  direction) + ``ReaderClose`` (own reading direction, which sends an abort when unread data
  remains, ``smc_close_final``); ``conn_abort`` = ``WriterAbort`` + ``ReaderAbort``. Which of
  these calls succeed, and with what errno, is the socket close state machine's answer
  (:mod:`smcd_check.spec.close`, ``smc_shutdown`` and net/smc/smc_close.c), kept per pair next
  to the two directions: e.g. a second ``shutdown(SHUT_WR)`` once both sides shut down is
  ENOTCONN (the clcsock is in TCP_CLOSE), and any shutdown after the peer aborted is ENOTCONN.
* ``conn_cursors`` reads the kernel view: ``prod`` = ``local_tx_ctrl.prod`` and ``sndbuf_space``,
  ``peer_rmbe_space``, ``peer_cons`` (= ``local_rx_ctrl.cons``) from the writing direction;
  ``cons`` (= ``local_tx_ctrl.cons``), ``peer_prod`` (= ``local_rx_ctrl.prod``) and
  ``bytes_to_rcv`` from the reading direction. ``bytes_to_rcv`` and ``sndbuf_space`` are what
  ``SIOCINQ`` and ``SIOCOUTQ`` show, so on a socket in SMC_CLOSED they read 0 and the whole
  sndbuf (``smc_ioctl``).

Socket-level errors (the kernel's errno for a step the protocol does not allow): sending after
our own shutdown/close/abort or after the peer aborted (``sk_err``) -> ``EPIPE``; after the peer
closed -> ``ECONNRESET`` (``smc_tx_sendmsg``); any call on a handle we closed -> ``EBADF``, on a
handle we aborted -> ``ECONNABORTED`` (POSIX socket semantics, outside the protocol spec).

Outside the spec (answered ``ENOTMODELLED``, never compared; the lockstep test avoids these
calls and the catalogue does not make them): a shutdown whose CDC would also carry an
unconfirmed consumer cursor of the other direction, a close or shutdown while prepared data is
not yet moved (the spec models ``smc_close_stream_wait`` as "wait until moved", the linger timeout
is not modelled). Data in both directions at once is also
outside this backend: a kernel CDC carries both cursors, the spec's directions are independent
here. A pair opened with ``conn_open_urg`` (capability ``urgent``) has both directions and urgent
data in one :mod:`smcd_check.spec.duplex` state instead (:mod:`.spec_urgent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smcd_check.conformance.targets.adapter import Capability, Observation, Op

#: the SMC-D DMB sizes (smc_compress_bufsize): 16 KiB << k, k = 0..6
DMB_SIZES = tuple(16384 << k for k in range(7))
#: sizeof(struct smcd_cdc_msg): the head of every DMB
CDC_LEN = 32
NOT_MODELLED = "ENOTMODELLED"


@dataclass(slots=True)
class _Dir:
    cfg: Any
    state: Any
    stream: bytearray = field(default_factory=bytearray)  # bytes accepted by the writer
    consumed: int = 0  # bytes returned to the reader


@dataclass(slots=True)
class _Pair:
    ab: _Dir
    ba: _Dir
    handles: dict[str, str]  # "a"/"b" -> "open" | "closed" | "aborted"
    #: the socket close state machine of the two endpoints (spec/close.py)
    sock: Any = None
    #: opened with conn_open_steps: no internal step runs unless conn_step asks for it
    stepped: bool = False


class ConnBackend:
    """Connection operations on two :mod:`smcd_check.spec.datapath` directions per pair."""

    capabilities = frozenset({Capability.CONN_COPY, Capability.CONN_MERGED,
                              Capability.CONN_STEPS})
    ops = frozenset({"conn_open", "conn_send", "conn_recv", "conn_shutdown", "conn_close",
                     "conn_abort", "conn_cursors", "conn_open_steps", "conn_step"})

    def __init__(self) -> None:
        from smcd_check.spec import close, cursor, datapath

        self.dp = datapath
        self.sc = close
        self.cursor = cursor
        self.pairs: dict[int, _Pair] = {}

    def reset(self) -> None:
        self.pairs = {}

    # ------------------------------------------------------------------ helpers

    def _config(self, mode: str, ring: int, sndbuf: int | None) -> Any:
        dp = self.dp
        return dp.DatapathConfig(
            mode=dp.Mode.COPY if mode == "copy" else dp.Mode.MERGED,
            ring_size=ring,
            sndbuf_size=sndbuf if mode == "copy" else None,
            max_chunk=1 << 21,
            max_read=None,
            wrap_bits=16,
            chan_cap=1 << 16,
            rmbe_update_limit=self.cursor.kernel_rmbe_update_limit(ring),
            close_enabled=True,
            abort_enabled=True,
            small_ok=False,
        )

    def _locate(self, conn: Any) -> tuple[_Pair, str] | Observation:
        if not isinstance(conn, int) or conn // 2 not in self.pairs:
            return Observation.failure("EBADF", f"unknown connection {conn!r}")
        return self.pairs[conn // 2], "a" if conn % 2 == 0 else "b"

    @staticmethod
    def _dirs(pair: _Pair, side: str) -> tuple[_Dir, _Dir]:
        """(the direction this side writes, the direction this side reads)."""
        return (pair.ab, pair.ba) if side == "a" else (pair.ba, pair.ab)

    def _quiesce(self, pair: _Pair) -> None:
        if pair.stepped:
            return  # a stepped pair runs its internal steps only through conn_step
        dp = self.dp
        internal = (dp.WriterMoveData(), dp.WriterSendCdc(), dp.ReaderRecvCdc(),
                    dp.ReaderSendConsUpdate(), dp.WriterRecvCdc())
        changed = True
        while changed:
            changed = False
            for d in (pair.ab, pair.ba):
                for action in internal:
                    while dp.action_enabled(d.cfg, d.state, action):
                        d.state = dp.step(d.cfg, d.state, action)
                        changed = True

    @staticmethod
    def _handle_error(pair: _Pair, side: str) -> Observation | None:
        status = pair.handles[side]
        if status == "closed":
            return Observation.failure("EBADF", "the endpoint was closed")
        if status == "aborted":
            return Observation.failure("ECONNABORTED", "the endpoint was aborted")
        return None

    # ------------------------------------------------------------------ operations

    def apply(self, op: Op) -> Observation:
        a = op.kwargs()
        if op.name in ("conn_open", "conn_open_steps"):
            return self._open(a["mode"], a["dmb_size"], a["sndbuf_size"],
                              stepped=op.name == "conn_open_steps")
        found = self._locate(a["conn"])
        if isinstance(found, Observation):
            return found
        pair, side = found
        if op.name == "conn_cursors":
            return self._cursors(pair, side)
        if op.name == "conn_step":  # internal: runs whatever the socket handle's state
            return self._step(pair, side, a["step"])
        err = self._handle_error(pair, side)
        if err is not None:
            return err
        handler = {"conn_send": self._send, "conn_recv": self._recv,
                   "conn_shutdown": self._shutdown, "conn_close": self._close,
                   "conn_abort": self._abort}[op.name]
        extra = a.get("data", a.get("max"))
        result: Observation = handler(pair, side, extra)
        return result

    def _open(self, mode: Any, dmb_size: Any, sndbuf_size: Any, *,
              stepped: bool = False) -> Observation:
        if mode not in ("copy", "merged"):
            return Observation.failure("EINVAL", f"mode={mode!r}: expected 'copy' or 'merged'")
        if dmb_size not in DMB_SIZES:
            return Observation.failure("EINVAL", f"dmb_size={dmb_size!r} is not an SMC-D size")
        if mode == "copy" and sndbuf_size not in DMB_SIZES:
            return Observation.failure("EINVAL", f"sndbuf_size={sndbuf_size!r} invalid")
        cfg = self._config(mode, dmb_size - CDC_LEN, sndbuf_size)
        pid = len(self.pairs) + 1
        self.pairs[pid] = _Pair(
            ab=_Dir(cfg, self.dp.initial_state(cfg)),
            ba=_Dir(cfg, self.dp.initial_state(cfg)),
            handles={"a": "open", "b": "open"},
            sock=self.sc.ClosePair(),
            stepped=stepped,
        )
        return Observation.success({"a": 2 * pid, "b": 2 * pid + 1})

    def _step(self, pair: _Pair, side: str, kind: Any) -> Observation:
        """``conn_step`` on a stepped pair: the internal actions of this endpoint's two
        directions (it writes one and reads the other)."""
        dp = self.dp
        if not pair.stepped:
            return Observation.failure("EINVAL", "conn_step: the pair was not opened with "
                                                 "conn_open_steps")
        w, r = self._dirs(pair, side)
        if kind == "move":
            actions = [(w, dp.WriterMoveData())]
        elif kind == "cdc":  # one kernel CDC carries both: the data CDC and the window update
            actions = [(w, dp.WriterSendCdc()), (r, dp.ReaderSendConsUpdate())]
        elif kind == "tasklet":
            # the CDC in our DMB: one header slot, so every CDC written since the last run
            # coalesces into the newest (cursors are absolute, flags sticky): all are processed
            actions = [(r, dp.ReaderRecvCdc()), (w, dp.WriterRecvCdc())]
        else:
            return Observation.failure("EINVAL", f"step={kind!r}: expected 'move', 'cdc' or "
                                                 "'tasklet'")
        done = progressed = False
        while not done or (progressed and kind == "tasklet"):
            progressed = False
            for d, action in actions:
                if dp.action_enabled(d.cfg, d.state, action):
                    d.state = dp.step(d.cfg, d.state, action)
                    done = progressed = True
            if not progressed:
                break
        if not done:
            return Observation.failure("EAGAIN", f"conn_step {kind}: nothing to do now")
        return Observation.success({})

    def _send(self, pair: _Pair, side: str, data: Any) -> Observation:
        dp = self.dp
        try:
            raw = bytes.fromhex(data)
        except (TypeError, ValueError):
            return Observation.failure("EINVAL", "data: expected a hex string")
        w, _ = self._dirs(pair, side)
        s = w.state
        if s.w_flags.any_close_or_senddone or s.w_rx_flags.peer_conn_abort:
            return Observation.failure("EPIPE", "shut down, closed, or the peer aborted")
        if s.w_rx_flags.any_close:
            return Observation.failure("ECONNRESET", "the peer closed the connection")
        done = 0
        while done < len(raw):
            n = min(len(raw) - done, dp.write_space(w.cfg, w.state), w.cfg.max_chunk)
            if n <= 0:
                break
            w.state = dp.step(w.cfg, w.state, dp.WriterAppWrite(n=n))
            w.stream += raw[done:done + n]
            done += n
            self._quiesce(pair)
        return Observation.success({"n": done})

    def _recv(self, pair: _Pair, side: str, max_: Any) -> Observation:
        dp = self.dp
        if not isinstance(max_, int) or max_ < 0:
            return Observation.failure("EINVAL", f"max={max_!r}: expected an int >= 0")
        _, r = self._dirs(pair, side)
        n = min(max_, r.state.bytes_to_rcv)
        if n > 0:
            r.state = dp.step(r.cfg, r.state, dp.ReaderRead(n=n))
            data = bytes(r.stream[r.consumed:r.consumed + n])
            r.consumed += n
            self._quiesce(pair)
        else:
            data = b""
        s = r.state
        eof = s.bytes_to_rcv == 0 and (s.r_rx_flags.any_close_or_senddone)
        return Observation.success({"data": data.hex(), "eof": bool(eof)})

    def _shutdown(self, pair: _Pair, side: str, _: Any) -> Observation:
        dp, sc = self.dp, self.sc
        w, r = self._dirs(pair, side)
        ep = pair.sock.get(side)
        sends_cdc = ep.sk_state in (sc.SmcState.ACTIVE, sc.SmcState.APPCLOSEWAIT1)
        if sends_cdc and dp.to_send(w.cfg, w.state) > 0:
            return Observation.failure(NOT_MODELLED, "shutdown with data not yet moved")
        if sends_cdc and r.state.r_cons != r.state.rx_curs_confirmed:
            # the kernel's shutdown CDC also carries our unconfirmed consumer cursor for the
            # other direction: a cross-direction effect the one-direction spec does not have
            return Observation.failure(NOT_MODELLED, "shutdown would piggy-back an "
                                                     "unconfirmed consumer cursor")
        res = sc.shutdown(pair.sock, side, sc.How.SHUT_WR)
        pair.sock = res.pair
        if sends_cdc and dp.action_enabled(w.cfg, w.state, dp.WriterShutdownWrite()):
            w.state = dp.step(w.cfg, w.state, dp.WriterShutdownWrite())
            self._quiesce(pair)
        if res.errno:
            return Observation.failure(res.errno, "smc_shutdown: " + (
                "the socket is not connected (sk_state "
                f"{ep.sk_state.name})" if ep.sk_state not in sc.SHUTDOWN_STATES
                else "the TCP connection under it is closed (both sides shut down)"))
        return Observation.success({})

    def _close(self, pair: _Pair, side: str, _: Any) -> Observation:
        dp = self.dp
        w, r = self._dirs(pair, side)
        if dp.to_send(w.cfg, w.state) > 0 and not w.state.w_rx_flags.peer_conn_abort:
            return Observation.failure(NOT_MODELLED, "close with data not yet moved (linger)")
        if dp.action_enabled(w.cfg, w.state, dp.WriterClose()):
            w.state = dp.step(w.cfg, w.state, dp.WriterClose())
        unread = r.state.bytes_to_rcv > 0
        if dp.action_enabled(r.cfg, r.state, dp.ReaderClose()):
            r.state = dp.step(r.cfg, r.state, dp.ReaderClose())
        pair.sock = self.sc.close(pair.sock, side, unread=unread)  # type: ignore[arg-type]
        pair.handles[side] = "closed"
        self._quiesce(pair)
        return Observation.success({})

    def _abort(self, pair: _Pair, side: str, _: Any) -> Observation:
        dp = self.dp
        w, r = self._dirs(pair, side)
        if dp.action_enabled(w.cfg, w.state, dp.WriterAbort()):
            w.state = dp.step(w.cfg, w.state, dp.WriterAbort())
        if dp.action_enabled(r.cfg, r.state, dp.ReaderAbort()):
            r.state = dp.step(r.cfg, r.state, dp.ReaderAbort())
        pair.sock = self.sc.abort(pair.sock, side)  # type: ignore[arg-type]
        pair.handles[side] = "aborted"
        self._quiesce(pair)
        return Observation.success({})

    def _cursors(self, pair: _Pair, side: str) -> Observation:
        w, r = self._dirs(pair, side)
        ws, rs = w.state, r.state

        def c(cur: Any) -> list[int]:
            return [cur.wrap, cur.count]

        sndbuf_space, bytes_to_rcv = ws.sndbuf_space, rs.bytes_to_rcv
        if pair.sock.get(side).sk_state is self.sc.SmcState.CLOSED:
            # smc_ioctl answers SIOCINQ and SIOCOUTQ with 0 once the socket is SMC_CLOSED (the
            # peer's abort closes a socket that had shut down), whatever the connection holds
            sndbuf_space = self.dp.initial_state(w.cfg).sndbuf_space
            bytes_to_rcv = 0
        return Observation.success({
            "prod": c(ws.w_prod),
            "peer_cons": c(ws.w_rx_cons),
            "sndbuf_space": sndbuf_space,
            "peer_rmbe_space": ws.peer_rmbe_space,
            "cons": c(rs.r_cons),
            "peer_prod": c(rs.r_rx_prod),
            "bytes_to_rcv": bytes_to_rcv,
        })
