"""Sequence charts of traces, drawn by the explorer's chart renderer (``explorer.msc``).

* An explorer trace is drawn exactly as ``explore --msc-out`` draws it: its system steps
  replayed on the spec, lifelines for client, server and loopback-ism, CLC and CDC arrows.
* A plan (adapter operations) is drawn on the same lifelines: the application's calls as boxes
  on the endpoint's lifeline (``a`` is the client, ``b`` the server) with the expected result,
  ``conn_step cdc`` / ``tasklet`` as the CDC leaving one end and arriving at the other, a
  socket-route ``conn_send``/``close``/``shutdown``/``abort`` as the CDC the call writes, device
  operations on the loopback-ism lifeline; the failing operation in red.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smcd_check.conformance.traces.plans import Plan
from smcd_check.conformance.traces.replay import TraceDoc

CLIENT, SERVER, DEVICE = "client (host A)", "server (host B)", "loopback-ism"


@dataclass(frozen=True, slots=True)
class _Ev:
    actor: str
    kind: str
    label: str
    peer: str = ""
    channel: str = ""


@dataclass(slots=True)
class _Path:
    actions: list[Any]
    states: list[Any]
    loop_start: int | None = None


class _PlanModel:
    """The chart hooks (``msc_actors``, ``msc_event``) for a plan's operations."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def msc_actors(self) -> list[str]:
        return [CLIENT, SERVER, DEVICE]

    def msc_event(self, s: Any, index: Any, t: Any) -> Any:
        st = self.plan.steps[index]
        op = st.op
        exp = self.plan.expects[index] if self.plan.expects else None
        result = "" if exp is None else (" -> " + (exp.error or "ok") if not exp.ok else
                                         _short_result(exp))
        conn = op.arg("conn") if "conn" in dict(op.args) else None
        side = getattr(conn, "key", None)
        me, peer = (CLIENT, SERVER) if side != "b" else (SERVER, CLIENT)
        chan = f"cdc-{'ab' if me == CLIENT else 'ba'}"
        back = f"cdc-{'ba' if me == CLIENT else 'ab'}"
        label = _describe(op) + result
        if op.name.startswith("dev_"):
            return _Ev(actor=DEVICE, kind="local", label=label)
        if op.name in ("conn_open", "conn_open_steps"):
            return _Ev(actor=CLIENT, kind="local", label=label)
        if op.name == "conn_step":
            kind = op.arg("step")
            if kind == "cdc" and exp is not None and exp.ok:
                return _Ev(actor=me, kind="send", peer=peer, channel=chan, label="CDC")
            if kind == "tasklet" and exp is not None and exp.ok:
                return _Ev(actor=me, kind="recv", peer=peer, channel=back, label="tasklet")
            return _Ev(actor=me, kind="local", label=label)
        if self.plan.route == "socket" and op.name in ("conn_send", "conn_close",
                                                        "conn_shutdown", "conn_abort"):
            return (_Ev(actor=me, kind="local", label=label),
                    _Ev(actor=me, kind="send", peer=peer, channel=chan + "-sock",
                        label=f"CDC ({op.name[5:]})"),
                    _Ev(actor=peer, kind="recv", peer=me, channel=chan + "-sock", label=""))
        return _Ev(actor=me, kind="local", label=label)


def _describe(op: Any) -> str:
    args = dict(op.args)
    if op.name == "conn_send":
        return f"send {len(args['data']) // 2} B"
    if op.name == "conn_recv":
        return f"recv max {args['max']} B"
    if op.name == "conn_cursors":
        return "cursors"
    if op.name in ("conn_open", "conn_open_steps"):
        stepped = " (stepped)" if op.name == "conn_open_steps" else ""
        return f"open {args['mode']} pair, {args['dmb_size'] // 1024} KiB DMBs{stepped}"
    if op.name == "conn_step":
        return f"step {args['step']}"
    return op.describe().replace("conn_", "").replace("dev_", "")


def _short_result(exp: Any) -> str:
    value = dict(exp.value or ())
    if "n" in value:
        return f" -> n={value['n']}"
    if "data" in value and "eof" in value:
        return f" -> {len(value['data']) // 2} B"
    if "prod" in value:
        return (f" prod={tuple(value['prod'])} space={value.get('sndbuf_space')} "
                f"rcv={value.get('bytes_to_rcv')}")
    return ""


def plan_svg(trace: TraceDoc, plan: Plan, *, failing: int | None = None,
             message: str | None = None) -> str:
    """A plan as a chart; ``failing`` (an operation index) ends the chart in red there."""
    from smcd_check.explorer.msc import render_svg

    n = len(plan.steps) if failing is None else failing + 1
    path = _Path(actions=list(range(n)), states=[None] * (n + 1))
    title = f"trace {trace.name}: {plan.lens}/{plan.route} ({trace.property_name})"
    return render_svg(_PlanModel(plan), path, title=title,
                      violation=message if failing is not None else None)


def system_svg(trace: TraceDoc) -> str | None:
    """An explorer trace's system steps as ``explore --msc-out`` draws them (None for other
    kinds)."""
    if trace.explorer is None:
        return None
    from smcd_check.explorer.msc import render_svg
    from smcd_check.explorer.trace import build_model, replay_trace

    ex = trace.explorer
    model = build_model(ex.model, ex.config, ex.fault)
    res = replay_trace(ex, model=model)
    path = _Path(actions=res.actions, states=res.states, loop_start=ex.loop_start)
    title = f"trace {trace.name}: config {ex.config}" + (f", fault {ex.fault}" if ex.fault
                                                          else "")
    return render_svg(model, path, title=title, violation=ex.property_name)


def chart_svg(trace: TraceDoc) -> str:
    """The chart saved beside a corpus entry: the system chart of an explorer trace, else the
    first plan's."""
    svg = system_svg(trace)
    if svg is not None:
        return svg
    if not trace.plans:
        return plan_svg(trace, Plan(lens="none", route="none", needs=frozenset(),
                                    required=False, steps=[]))
    return plan_svg(trace, trace.plans[0])


def text_chart(plan: Plan, failing: int | None = None) -> list[str]:
    """The plan as text lines (for terminals and pytest failure reports)."""
    lines = []
    for i, st in enumerate(plan.steps):
        exp = plan.expects[i] if plan.expects else None
        side = getattr(dict(st.op.args).get("conn"), "key", "")
        who = {"a": "client", "b": "server"}.get(side, "device" if st.op.name.startswith("dev_")
                                                 else "")
        mark = ">>" if i == failing else "  "
        result = exp.describe() if exp is not None else ""
        lines.append(f"{mark}{i:3} {who:7} {st.op.describe()[:70]:70} expect {result[:60]}")
    return lines
