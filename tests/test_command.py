"""Command processor (LinkCore + block RAM + engine stub, no UART) against the reference model,
in the Amaranth simulator."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from host.runtime import protocol as P
from hw.memory.bram import BRAMTarget
from hw.soc.link_soc import EngineStub, LinkCore
from tests.link_cases import compare_replies, expected_replies, make_cases
from sim.amsim import stream_put


def make_core(info):
    m = Module()
    m.submodules.core = core = LinkCore(info)
    m.submodules.ram = ram = BRAMTarget(info.mem_bytes // info.word_bytes, 8 * info.word_bytes)
    m.submodules.eng = eng = EngineStub(info.n_perf)
    connect(m, core.mem, ram.bus)
    connect(m, core.engine, eng.ctrl)
    return m, core, ram


def run_wire(info, chunks, n_replies, read_mem=False):
    m, core, ram = make_core(info)
    got = []
    mem_after = []

    async def feed(ctx):
        for c in chunks:
            for b in c:
                await stream_put(ctx, core.rx, b)

    async def collect(ctx):
        cur = bytearray()
        ctx.set(core.tx.ready, 1)
        while len(got) < n_replies:
            _, _, valid, b = await ctx.tick().sample(core.tx.valid, core.tx.payload)
            if not valid:
                continue
            if b == 0:
                got.append(bytes(cur))
                cur.clear()
            else:
                cur.append(b)
        for _ in range(20):
            await ctx.tick()
        if read_mem:
            for a in range(ram.depth):
                mem_after.append(ctx.get(ram.mem.data[a]))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    return got, mem_after


def small_info(wb=4):
    return P.DeviceInfo(board="test", clock_hz=1000, mem_bytes=256, word_bytes=wb,
                        max_payload=32, n_perf=2, version_hash=0x1234_5678_9ABC_DEF0)


def decode_replies(got):
    out = []
    for enc in got:
        body, err = P.check_frame(enc)
        assert err is None, f"device sent a bad frame: {enc.hex()}"
        out.append(body)
    return out


def test_info_write_read():
    info = small_info()
    data = bytes(range(1, 33))
    chunks = [P.frame(P.req_info(1)), P.frame(P.req_write(2, 64, data)),
              P.frame(P.req_read(3, 64, 32)), P.frame(P.req_read(4, 68, 8)),
              P.frame(P.req_status(5))]
    got, _ = run_wire(info, chunks, 5)
    r = [P.Reply.parse(b) for b in decode_replies(got)]
    assert [x.status for x in r] == [0] * 5
    assert [x.tag for x in r] == [1, 2, 3, 4, 5]
    assert P.DeviceInfo.unpack(r[0].payload) == info
    assert r[1].payload == b""
    assert r[2].payload == data and r[3].payload == data[4:12]
    st = P.parse_status(r[4].payload, 2)
    assert st["frames_ok"] == 5 and st["frames_bad"] == 0 and st["uptime"] > 100


def test_start_busy_status():
    info = small_info()
    chunks = [P.frame(P.req_start(1, 500)), P.frame(P.req_start(2, 5)),
              P.frame(P.req_status(3))]
    got, _ = run_wire(info, chunks, 3)
    r = [P.Reply.parse(b) for b in decode_replies(got)]
    assert r[0].status == P.Status.OK
    assert r[1].status == P.Status.BUSY
    st = P.parse_status(r[2].payload, 2)
    assert st["busy"] and st["perf"][0] == 1 and st["engine_cycles"] > 0
    assert st["frames_bad"] == 1


@pytest.mark.parametrize("seed,wb", [(1, 4), (2, 1), (3, 2)])
def test_random_traffic_matches_model(seed, wb):
    """Mixed good/bad frames: replies equal the model's, and memory equals the model's memory
    (so no refused frame wrote anything)."""
    rng = random.Random(seed)
    info = small_info(wb)
    model = P.DeviceModel(info)
    chunks = make_cases(rng, info, 40)
    # end with a read of the whole memory so the comparison covers every byte
    chunks += [P.frame(P.req_read(0xAA, a, 32)) for a in range(0, 256, 32)]
    wire = b"".join(chunks)
    expect = expected_replies(model, wire)
    got, mem = run_wire(info, chunks, len(expect), read_mem=True)
    compare_replies(decode_replies(got), expect, info.n_perf)
    mem_bytes = b"".join(int(w).to_bytes(wb, "little") for w in mem)
    assert mem_bytes == bytes(model.mem)
