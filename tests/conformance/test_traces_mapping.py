"""From explorer traces to adapter operations (issue 17): every system action kind has a row,
each explorer fault's counterexample fails on the mutant with the same bug and passes on the
model and the spec, the socket route says which interleavings it cannot force, an unknown action
kind is UNSUPPORTED by name, and stepped pairs behave alike on the spec and the model."""

from __future__ import annotations

from typing import Any

import pytest

from smcd_check.conformance.runner.run import Area, Case, ExpectationCache, Verdict, run_case, step
from smcd_check.conformance.targets.adapter import Capability, Ref
from smcd_check.conformance.targets.load import load_target
from smcd_check.conformance.targets.model_target import ModelTarget
from smcd_check.conformance.targets.spec_target import SpecTarget
from smcd_check.conformance.traces import mapping
from smcd_check.conformance.traces.corpus import FAULT_MUTANTS
from smcd_check.conformance.traces.document import with_plans
from smcd_check.conformance.traces.replay import load, replay
from smcd_check.explorer.engine import Explorer
from smcd_check.explorer.trace import trace_document
from smcd_check.spec import configs
from smcd_check.spec.duplex import DUPLEX_FAULTS
from smcd_check.spec.faults import Fault
from smcd_check.spec.system import ACTION_TYPES, LifeStep

_CACHE: dict[str, dict[str, Any]] = {}


def explorer_trace(fault: str) -> dict[str, Any]:
    """``explore --fault F --trace-out``'s document (cached per fault)."""
    if fault not in _CACHE:
        name = configs.FAULT_CONFIGS[Fault(fault)]
        model: Any = configs.build_system(name, fault)
        result = Explorer(model).bfs()
        assert result.violation is not None
        _CACHE[fault] = with_plans(trace_document(result.violation, model,
                                                  family="smcd-system", config=name,
                                                  fault=fault))
    return _CACHE[fault]


def test_every_action_kind_of_every_config_has_a_row() -> None:
    """The table covers every action a preset config can take, lifecycle kinds included."""
    from smcd_check.spec import lifecycle as lc

    kinds: set[str] = set()
    for name in configs.PRESETS:
        if configs.get_preset(name).config.duplex:
            continue  # deliberately unmapped: see the test below
        kinds |= set(configs.build_system(name).action_types())
    kinds |= {f"LifeStep.{t.__name__}" for t in (lc.LgrTerminate, lc.LgrTerminateWork,
                                                  lc.ConnAbort)}
    missing = sorted(kinds - set(mapping.ACTION_TABLE))
    assert not missing, missing
    assert {t.__name__ for t in ACTION_TYPES} <= {k.split(".")[0].split("(")[0]
                                                  for k in mapping.ACTION_TABLE}


#: faults of the full-duplex data path: their traces use actions the adapter has no operations
#: for yet (a second data direction, urgent data), so they have no zoo mutant either
DUPLEX_ONLY = {f.value for f in DUPLEX_FAULTS}
MAPPED = [f.value for f in Fault if f.value not in DUPLEX_ONLY]


@pytest.mark.parametrize("fault", sorted(DUPLEX_ONLY))
def test_a_duplex_fault_trace_is_unsupported_on_targets_never_a_false_ok(fault: str) -> None:
    """A full-duplex trace replays on the spec alone, and on a target the mapping says
    UNSUPPORTED, naming the unmapped action kinds (it never guesses an operation)."""
    trace = load(explorer_trace(fault), name=fault)
    out = replay(trace, load_target("spec"))
    assert out.verdict is Verdict.UNSUPPORTED, out.message
    assert "DataStep.AppSend" in out.message


@pytest.mark.parametrize("fault", MAPPED)
def test_the_faults_trace_fails_on_its_mutant_and_passes_on_model_and_spec(fault: str) -> None:
    """For each explorer fault: the shortest counterexample, run on targets through the
    mapping, fails on the zoo mutant with that bug class and agrees with the spec on the clean
    model and on the spec itself."""
    trace = load(explorer_trace(fault), name=fault)
    for spec, want in (("spec", Verdict.OK), ("model", Verdict.OK),
                       (f"zoo:{FAULT_MUTANTS[fault]}", Verdict.FAIL)):
        target = load_target(spec)
        out = replay(trace, target)
        assert out.verdict is want, (spec, out.message)
    assert "trace step" in replay(trace, load_target(f"zoo:{FAULT_MUTANTS[fault]}")).message


def test_every_fault_has_a_mutant_in_the_zoo() -> None:
    from smcd_check.conformance.targets.zoo import MUTANTS

    assert {f.value for f in Fault} - DUPLEX_ONLY <= set(FAULT_MUTANTS)
    assert set(FAULT_MUTANTS.values()) <= set(MUTANTS)


class SocketsOnly:
    """The model seen through the socket API only (merged and copy, no steps, no device): what
    the kernel target offers, without qemu."""

    def __init__(self, name: str = "model") -> None:
        self.inner = load_target(name)
        self.name = f"sockets-only:{name}"
        self.capabilities = frozenset({Capability.CONN_MERGED, Capability.CONN_COPY})

    def reset(self) -> None:
        self.inner.reset()

    def apply(self, op: Any) -> Any:
        return self.inner.apply(op)

    def close(self) -> None:
        self.inner.close()


def test_the_socket_route_names_the_interleaving_it_cannot_force() -> None:
    """merged-ignores-cons writes twice before the first write's move: a socket-only target
    pushes inside sendmsg, so the replay says the interleaving is not forced - and still
    catches the mutant, whose second send is accepted where the spec's is not."""
    trace = load(explorer_trace("merged-ignores-cons"), name="m")
    out = replay(trace, SocketsOnly())  # type: ignore[arg-type]
    assert out.verdict is Verdict.OK, out.message
    assert [r.plan.route for r in out.runs] == ["socket"]
    assert any("WriterMoveData" in n and "not forced" in n for n in out.notes)
    bad = replay(trace, SocketsOnly("zoo:merged-frees-at-send"))  # type: ignore[arg-type]
    assert bad.verdict is Verdict.FAIL, bad.message


def test_a_link_group_trace_needs_the_link_group_capability() -> None:
    trace = load(explorer_trace("lgr-reuse-peer-mismatch"), name="lgr")
    out = replay(trace, SocketsOnly())  # type: ignore[arg-type]
    assert out.verdict is Verdict.UNSUPPORTED and "link-group" in out.message


def test_a_trace_the_socket_route_cannot_test_is_unsupported_without_steps() -> None:
    """space-forgets-in-flight needs a CDC sent between a move and the next write's move:
    without conn-steps the plan that would show it does not exist in a saved corpus entry, and
    a target without the capability is told what it lacks."""
    from smcd_check.conformance.traces.corpus import prepare

    trace = load(explorer_trace("space-forgets-in-flight"), name="s")
    prepared = prepare(trace, load_target("zoo:copy-space-forgets-in-flight"), name="s")
    saved = load(prepared.doc, name="s")
    assert {(p.lens, p.route) for p in saved.plans} == {("datapath", "steps")}
    out = replay(saved, SocketsOnly())  # type: ignore[arg-type]
    assert out.verdict is Verdict.UNSUPPORTED and "conn-steps" in out.message


def test_an_action_kind_without_a_row_is_unsupported_by_name(monkeypatch: Any) -> None:
    """A new system action (e.g. a second data direction) must not be guessed at."""
    table = dict(mapping.ACTION_TABLE)
    del table["DataStep.WriterAppWrite"]
    monkeypatch.setattr(mapping, "ACTION_TABLE", table)
    doc = dict(explorer_trace("merged-ignores-cons"))
    doc["plans"], doc["unmapped"] = [], []
    out = replay(load(doc, name="x"), ModelTarget())
    assert out.verdict is Verdict.UNSUPPORTED
    assert "DataStep.WriterAppWrite" in out.message


def test_projection_to_the_traces_units() -> None:
    seen = {"prod": [3, 8176], "peer_cons": [0, 0], "sndbuf_space": 8176 + 32,
            "peer_rmbe_space": 8177}
    got = mapping.project(seen, "a", slot=8176, wrap_bits=1, sndbuf_extra=32)
    assert got == {"w_prod": [1, 1], "w_rx_cons": [0, 0], "sndbuf_space": 1,
                   "peer_rmbe_space": "8177 bytes"}


def test_the_device_lens_reads_every_dmb_after_each_change() -> None:
    trace = load(explorer_trace("unregister-while-attached"), name="u")
    device = next(p for p in trace.plans if p.lens == "device")
    names = [st.op.name for st in device.steps]
    assert names[:2] == ["dev_register_dmb", "dev_read_dmb"]
    assert {"dev_attach_dmb", "dev_detach_dmb", "dev_unregister_dmb"} <= set(names)
    assert device.required and trace.explorer is not None


A, B = Ref("p", "a"), Ref("p", "b")


@pytest.mark.parametrize("mode", ["copy", "merged"])
def test_stepped_pairs_agree_on_spec_and_model(mode: str) -> None:
    """conn-steps: the same forced interleaving (write, move, second write, CDC, deliver, read,
    window update, deliver, move, CDC, close, deliver) observes the same on the spec and the
    model; each mode's space-accounting mutant is caught where the bug acts."""
    def cur() -> list[Any]:
        return [step("conn_cursors", conn=A), step("conn_cursors", conn=B)]

    steps = [step("conn_open_steps", mode=mode, dmb_size=16384,
                  sndbuf_size=16384 if mode == "copy" else 0, bind="p"),
             step("conn_send", conn=A, data="11" * 8176), *cur(),
             step("conn_step", conn=A, step="move"), *cur(),
             step("conn_send", conn=A, data="22" * 8176), *cur(),
             step("conn_step", conn=A, step="cdc"), *cur(),
             step("conn_step", conn=B, step="tasklet"), *cur(),
             step("conn_recv", conn=B, max=16352), *cur(),
             step("conn_step", conn=B, step="cdc"), *cur(),
             step("conn_step", conn=A, step="tasklet"), *cur(),
             step("conn_step", conn=A, step="move"), *cur(),
             step("conn_step", conn=A, step="cdc"), *cur(),
             step("conn_close", conn=A),
             step("conn_step", conn=B, step="tasklet"), *cur(),
             step("conn_step", conn=B, step="tasklet")]
    case = Case(id="stepped", area=Area.LOCKSTEP, title="", description="", source="",
                steps=tuple(steps))
    oracle = ExpectationCache(SpecTarget())
    assert run_case(ModelTarget(), case, oracle).verdict is Verdict.OK
    mutant = "copy-space-forgets-in-flight" if mode == "copy" else "merged-frees-at-send"
    res = run_case(load_target(f"zoo:{mutant}"), case, oracle)
    assert res.verdict is Verdict.FAIL and "sndbuf_space" in res.message


def test_a_plain_pair_refuses_conn_step() -> None:
    for target in (SpecTarget(), ModelTarget()):
        from smcd_check.conformance.targets.adapter import Op

        pair = target.apply(Op.make("conn_open", mode="merged", dmb_size=16384, sndbuf_size=0))
        got = target.apply(Op.make("conn_step", conn=pair.get("a"), step="move"))
        assert got.error == "EINVAL", target


def test_lifestep_rows_without_endpoint_are_the_implementations_own_work() -> None:
    own = [k for k, r in mapping.ACTION_TABLE.items()
           if k.startswith("LifeStep.") and not (r.api or r.step)]
    assert "LifeStep.HostUnregisterDmb" in own and LifeStep is not None
