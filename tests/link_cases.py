"""Seeded random link traffic shared by the command, robustness and driver tests.

``make_cases(rng, info, n)`` returns a list of wire-byte chunks (each one frame or garbage ending
in a delimiter), mixing good commands with corrupted ones: random bytes, truncated frames,
flipped bits, bad CRCs, oversize and inconsistent lengths, unknown commands, out-of-range
addresses.  The device's answers are checked against ``host.runtime.protocol.DeviceModel``.
"""
import struct

from host.runtime import protocol as P


def rand_bytes(rng, n):
    return bytes(rng.randrange(256) for _ in range(n))


def good_request(rng, info, tag):
    wb, maxp, mem = info.word_bytes, info.max_payload, info.mem_bytes
    kind = rng.choice(["write", "write", "read", "read", "info", "status"])
    if kind in ("write", "read"):
        length = wb * rng.randrange(1, maxp // wb + 1)
        addr = wb * rng.randrange(0, (mem - length) // wb + 1)
        if kind == "write":
            return P.req_write(tag, addr, rand_bytes(rng, length))
        return P.req_read(tag, addr, length)
    return P.req_info(tag) if kind == "info" else P.req_status(tag)


def bad_request(rng, info, tag):
    """A frame body that is well framed but semantically wrong (the device must refuse it)."""
    wb, maxp, mem = info.word_bytes, info.max_payload, info.mem_bytes
    kind = rng.randrange(7)
    if kind == 0:       # unknown command
        return bytes([rng.choice([0, 6, 0x7F, 0x80, 0xFF]), tag]) + rand_bytes(rng, rng.randrange(8))
    if kind == 1:       # address past the end / wrapping
        length = wb * rng.randrange(1, maxp // wb + 1)
        addr = rng.choice([mem - length + wb, mem, 0xFFFFFFFF & ~(wb - 1), mem * 4])
        return rng.choice([P.req_read(tag, addr, length),
                           P.req_write(tag, addr, rand_bytes(rng, length))])
    if kind == 2:       # unaligned address or length, or zero length
        if wb == 1:
            return P.req_read(tag, 0, 0)
        return rng.choice([P.req_read(tag, 1, wb), P.req_read(tag, 0, wb + 1),
                           P.req_write(tag, wb, b"\x01" * (wb - 1)), P.req_read(tag, 0, 0)])
    if kind == 3:       # READ over max payload
        return P.req_read(tag, 0, maxp + wb)
    if kind == 4:       # WRITE whose length field disagrees with its data
        data = rand_bytes(rng, wb * rng.randrange(1, 4))
        body = bytearray(P.req_write(tag, 0, data))
        body[6:8] = struct.pack("<H", len(data) + rng.choice([-1, 1, wb, 300]) & 0xFFFF)
        return bytes(body)
    if kind == 5:       # fixed-size command with extra or missing bytes
        body = rng.choice([P.req_info(tag), P.req_status(tag), P.req_read(tag, 0, wb)])
        return body + b"\x00" if rng.random() < 0.5 else body[:-1]
    # oversize frame: longer than the frame buffer
    return P.req_write(tag, 0, rand_bytes(rng, maxp + wb * rng.randrange(1, 8)))


def corrupt_wire(rng, wire: bytes) -> bytes:
    """Damage one encoded frame (``wire`` ends with the delimiter); keep the delimiter."""
    enc = bytearray(wire[:-1])
    kind = rng.randrange(4)
    if kind == 0 and len(enc) > 1:          # truncated
        enc = enc[:rng.randrange(1, len(enc))]
    elif kind == 1:                          # flipped bits (a zero would split the frame)
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(enc))
            enc[i] ^= 1 << rng.randrange(8)
    elif kind == 2:                          # dropped byte
        del enc[rng.randrange(len(enc))]
    else:                                    # inserted byte
        enc.insert(rng.randrange(len(enc) + 1), rng.randrange(256))
    return bytes(enc) + b"\x00"


def make_cases(rng, info, n, p_good=0.4):
    """``n`` chunks of wire bytes; every chunk ends with a delimiter."""
    out = []
    for i in range(n):
        tag = i & 0xFF
        r = rng.random()
        if r < p_good:
            out.append(P.frame(good_request(rng, info, tag)))
        elif r < p_good + 0.2:
            out.append(P.frame(bad_request(rng, info, tag)))
        elif r < p_good + 0.4:
            out.append(corrupt_wire(rng, P.frame(good_request(rng, info, tag))))
        elif r < p_good + 0.5:
            body = good_request(rng, info, tag)      # bad CRC, framing intact
            out.append(P.cobs_encode(body + rand_bytes(rng, 4)) + b"\x00")
        else:                                        # random bytes, zeros included
            out.append(rand_bytes(rng, rng.randrange(1, 40)) + b"\x00")
    return out


def expected_replies(model, wire: bytes):
    """Reply bodies the device must send for ``wire`` (split into frames at zeros)."""
    out = []
    for enc in wire.split(b"\x00")[:-1]:
        r = model.handle(enc)
        if r is not None:
            out.append(r)
    return out


def compare_replies(got, expect, n_perf):
    """Compare reply bodies; STATUS payloads are compared on the fields the model knows."""
    assert len(got) == len(expect), (len(got), len(expect))
    for i, (g, e) in enumerate(zip(got, expect)):
        if e[0] == P.Cmd.STATUS and e[2] == P.Status.OK:
            assert g[:3] == e[:3], (i, g[:3], e[:3])
            gs, es = P.parse_status(g[3:], n_perf), P.parse_status(e[3:], n_perf)
            for k in ("frames_ok", "frames_bad"):
                assert gs[k] == es[k], (i, k, gs[k], es[k])
        else:
            assert g == e, (i, g[:16], e[:16])
