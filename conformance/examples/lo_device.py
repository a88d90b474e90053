#!/usr/bin/env python3
"""An example out-of-process conformance target: a tiny loopback-ism device, standalone.

It imports nothing from smcd_check: it is what a third-party implementation looks like to the
suite. It speaks the JSON-lines protocol on stdin/stdout (one request per line, one answer per
line, same "id") and implements the capabilities "device", "device-nocopy" and "cursor":

    smcd-check conform --target 'cmd:python3 conformance/examples/lo_device.py'

Behaviour follows Linux 6.12.118 net/smc/smc_loopback.c (v6.11+ "nocopy" device):
register_dmb takes the lowest free slot of 5000 (-ENOSPC), draws a random unique 64-bit token;
attach/detach/unregister count references and free the DMB only at zero; move_data with sf = 0
returns at once (the data is already in the peer DMB), with sf = 1 it looks the token up
(-EINVAL), checks offset + size against the DMB length (-EINVAL), copies, and returns -EPIPE
because no connection is bound to the slot (this example has no connections).

Options: --max-dmbs N (default 5000); --bug NAME reintroduces a bug for demonstrations:
  no-bounds-check   move_data without the 6.12.97 offset/size check (v6.12.0 behaviour)
  free-on-unregister unregister frees the DMB although a peer is still attached (pre-refcount)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

MAX_DMBS = 5000


class Device:
    def __init__(self, max_dmbs: int, bug: str | None) -> None:
        self.max_dmbs = max_dmbs
        self.bug = bug
        self.reset()

    def reset(self) -> None:
        self.nodes: dict[int, dict] = {}  # token -> {"idx", "len", "mem", "ref"}
        self.slots = [False] * self.max_dmbs

    # --- device ops: return (ok, result-or-error)
    def register_dmb(self, size: int):
        if not isinstance(size, int) or size <= 0:
            return False, "EINVAL"
        try:
            idx = self.slots.index(False)
        except ValueError:
            return False, "ENOSPC"
        while True:
            token = int.from_bytes(os.urandom(8), "little")
            if token not in self.nodes:
                break
        self.slots[idx] = True
        self.nodes[token] = {"idx": idx, "len": size, "mem": bytearray(size), "ref": 1}
        return True, {"token": token, "sba_idx": idx, "len": size}

    def _put(self, token: int, force: bool = False):
        node = self.nodes.get(token)
        if node is None:
            return False, "EINVAL"
        node["ref"] -= 1
        if node["ref"] == 0 or force:
            del self.nodes[token]
            self.slots[node["idx"]] = False
        return True, {}

    def unregister_dmb(self, token: int):
        return self._put(token, force=self.bug == "free-on-unregister")

    def attach_dmb(self, token: int):
        node = self.nodes.get(token)
        if node is None:
            return False, "EINVAL"
        node["ref"] += 1
        return True, {"token": token, "sba_idx": node["idx"], "len": node["len"]}

    def detach_dmb(self, token: int):
        return self._put(token)

    def move_data(self, token: int, offset: int, data: str, signal: bool):
        if not signal:
            return True, {}
        node = self.nodes.get(token)
        if node is None:
            return False, "EINVAL"
        raw = bytes.fromhex(data)
        if self.bug != "no-bounds-check" and (offset < 0 or offset + len(raw) > node["len"]):
            return False, "EINVAL"
        end = min(offset + len(raw), node["len"])  # Python cannot scribble past the buffer
        node["mem"][offset:end] = raw[: end - offset]
        return False, "EPIPE"  # no connection on this slot to signal

    def read_dmb(self, token: int, offset: int, size: int):
        node = self.nodes.get(token)
        if node is None or offset < 0 or size < 0 or offset + size > node["len"]:
            return False, "EINVAL"
        return True, {"data": bytes(node["mem"][offset : offset + size]).hex()}


# --- cursor arithmetic (net/smc/smc_cdc.h), C semantics: u32 sums, int conversion, u16 wrap
U32 = 1 << 32


def s32(v: int) -> int:
    v &= U32 - 1
    return v - U32 if v & 0x80000000 else v


def curs_add(size, curs, value):
    wrap, count = curs
    count = (count + value) % U32
    if count >= size:
        wrap = (wrap + 1) & 0xFFFF
        count = (count - size) % U32
    return [wrap, count]


def curs_diff(size, old, new):
    if old[0] != new[0]:
        return max(0, s32(size - old[1] + new[1]))
    return max(0, s32(new[1] - old[1]))


def curs_comp(size, old, new):
    if old[0] > new[0] or (old[0] == new[0] and old[1] > new[1]):
        return -curs_diff(size, new, old)
    return curs_diff(size, old, new)


def curs_diff_large(size, old, new):
    if old[0] < new[0]:
        laps = new[0] - old[0] - 1
    elif old[0] > new[0]:
        laps = new[0] + 0xFFFF - old[0]
    else:
        return max(0, s32(new[1] - old[1]))
    return min(s32((size - old[1] + new[1] + laps * size) % U32), s32(size))


def handle(dev: Device, op: str, a: dict):
    if op == "hello":
        return True, {"name": "lo_device.py", "protocol": 1,
                      "capabilities": ["device", "device-nocopy", "cursor"]}
    if op == "reset":
        dev.reset()
        return True, {}
    if op == "dev_register_dmb":
        return dev.register_dmb(a["size"])
    if op == "dev_unregister_dmb":
        return dev.unregister_dmb(a["token"])
    if op == "dev_attach_dmb":
        return dev.attach_dmb(a["token"])
    if op == "dev_detach_dmb":
        return dev.detach_dmb(a["token"])
    if op == "dev_move_data":
        return dev.move_data(a["token"], a["offset"], a["data"], a["signal"])
    if op == "dev_read_dmb":
        return dev.read_dmb(a["token"], a["offset"], a["size"])
    if op == "curs_add":
        return True, {"curs": curs_add(a["size"], a["curs"], a["value"])}
    if op == "curs_diff":
        return True, {"value": curs_diff(a["size"], a["old"], a["new"])}
    if op == "curs_comp":
        return True, {"value": curs_comp(a["size"], a["old"], a["new"])}
    if op == "curs_diff_large":
        return True, {"value": curs_diff_large(a["size"], a["old"], a["new"])}
    return False, "EOPNOTSUPP"


def main() -> int:
    parser = argparse.ArgumentParser(description="example loopback-ism conformance target")
    parser.add_argument("--max-dmbs", type=int, default=MAX_DMBS)
    parser.add_argument("--bug", choices=["no-bounds-check", "free-on-unregister"])
    ns = parser.parse_args()
    dev = Device(ns.max_dmbs, ns.bug)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req["op"] == "bye":
            print(json.dumps({"id": req["id"], "ok": True, "result": {}}), flush=True)
            return 0
        try:
            ok, res = handle(dev, req["op"], req.get("args", {}))
        except (KeyError, TypeError, ValueError) as exc:
            ok, res = False, f"EINVAL:{exc}"
        if ok:
            answer = {"id": req["id"], "ok": True, "result": res}
        else:
            code, _, detail = res.partition(":")
            answer = {"id": req["id"], "ok": False, "error": code, "detail": detail}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
