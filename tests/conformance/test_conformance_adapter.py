"""The adapter vocabulary: operations, observations, refs, and loading targets by spec string."""

from __future__ import annotations

import pytest

from smcd_check.conformance.targets.adapter import (
    OPS,
    Capability,
    Observation,
    Op,
    Ref,
    TargetLoadError,
    needs,
    parse_capability,
)
from smcd_check.conformance.targets.load import load_target


def test_Op_rejects_unknown_operation_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown operation 'dev_explode'.*dev_register_dmb"):
        Op.make("dev_explode")


def test_Op_rejects_missing_and_unexpected_arguments() -> None:
    with pytest.raises(ValueError, match=r"missing arguments \['size'\]"):
        Op.make("dev_register_dmb")
    with pytest.raises(ValueError, match=r"unexpected \['colour'\]"):
        Op.make("dev_register_dmb", size=1, colour="red")


def test_Op_json_round_trip_keeps_refs_and_nested_values() -> None:
    op = Op.make("hs_new", role="client", config={"ueids": ["A", "B"], "gid": 5})
    assert Op.from_json(op.to_json()) == op
    ref_op = Op.make("conn_send", conn=Ref("p", "a"), data="00ff")
    data = ref_op.to_json()
    assert data["args"]["conn"] == {"$ref": "p.a"}
    assert Op.from_json(data) == ref_op
    assert op.kwargs()["config"] == {"ueids": ["A", "B"], "gid": 5}


def test_merged_connections_need_the_merged_capability() -> None:
    merged = Op.make("conn_open", mode="merged", dmb_size=16384, sndbuf_size=0)
    copy = Op.make("conn_open", mode="copy", dmb_size=16384, sndbuf_size=16384)
    send = Op.make("conn_send", conn=1, data="00")
    assert needs([merged, send]) == {Capability.CONN_MERGED}
    assert needs([copy, send]) == {Capability.CONN_COPY}


def test_Observation_json_round_trip_and_get() -> None:
    ok = Observation.success({"token": 7, "curs": [1, 2], "nested": {"a": [{"b": 1}]}})
    assert Observation.from_json(ok.to_json()) == ok
    assert ok.get("curs") == [1, 2]
    assert ok.get("nested") == {"a": [{"b": 1}]}
    bad = Observation.failure("EINVAL", "why")
    assert Observation.from_json(bad.to_json()) == bad
    with pytest.raises(KeyError, match="failed with EINVAL"):
        bad.get("token")


def test_every_operation_names_a_capability_and_its_result_keys() -> None:
    for name, info in OPS.items():
        assert info.name == name
        assert isinstance(info.capability, Capability)
        assert set(info.handles) <= set(info.result), name
        assert set(info.handle_args) <= set(info.args), name


def test_parse_capability_names_the_known_ones() -> None:
    assert parse_capability("device-nocopy") is Capability.DEVICE_NOCOPY
    with pytest.raises(ValueError, match=r"unknown capability 'warp'.*device"):
        parse_capability("warp")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty target spec"),
        ("foo bar", "bad target spec 'foo bar'"),
        ("zoo:no-such-bug", "unknown zoo mutant 'no-such-bug'; known: wnd-limit-min"),
        ("cmd:", "'cmd:' needs a command line"),
        ("cmd:/nonexistent/target-binary", "cannot run '/nonexistent/target-binary'"),
        ("nosuch.module:factory", "cannot import 'nosuch.module'"),
        ("smcd_check.conformance.targets.adapter:nothing_here", "has no callable 'nothing_here'"),
        ("smcd_check.conformance.targets.adapter:needs", "target factory .* failed: TypeError"),
    ],
)
def test_load_target_refuses_bad_specs_with_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(TargetLoadError, match=message) as info:
        load_target(spec)
    assert "\n" not in str(info.value)


def test_load_target_shorthands_and_import_paths() -> None:
    spec = load_target("spec")
    model = load_target("model")
    by_path = load_target("smcd_check.conformance.targets.model_target:make_model")
    assert spec.name == "spec" and Capability.HANDSHAKE in spec.capabilities
    assert model.name == "model" and Capability.CONN_MERGED in model.capabilities
    assert by_path.capabilities == model.capabilities
    assert load_target("zoo:move-no-bounds").name == "zoo:move-no-bounds"
