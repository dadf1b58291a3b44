"""Frame layer: Python COBS/CRC reference, and the RTL COBS decoder/encoder and CRC appender
checked against it on seeded random frames (Amaranth simulator)."""
import random
import zlib

import pytest
from amaranth.sim import Simulator

from host.runtime import protocol as P
from hw.link.framing import COBSDecoder, COBSEncoder, CRCAppender, SerialCRC32
from sim.amsim import stream_get, stream_put


def rand_frame(rng, maxlen=700):
    """Random frame content with a mix of zero-heavy, zero-free and long runs."""
    n = rng.choice([0, 1, 2, 253, 254, 255, 508, rng.randrange(maxlen)])
    kind = rng.randrange(3)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(n))
    if kind == 1:
        return bytes(rng.randrange(1, 256) for _ in range(n))
    return bytes(rng.choice([0, 0, 1, 0xFF]) for _ in range(n))


# ---------------------------------------------------------------- Python reference

def test_cobs_known_vectors():
    # examples from the COBS paper / Wikipedia
    assert P.cobs_encode(b"\x00") == b"\x01\x01"
    assert P.cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert P.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert P.cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"
    data = bytes(range(1, 255))
    assert P.cobs_encode(data) == b"\xff" + data + b"\x01"


def test_cobs_roundtrip_and_crc():
    rng = random.Random(1)
    for _ in range(500):
        f = rand_frame(rng)
        enc = P.cobs_encode(f)
        assert 0 not in enc
        assert len(enc) <= len(f) + len(f) // 254 + 1
        assert P.cobs_decode(enc) == f
    for _ in range(50):
        f = bytes(rng.randrange(256) for _ in range(rng.randrange(100)))
        reg = 0xFFFFFFFF
        for b in f:
            reg = P.crc32_update(reg, b)
        assert reg ^ 0xFFFFFFFF == zlib.crc32(f)
        for b in zlib.crc32(f).to_bytes(4, "little"):
            reg = P.crc32_update(reg, b)
        assert reg == P.CRC32_RESIDUE


def test_cobs_decode_rejects_truncation():
    with pytest.raises(P.CobsError):
        P.cobs_decode(b"\x05\x11\x22")
    body, err = P.check_frame(P.frame(b"\x01\x02\x03")[:-1])
    assert err is None and body == b"\x01\x02\x03"
    enc = bytearray(P.frame(b"\x01\x02\x03")[:-1])
    enc[2] ^= 0x40
    assert P.check_frame(bytes(enc))[1] in (P.Status.BAD_CRC, P.Status.BAD_FRAME)


# ---------------------------------------------------------------- RTL

def decode_reference(wire: bytes):
    """What the RTL decoder must emit for ``wire``: per frame its data bytes, then (end, error)."""
    out = []
    for enc in wire.split(b"\x00")[:-1]:
        if not enc:
            continue
        try:
            out += [("d", b) for b in P.cobs_decode(enc)]
            out.append(("end", 0))
        except P.CobsError:
            out += [("d", b) for b in P._cobs_decode_lenient(enc)]
            out.append(("end", 1))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_rtl_decoder_matches_reference(seed):
    rng = random.Random(seed)
    wire = bytearray()
    for _ in range(12):
        f = rand_frame(rng, 400)
        enc = P.cobs_encode(f)
        r = rng.randrange(4)
        if r == 0 and len(enc) > 2:       # truncated frame
            enc = enc[:rng.randrange(1, len(enc))]
        elif r == 1:                       # leading delimiters (empty frames)
            wire += b"\x00" * rng.randrange(1, 3)
        wire += enc + b"\x00"
    wire += bytes(rng.randrange(256) for _ in range(200)) + b"\x00"   # noise then resync
    expect = decode_reference(bytes(wire))
    dut = COBSDecoder()
    got = []

    async def feed(ctx):
        for b in wire:
            await stream_put(ctx, dut.i, b)
            for _ in range(rng.choice([0, 0, 0, 2])):
                await ctx.tick()

    async def collect(ctx):
        while len(got) < len(expect):
            p = await stream_get(ctx, dut.o)
            got.append(("end", p.error) if p.end else ("d", p.data))
            if rng.random() < 0.2:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert got == expect


@pytest.mark.parametrize("seed", [1, 2])
def test_rtl_encoder_matches_reference(seed):
    rng = random.Random(seed)
    frames = [rand_frame(rng, 600) for _ in range(10)]
    frames = [f for f in frames if f] + [b"\x00", bytes(range(1, 255)), bytes(254) ]
    expect = b"".join(P.cobs_encode(f) + b"\x00" for f in frames)
    dut = COBSEncoder()
    got = bytearray()

    async def feed(ctx):
        for f in frames:
            for k, b in enumerate(f):
                await stream_put(ctx, dut.i, {"data": b, "last": k == len(f) - 1})

    async def collect(ctx):
        while len(got) < len(expect):
            got.append(await stream_get(ctx, dut.o))
            if rng.random() < 0.3:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert bytes(got) == expect


def test_rtl_crc_appender():
    rng = random.Random(5)
    frames = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(8)]
    dut = CRCAppender()
    got = []

    async def feed(ctx):
        for f in frames:
            for k, b in enumerate(f):
                await stream_put(ctx, dut.i, {"data": b, "last": k == len(f) - 1})

    async def collect(ctx):
        cur = bytearray()
        while len(got) < len(frames):
            p = await stream_get(ctx, dut.o)
            cur.append(p.data)
            if p.last:
                got.append(bytes(cur))
                cur.clear()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert got == [f + zlib.crc32(f).to_bytes(4, "little") for f in frames]


def test_rtl_serial_crc_matches_reference():
    """Bytes at random gaps, each folded in a bit per cycle; after each run of bytes the value
    matches the reference register, ``drop`` shifts it out a byte at a time, ``reset``
    restores all ones."""
    rng = random.Random(11)
    dut = SerialCRC32()
    runs = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12))) for _ in range(12)]
    seen = []

    async def tb(ctx):
        for run in runs:
            reg = 0xFFFFFFFF
            for b in run:
                await stream_put(ctx, dut.i, b)
                reg = P.crc32_update(reg, b)
                for _ in range(rng.randrange(0, 3)):
                    await ctx.tick()
            await ctx.tick().until(dut.i.ready)
            value = ctx.get(dut.value)
            dropped = []
            for _ in range(rng.randrange(0, 4)):
                ctx.set(dut.drop, 1)
                await ctx.tick()
                ctx.set(dut.drop, 0)
                dropped.append(ctx.get(dut.value))
            seen.append((reg, value, dropped))
            ctx.set(dut.reset, 1)
            await ctx.tick()
            ctx.set(dut.reset, 0)
            assert ctx.get(dut.value) == 0xFFFFFFFF

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    for reg, value, dropped in seen:
        assert value == reg
        assert dropped == [reg >> (8 * (k + 1)) for k in range(len(dropped))]
