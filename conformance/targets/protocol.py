"""The JSON-lines protocol as data: a JSON Schema for every answer a target may give.

Theory of operation
-------------------
conformance/PROTOCOL.md describes the protocol in words; this module is its machine-readable
half. :data:`RESULT_SCHEMAS` gives, for every operation of
:data:`~smcd_check.conformance.targets.adapter.OPS`, the JSON Schema of a successful ``result``;
:func:`schema_document` assembles the whole answer schema (success or refusal, per operation),
which is also shipped as ``protocol.schema.json`` next to this file for targets written in other
languages (a test keeps the file equal to what this module generates).

:func:`check_answer` validates one answer with ``jsonschema`` (Draft 2020-12) and raises
:class:`AnswerError` naming the operation, the field path and what was wrong, e.g.
``conn_cursors: result.prod[1]: -1 is less than the minimum of 0``. The subprocess target turns
that into an ERROR of the case: a malformed answer is never compared as if it meant something.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from smcd_check.conformance.targets.adapter import OPS, PROTOCOL_VERSION

SCHEMA_FILE = Path(__file__).with_name("protocol.schema.json")
SCHEMA_ID = "https://smcd-check.invalid/conformance/protocol.schema.json"

U16 = {"type": "integer", "minimum": 0, "maximum": 0xFFFF}
U32 = {"type": "integer", "minimum": 0, "maximum": 0xFFFF_FFFF}
U64 = {"type": "integer", "minimum": 0, "maximum": 0xFFFF_FFFF_FFFF_FFFF}
C_INT = {"type": "integer", "minimum": -(1 << 31), "maximum": (1 << 31) - 1}
COUNT = {"type": "integer", "minimum": 0}
HEX = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
HANDLE = {"type": ["integer", "string"]}
CURSOR = {"type": "array", "prefixItems": [U16, U32], "items": False, "minItems": 2}
ERRNO_NUM = {"type": ["integer", "null"], "minimum": 1, "maximum": 4095}
OUTCOME = {
    "type": ["object", "null"],
    "required": ["kind", "reason", "peer_diagnosis", "errno"],
    "additionalProperties": False,
    "properties": {
        "kind": {"enum": ["active", "declined", "fallback", "error", "oops", "hang"]},
        "reason": {"type": ["integer", "null"], "minimum": 0, "maximum": 0xFFFF_FFFF},
        "peer_diagnosis": U32,
        "errno": ERRNO_NUM,
    },
}
EFFECT = {
    "type": "object",
    "required": ["effect"],
    "oneOf": [
        {"properties": {"effect": {"const": "request_conn"}, "smcd_version": {"enum": [1, 2]},
                        "vlan_id": {"type": "integer", "minimum": 0, "maximum": 4095},
                        "chid": U16,
                        "policy": {"enum": ["reuse-or-create", "create-only", "reuse-only"]}},
         "required": ["effect", "smcd_version", "vlan_id", "chid", "policy"],
         "additionalProperties": False},
        {"properties": {"effect": {"const": "attach_peer_dmb"}, "peer_token": U64},
         "required": ["effect", "peer_token"], "additionalProperties": False},
        {"properties": {"effect": {"const": "conn_abort"},
                        "first_contact_local": {"type": "boolean"}},
         "required": ["effect", "first_contact_local"], "additionalProperties": False},
        {"properties": {"effect": {"const": "lgr_sync_err"}},
         "required": ["effect"], "additionalProperties": False},
    ],
}
def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


#: ``clc_decode`` fields, by message type (PROTOCOL.md "clc_decode fields"); null = absent part
CLC_FIELDS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # Proposal
        "iparea_offset": U16, "ism_gid": _nullable(U64), "ism_chid": _nullable(U16),
        "v2_ext_offset": _nullable(U16), "ipv6_prefixes_cnt": _nullable(COUNT),
        "eid_cnt": _nullable(COUNT), "ism_gid_cnt": _nullable(COUNT),
        "release": _nullable(COUNT), "seid": {"type": ["boolean", "null"]},
        "gidchids": _nullable({"type": "array", "items": {
            "type": "array", "prefixItems": [U64, U16], "items": False, "minItems": 2}}),
        # Accept / Confirm
        "first_contact": {"type": "boolean"}, "gid": U64, "token": U64,
        "dmbe_idx": {"type": "integer", "minimum": 0, "maximum": 255},
        "dmbe_size": {"type": "integer", "minimum": 0, "maximum": 15},
        "linkid": {"type": "string", "pattern": "^[0-9a-f]{8}$"}, "chid": U16, "gid_ext": U64,
        "eid": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        # Decline
        "peer_diagnosis": U32, "out_of_sync": {"type": "boolean"},
        "os_type": {"type": "integer", "minimum": 0, "maximum": 15},
    },
}
HS_RESULT = {"out": {"type": "array", "items": HEX}, "outcome": OUTCOME,
             "effects": {"type": "array", "items": EFFECT}}
DMB = {"token": U64, "sba_idx": {"type": "integer", "minimum": 0, "maximum": 4999},
       "len": COUNT}
EMPTY: dict[str, Any] = {}

#: the properties of every operation's successful ``result`` (all listed keys are required)
RESULT_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    "dev_register_dmb": DMB,
    "dev_unregister_dmb": EMPTY,
    "dev_move_data": EMPTY,
    "dev_read_dmb": {"data": HEX},
    "dev_attach_dmb": DMB,
    "dev_detach_dmb": EMPTY,
    "conn_open": {"a": HANDLE, "b": HANDLE},
    "conn_send": {"n": COUNT},
    "conn_recv": {"data": HEX, "eof": {"type": "boolean"}},
    "conn_shutdown": EMPTY,
    "conn_close": EMPTY,
    "conn_abort": EMPTY,
    "conn_cursors": {"prod": CURSOR, "cons": CURSOR, "peer_prod": CURSOR, "peer_cons": CURSOR,
                     "bytes_to_rcv": COUNT, "sndbuf_space": COUNT, "peer_rmbe_space": COUNT},
    "curs_add": {"curs": CURSOR},
    "curs_diff": {"value": C_INT},
    "curs_comp": {"value": C_INT},
    "curs_diff_large": {"value": C_INT},
    "clc_decode": {"type": {"enum": [1, 2, 3, 4]},
                   "version": {"type": "integer", "minimum": 1, "maximum": 15},
                   "length": {"type": "integer", "minimum": 8, "maximum": 0xFFFF},
                   "fields": CLC_FIELDS},
    "hs_new": {"ep": HANDLE, **HS_RESULT},
    "hs_feed": HS_RESULT,
    "hs_eof": HS_RESULT,
    "hs_timeout": HS_RESULT,
    # regression traces (issue 17): stepped pairs
    "conn_open_steps": {"a": HANDLE, "b": HANDLE},
    "conn_step": EMPTY,
    "lgr_conn_create": {"lgr": HANDLE, "first_contact": {"type": "boolean"}},
}

#: connection-state flags, in bit order (0x80, 0x40, 0x20)
CONN_FLAGS = {"type": "array", "uniqueItems": True, "items": {
    "enum": ["peer_done_writing", "peer_conn_closed", "peer_conn_abort"]}}
#: protocol 3: link groups and the connections' own DMBs (PROTOCOL.md section 9)
LGR_RESULTS: Mapping[str, Mapping[str, Any]] = {
    "lgr_of": {"lgr": HANDLE, "first_contact": {"type": "boolean"},
               "state": {"enum": ["listed", "freeing", "gone"]}, "conns_num": COUNT},
    "lgr_dmb": {"token": U64, "sba_idx": {"type": "integer", "minimum": 0, "maximum": 4999},
                "len": COUNT, "refcnt": COUNT, "used": {"type": "boolean"}},
    "lgr_dev": {"dmb_cnt": COUNT, "lgr_cnt": COUNT, "listed": COUNT},
    "lgr_terminate": EMPTY,
    "lgr_free_work": EMPTY,
    "lgr_dev_remove": EMPTY,
    "conn_state": {
        "sk_state": {"enum": ["SMC_ACTIVE", "SMC_INIT", "SMC_CLOSED", "SMC_LISTEN",
                              "SMC_PEERCLOSEWAIT1", "SMC_PEERCLOSEWAIT2", "SMC_APPCLOSEWAIT1",
                              "SMC_APPCLOSEWAIT2", "SMC_APPFINCLOSEWAIT", "SMC_PEERFINCLOSEWAIT",
                              "SMC_PEERABORTWAIT", "SMC_PROCESSABORT"]},
        "sk_err": {"type": "string", "pattern": "^(E[A-Z0-9]+)?$"},
        "sk_shutdown": {"type": "integer", "minimum": 0, "maximum": 3},
        "dead": {"type": "boolean"}, "freed": {"type": "boolean"},
        "tx_flags": CONN_FLAGS, "rx_flags": CONN_FLAGS},
    "cdc_inject": {"accepted": {"type": "boolean"},
                   "check": {"type": ["string", "null"], "pattern": "^[a-z0-9-]+$"}},
}
#: issue 11: urgent data and both directions (PROTOCOL.md section 10)
URG_RESULTS: Mapping[str, Mapping[str, Any]] = {
    "conn_open_urg": {"a": HANDLE, "b": HANDLE},
    "conn_send_oob": {"n": COUNT},
    "conn_recv_oob": {"data": HEX},
    "conn_atmark": {"atmark": {"type": "boolean"}},
    "conn_set_oobinline": EMPTY,
}
RESULT_SCHEMAS = {**RESULT_SCHEMAS, **LGR_RESULTS, **URG_RESULTS}

REFUSAL = {
    "type": "object",
    "required": ["id", "ok", "error"],
    "properties": {
        "id": {"type": ["integer", "null"]},
        "ok": {"const": False},
        "error": {"type": "string", "pattern": "^E[A-Z0-9]+$"},
        "detail": {"type": "string"},
    },
}


def result_schema(op: str) -> dict[str, Any]:
    """The JSON Schema of ``op``'s successful result object."""
    props = dict(RESULT_SCHEMAS[op])
    return {"type": "object", "required": list(OPS[op].result), "properties": props}


def schema_document() -> dict[str, Any]:
    """The whole answer schema: ``$defs`` per operation; an answer is a refusal or a success
    whose ``result`` matches the operation's definition (chosen by the caller)."""
    defs: dict[str, Any] = {"refusal": REFUSAL}
    for name in OPS:
        defs[f"result.{name}"] = result_schema(name)
    defs["result.hello"] = {
        "type": "object", "required": ["capabilities"],
        "properties": {"name": {"type": "string"}, "protocol": {"type": "integer"},
                       "capabilities": {"type": "array", "items": {"type": "string"}}}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"smcd-check conformance protocol {PROTOCOL_VERSION}: answers of a target",
        "description": "One answer line: a refusal, or a success whose result matches "
                       "$defs/result.<op> of the operation asked (conformance/PROTOCOL.md).",
        "x-protocol-version": PROTOCOL_VERSION,
        "oneOf": [
            {"$ref": "#/$defs/refusal"},
            {"type": "object", "required": ["id", "ok", "result"],
             "properties": {"id": {"type": ["integer", "null"]}, "ok": {"const": True},
                            "result": {"type": "object"}}},
        ],
        "$defs": defs,
    }


def render_schema() -> str:
    """The schema file's text (what ``protocol.schema.json`` must contain)."""
    return json.dumps(schema_document(), indent=2, sort_keys=True) + "\n"


class AnswerError(ValueError):
    """An answer that does not match the protocol: names the operation and the field."""


@cache
def _validators() -> dict[str, Any]:
    from jsonschema import Draft202012Validator

    doc = schema_document()
    out: dict[str, Any] = {}
    for key, sub in doc["$defs"].items():
        out[key] = Draft202012Validator(sub)
    return out


def _path(error: Any, root: str) -> str:
    text = root
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def check_answer(op: str, answer: Mapping[str, Any]) -> None:
    """Validate one answer (already parsed) to a request for ``op``.

    Raises:
        AnswerError: naming ``op``, the field path and the problem (the first found, the
            deepest first so the message points at the field, not at the envelope).
    """
    validators = _validators()
    ok = answer.get("ok")
    if ok is False:
        key, body, root = "refusal", answer, "answer"
    elif ok is True:
        key = f"result.{op}"
        if key not in validators:
            return  # an operation of a newer vocabulary: nothing to check here
        body = answer.get("result", {})
        root = "result"
        if not isinstance(body, dict):
            raise AnswerError(f"{op}: result is {type(body).__name__}, expected an object")
    else:
        raise AnswerError(f"{op}: answer.ok is {ok!r}, expected true or false")
    errors = sorted(validators[key].iter_errors(body), key=lambda e: -len(e.absolute_path))
    if errors:
        err = errors[0]
        raise AnswerError(f"{op}: {_path(err, root)}: {err.message}")
