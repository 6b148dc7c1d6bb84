#!/usr/bin/env python3
"""Writes each app's dispatch fuzz corpus (apps/<app>/fuzz/dispatch_corpus/) and dictionary
(apps/<app>/fuzz/dispatch.dict): one request per op with good arguments, and the same ops
with arguments of the wrong types, out of range or missing, in msgpack (docs/protocol.md).
The fuzz targets start from these; each app's tests replay them through testing::app_probe.
Rerun after adding an op:  python3 tests/fuzz/dispatch_corpus.py
(Python's msgpack module is not a Debian default, so this packs msgpack itself.)"""
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, (list, tuple)):
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


def request(i, op, args=None):
    r = {"id": i, "op": op}
    if args is not None:
        r["args"] = args
    return pack(r)


COMMON = [("ping", {}), ("info", None), ("tree", {}), ("nosuchop", {}), ("crash", {})]

WRONG = [None, -1, 2**64 - 1, "", "x" * 300, b"\x00bin", 1.5, [1, 2], {"nested": {"a": [1]}}, True]

APPS = {
    "cache": [
        ("put", {"key": "k", "value": "v"}),
        ("put", {"key": "n", "value": 41, "ttl_ms": 60000}),
        ("put", {"key": "m", "value": {"a": [1, 2.5, b"\x01"]}}),
        ("get", {"key": "k"}),
        ("delete", {"key": "k"}),
        ("incr", {"key": "n", "by": 2, "ttl_ms": 1000}),
        ("incr", {"key": "m"}),
        ("mput", {"items": {"a": 1, "b": "2"}, "ttl_ms": 5000}),
        ("mget", {"keys": ["a", "b", "zz"]}),
        ("expire", {"key": "a", "ttl_ms": 1}),
        ("ttl", {"key": "b"}),
        ("keys", {"prefix": "", "limit": 10, "after": "a"}),
        ("stats", {}),
        ("clear", {}),
    ],
    "registry": [
        ("register", {"name": "svc", "endpoint": "tcp://127.0.0.1:1", "meta": {"v": 1}, "ttl_ms": 1000}),
        ("renew", {"lease": "l-1"}),
        ("unregister", {"name": "svc", "lease": "l-1"}),
        ("lookup", {"name": "svc"}),
        ("list", {"prefix": "s"}),
        ("join", {"group": "g", "member": "m1", "endpoint": "tcp://127.0.0.1:2", "ttl_ms": 500}),
        ("leave", {"group": "g", "member": "m1"}),
        ("members", {"group": "g"}),
    ],
    "session_manager": [
        ("open", {"user": "alice", "idle_timeout_ms": 60000, "data": {"lang": "en"}}),
        ("refresh", {"user": "alice"}),
        ("send", {"user": "alice", "message": {"text": "hi"}}),
        ("messages", {"user": "alice", "after": 0, "limit": 10}),
        ("get", {"user": "alice"}),
        ("update", {"user": "alice", "data": {"theme": "dark"}}),
        ("list", {"prefix": "a", "limit": 5}),
        ("count", {}),
        ("close", {"user": "alice"}),
    ],
    "task_runner": [
        ("submit", {"kind": "echo", "args": {"x": 1}, "key": "k1"}),
        ("submit", {"kind": "sleep", "args": {"ms": 5}, "timeout_ms": 1000, "max_attempts": 3, "backoff_ms": 1}),
        ("submit", {"kind": "fail", "args": {"message": "no"}, "delay_ms": 1}),
        ("submit", {"kind": "crash", "max_attempts": 2}),
        ("submit", {"kind": "exec", "args": {"argv": ["/bin/true"]}}),
        ("status", {"task_id": 1}),
        ("await", {"task_id": 1, "timeout_ms": 100}),
        ("cancel", {"task_id": 2}),
        ("list", {"state": "queued", "limit": 3}),
        ("stats", {}),
    ],
}

RAW = {  # frames that are not good requests at all
    "empty_frame": b"",  # a REQ-style delimiter with no payload: the delimiter comes back
    "not_msgpack": b"\xc1",
    "not_a_map": pack([1, "ping"]),
    "no_op": pack({"id": 7}),
    "bin_op": b"\x82" + pack("id") + pack(1) + pack("op") + pack(b"ping"),
    "args_not_map": pack({"id": 3, "op": "ping", "args": [1]}),
    "duplicate_key": b"\x83" + pack("id") + pack(1) + pack("op") + pack("ping") + pack("op") + pack("info"),
    "allocation_bomb": b"\xdd\xff\xff\xff\xff",
    "trailing": pack({"id": 1, "op": "ping"}) + b"\x00",
    "deadline": pack({"id": 9, "op": "ping", "deadline_ms": 0}),
}


def words(ops):
    seen = []
    for op, args in ops:
        for w in [op] + list((args or {}).keys()):
            if w not in seen:
                seen.append(w)
    return seen + ["id", "op", "args", "deadline_ms"]


def main():
    for app, ops in APPS.items():
        fuzz = os.path.join(ROOT, "apps", app, "fuzz")
        out = os.path.join(fuzz, "dispatch_corpus")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        files = {}
        n = 1
        for op, args in COMMON + ops:
            files[f"{op}"] = request(n, op, args)
            n += 1
            for key in (args or {}):
                for j, wrong in enumerate(WRONG):
                    files[f"{op}_{key}_wrong{j}"] = request(n, op, {**args, key: wrong})
                    n += 1
                files[f"{op}_without_{key}"] = request(n, op, {k: v for k, v in args.items() if k != key})
                n += 1
        files.update(RAW)
        for name, data in files.items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
        with open(os.path.join(fuzz, "dispatch.dict"), "w") as f:
            f.write(f"# {app}'s ops and argument names as msgpack strs (tests/fuzz/dispatch_corpus.py)\n")
            for w in words(COMMON + ops):
                f.write('"' + "".join(f"\\x{b:02x}" for b in pack(w)) + '"\n')
        print(f"{app}: {len(files)} frames")


if __name__ == "__main__":
    main()
