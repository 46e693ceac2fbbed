#!/usr/bin/env python3
"""Write the seed corpus of the virtio-blk-poll fuzz targets.

The input format is the one tests/qtest/fuzz/virtio_blk_poll_fuzz.c reads:
two header bytes (feature choices, queues to set up) and a list of
operations.  Each seed is a small, meaningful guest conversation, so that
the fuzzer starts from requests that reach the fast path, the block layer,
several queues, resets and every validation branch, and mutates from there.

    scripts/fuzz/make-seeds.py [DIR]   (default tests/qtest/fuzz/virtio-blk-poll-seeds)
"""
import os
import struct
import sys

OP_REQ, OP_RAW, OP_KICK, OP_WAIT, OP_RESET, OP_USED_EVENT, OP_AVAIL_IDX, \
    OP_AVAIL_FLAGS = range(8)
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ, T_OUT_HIPRIO, T_BAD = range(8)
EVENT_IDX, INDIRECT, NO_FLUSH, NO_DISCARD, NO_WZ, NO_MQ = 1, 2, 4, 8, 16, 32
(R_INDIRECT, R_SPLIT_HDR, R_NO_STATUS, R_HDR_WRITABLE, R_BAD_STATUS_LEN,
 R_FLIP_DATA, R_NO_KICK, R_HUGE_SEG) = (1 << i for i in range(8))
D_NEXT, D_WRITE, D_INDIRECT = 1, 2, 4


def hdr(choice=0, nq=0):
    return bytes([choice, nq])


def req(q, t, sector, nseg=1, seglen=4096, flags=0):
    return struct.pack("<BBBIBHB", OP_REQ, q, t, sector, nseg, seglen, flags)


def raw(q, descs):
    """descs: (len, flags, next, addr or None for the harness's buffer)"""
    out = struct.pack("<BBB", OP_RAW, q, (len(descs) - 1) % 8)
    for ln, fl, nx, addr in descs:
        out += struct.pack("<BIHH", 0 if addr is None else 1, ln, fl, nx)
        if addr is not None:
            out += struct.pack("<Q", addr)
    return out


def kick(q):
    return bytes([OP_KICK, q])


def wait(n):
    return bytes([OP_WAIT, n])


def reset(choice=0, nq=0):
    return bytes([OP_RESET, choice, nq])


OP_RINGS = 0xff
RINGS_BAR, RINGS_UNMAPPED, RINGS_HOME = range(3)


def rings(q, where):
    """Move queue q's rings while it is served: into the device's BAR,
    beyond guest RAM, or back home (Q_ENABLE again)"""
    return bytes([OP_RINGS, q, where])


def ring16(op, q, v):
    return struct.pack("<BBH", op, q, v)


SEEDS = {
    # the fast path: aligned reads and writes, several sizes, read-back
    "rw-4k": hdr() + req(0, T_OUT, 0) + wait(5) + req(0, T_IN, 0),
    "rw-sizes": hdr(EVENT_IDX) + b"".join(
        req(0, T_OUT, 8 * i, 1, 512 << i) for i in range(7)) + wait(10) +
        b"".join(req(0, T_IN, 8 * i, 1, 512 << i) for i in range(7)),
    "rw-segments": hdr(INDIRECT) + req(0, T_OUT, 64, 16, 512) +
        req(0, T_IN, 64, 16, 512, R_INDIRECT) + req(0, T_IN, 64, 3, 1536),
    "multi-queue": hdr(EVENT_IDX, 3) + b"".join(
        req(q, T_OUT, 1024 * q + 8 * i) for q in range(4) for i in range(4)) +
        b"".join(kick(q) for q in range(4)) + wait(20) + b"".join(
        req(q, T_IN, 1024 * q, 4, 4096) for q in range(4)),
    "burst-then-sleep": hdr(EVENT_IDX, 1) + b"".join(
        req(i % 2, T_OUT, 8 * i, 1, 4096, R_NO_KICK) for i in range(32)) +
        kick(0) + kick(1) + wait(31) + wait(31) + req(0, T_IN, 0) +
        req(1, T_IN, 8),
    # the other request types
    "flush-getid": hdr() + req(0, T_OUT, 0) + req(0, T_FLUSH, 0, 0) +
        req(0, T_GET_ID, 0, 1, 20) + req(0, T_GET_ID, 0, 1, 4),
    "discard-wz": hdr() + req(0, T_DISCARD, 0, 1, 16) +
        req(0, T_WZ, 8, 2, 16) + req(0, T_DISCARD, 3, 1, 16) +
        req(0, T_WZ, 100, 1, 32) + req(0, T_DISCARD, 0, 1, 15),
    "features-off": hdr(NO_FLUSH | NO_DISCARD | NO_WZ | NO_MQ, 3) +
        req(0, T_FLUSH, 0, 0) + req(0, T_DISCARD, 0, 1, 16) +
        req(0, T_WZ, 0, 1, 16) + req(1, T_OUT, 0),
    "unknown-types": hdr() + req(0, T_BAD, 0) + req(0, T_OUT_HIPRIO, 0),
    # hostile sectors and sizes
    "out-of-range": hdr() + req(0, T_OUT, 16380, 1, 4096) +
        req(0, T_IN, 16384, 1, 512) + req(0, T_IN, 0xfffffff8, 1, 512) +
        req(0, T_WZ, 16383, 1, 16) + req(0, T_OUT, 0xffffffff, 2, 512),
    "unaligned": hdr() + req(0, T_OUT, 1, 1, 100) + req(0, T_IN, 0, 3, 700) +
        req(0, T_IN, 7, 1, 513),
    "too-large": hdr() + req(0, T_OUT, 0, 16, 65535) +
        req(0, T_IN, 0, 1, 4096, R_HUGE_SEG),
    # malformed chains
    "bad-chains": hdr(INDIRECT) + req(0, T_OUT, 0, 1, 512, R_NO_STATUS) +
        req(0, T_OUT, 0, 1, 512, R_HDR_WRITABLE) +
        req(0, T_IN, 0, 1, 512, R_SPLIT_HDR) +
        req(0, T_OUT, 0, 1, 512, R_BAD_STATUS_LEN) +
        req(0, T_IN, 0, 2, 512, R_FLIP_DATA) +
        req(0, T_OUT, 0, 2, 512, R_INDIRECT | R_SPLIT_HDR),
    "raw-loop": hdr() + raw(0, [(16, D_NEXT, 0, None)]),
    "raw-next-oob": hdr() + raw(0, [(16, D_NEXT, 999, None), (1, D_WRITE, 0, None)]),
    "raw-outside-ram": hdr() + raw(0, [(16, D_NEXT, 1, 0xfffffffffffff000),
                                      (4096, D_NEXT | D_WRITE, 2, 0x7ffff000),
                                      (1, D_WRITE, 0, 0x40000000)]),
    "raw-zero-len": hdr() + raw(0, [(0, 0, 0, None)]) + raw(0, [(0, D_WRITE, 0, None)]),
    "raw-indirect": hdr(INDIRECT) + raw(0, [(48, D_INDIRECT, 0, None)]) +
        raw(0, [(16, D_INDIRECT | D_NEXT, 1, None), (1, D_WRITE, 0, None)]) +
        raw(0, [(0, D_INDIRECT, 0, None)]),
    # a buffer in MMIO (beyond the 64 MiB of RAM): the IOThread must not
    # wait for the BQL, which the reset right after holds
    "mmio-buffer-reset": hdr() + raw(0, [(16, D_NEXT, 1, 0x4000000),
                                        (1, D_WRITE, 0, None)]) + reset(),
    "mmio-status-reset": hdr() + raw(0, [(16, D_NEXT, 1, None),
                                        (512, D_NEXT | D_WRITE, 2, 0xfebf0000),
                                        (1, D_WRITE, 0, 0xfec00000)]) + reset(),
    # ring games
    "avail-idx-jump": hdr() + req(0, T_OUT, 0) + ring16(OP_AVAIL_IDX, 0, 300),
    "avail-idx-back": hdr(EVENT_IDX) + req(0, T_OUT, 0) + wait(5) +
        ring16(OP_AVAIL_IDX, 0, 0xffff) + req(0, T_IN, 0),
    "used-event": hdr(EVENT_IDX, 1) + ring16(OP_USED_EVENT, 0, 5) +
        b"".join(req(0, T_IN, 8 * i) for i in range(8)) +
        ring16(OP_USED_EVENT, 1, 0xffff) + req(1, T_IN, 0),
    "no-interrupt": hdr(0, 1) + ring16(OP_AVAIL_FLAGS, 0, 1) +
        req(0, T_OUT, 0) + req(1, T_OUT, 8) + ring16(OP_AVAIL_FLAGS, 0, 0),
    # resets with requests in flight
    "reset-under-load": hdr(EVENT_IDX, 3) + b"".join(
        req(q, T_OUT, 64 * q, 8, 4096) for q in range(4)) + reset(EVENT_IDX, 3) +
        b"".join(req(q, T_IN, 64 * q, 8, 4096) for q in range(4)) +
        reset(INDIRECT, 0) + req(0, T_IN, 0, 1, 512, R_INDIRECT),
    "reset-polling": hdr(0, 1) + req(0, T_OUT, 0) + wait(1) + reset(0, 1) +
        wait(31) + req(1, T_IN, 0) + reset(EVENT_IDX, 0),
    # rings moved out of guest RAM on a served queue, then a reset
    "rings-moved": hdr(EVENT_IDX, 1) + req(0, T_OUT, 0) + wait(2) +
        rings(0, RINGS_BAR) + kick(0) + req(1, T_OUT, 8) +
        rings(1, RINGS_UNMAPPED) + kick(1) + reset(0, 0) + req(0, T_IN, 0) +
        rings(0, RINGS_HOME) + req(0, T_IN, 0),
}


def main():
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        top, "tests/qtest/fuzz/virtio-blk-poll-seeds")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"make-seeds: {len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
