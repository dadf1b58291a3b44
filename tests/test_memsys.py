"""SPRAM target (behavioural elaboration), memory-port arbiter and the self-test initiator,
against Python reference models, with random stalls on both streams (seeded)."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hw.memory.memarb import MemPortArbiter
from hw.memory.memtest import MemTest, memtest_pattern
from hw.memory.spram import SPRAMMemory
from hw.stream_slice import MemPortSlice

from test_sdram import reference      # the dict model of a memory the SDRAM tests use


def drive_port(sim, bus, ops, got, rng, *, req_p=0.8, ready_p=0.7, name=""):
    """Producer/consumer testbenches for one initiator-side port."""
    n_reads = sum(op[0] == "r" for op in ops)

    async def producer(ctx):
        for op in ops:
            while rng.random() > req_p:
                await ctx.tick()
            ctx.set(bus.req.valid, 1)
            ctx.set(bus.req.payload.addr, op[1])
            ctx.set(bus.req.payload.write, op[0] == "w")
            ctx.set(bus.req.payload.data, op[2] if op[0] == "w" else 0)
            await ctx.tick().until(bus.req.ready)
            ctx.set(bus.req.valid, 0)

    async def consumer(ctx):
        while len(got) < n_reads:
            r = rng.random() < ready_p
            ctx.set(bus.resp.ready, r)
            _, _, valid, data = await ctx.tick().sample(bus.resp.valid, bus.resp.payload)
            if r and valid:
                got.append(data)

    sim.add_testbench(producer)
    sim.add_testbench(consumer)


def random_ops(rng, n, aw, dw, written=None):
    written = {} if written is None else written
    ops = []
    for _ in range(n):
        if not written or rng.random() < 0.5:
            a, d = rng.randrange(1 << aw), rng.getrandbits(dw)
            ops.append(("w", a, d))
            written[a] = d
        else:
            ops.append(("r", rng.choice(list(written))))
    return ops


@pytest.mark.parametrize("width,seed,ready_p", [(16, 1, 1.0), (32, 2, 0.5), (64, 3, 0.8)])
def test_spram_random(width, seed, ready_p):
    rng = random.Random(seed)
    dut = SPRAMMemory(width, behavioural=True)
    assert dut.depth * width == 4 * 16 * 1024 * 16
    ops = random_ops(rng, 400, dut.addr_width, width)
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    drive_port(sim, dut.bus, ops, got, rng, ready_p=ready_p)
    sim.run()
    assert got == reference(ops)


def test_spram_full_rate():
    """Back-to-back reads with an always-ready consumer: one response per cycle."""
    dut = SPRAMMemory(32, behavioural=True)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    n = 64
    stamps = []

    async def tb(ctx):
        ctx.set(dut.bus.resp.ready, 1)
        ctx.set(dut.bus.req.valid, 1)
        cycle = 0
        issued = 0
        while len(stamps) < n:
            ctx.set(dut.bus.req.payload.addr, issued)
            ctx.set(dut.bus.req.valid, issued < n)
            _, _, rdy, rv = await ctx.tick().sample(dut.bus.req.ready, dut.bus.resp.valid)
            if rdy and issued < n:
                issued += 1
            if rv:
                stamps.append(cycle)
            cycle += 1

    sim.add_testbench(tb)
    sim.run()
    assert stamps[-1] - stamps[0] == n - 1


def test_memport_slice_full_rate():
    """Through a MemPortSlice, back-to-back reads still return one response per cycle."""
    m = Module()
    m.submodules.mem = mem = SPRAMMemory(32, behavioural=True)
    m.submodules.s = s = MemPortSlice(mem.bus.signature.flip())
    wiring.connect(m, s.initiator, mem.bus)
    bus = s.target
    sim = Simulator(m)
    sim.add_clock(1e-8)
    n = 64
    stamps, data = [], []

    async def tb(ctx):
        ctx.set(bus.resp.ready, 1)
        issued = writes = cycle = 0
        while len(stamps) < n:
            if writes < n:           # first fill addresses 0..n-1 with a pattern
                ctx.set(bus.req.payload.write, 1)
                ctx.set(bus.req.payload.addr, writes)
                ctx.set(bus.req.payload.data, writes * 0x01010101)
                ctx.set(bus.req.valid, 1)
            else:
                ctx.set(bus.req.payload.write, 0)
                ctx.set(bus.req.payload.addr, issued)
                ctx.set(bus.req.valid, issued < n)
            _, _, rdy, rv, rd = await ctx.tick().sample(bus.req.ready, bus.resp.valid,
                                                        bus.resp.payload)
            if rdy and writes < n:
                writes += 1
            elif rdy and issued < n:
                issued += 1
            if rv:
                stamps.append(cycle)
                data.append(rd)
            cycle += 1

    sim.add_testbench(tb)
    sim.run()
    assert stamps[-1] - stamps[0] == n - 1
    assert data == [a * 0x01010101 for a in range(n)]


@pytest.mark.parametrize("seed,sliced", [(4, False), (5, False), (6, True), (7, True)])
def test_arbiter_two_initiators(seed, sliced):
    """Two initiators on disjoint address halves share one SPRAM; each sees its own data.
    ``sliced``: as in the board SoC (hw.soc.top), a MemPortSlice on every side of the arbiter."""
    rng = random.Random(seed)
    m = Module()
    m.submodules.arb = arb = MemPortArbiter(2, 15, 32, max_reads=4)
    m.submodules.mem = mem = SPRAMMemory(32, behavioural=True)
    ports = [arb.bus(0), arb.bus(1)]
    if sliced:
        sig = mem.bus.signature.flip()
        m.submodules.ms = ms = MemPortSlice(sig)
        wiring.connect(m, arb.out, ms.target)
        wiring.connect(m, ms.initiator, mem.bus)
        for i in range(2):
            m.submodules[f"s{i}"] = s = MemPortSlice(sig)
            wiring.connect(m, s.initiator, arb.bus(i))
            ports[i] = s.target
    else:
        wiring.connect(m, arb.out, mem.bus)
    ops = []
    for half in range(2):
        o = random_ops(rng, 250, 14, 32)
        ops.append([(op[0], op[1] | (half << 14), *op[2:]) for op in o])
    got = [[], []]
    sim = Simulator(m)
    sim.add_clock(1e-8)
    for i in range(2):
        drive_port(sim, ports[i], ops[i], got[i], random.Random(seed * 10 + i),
                   ready_p=0.6)
    sim.run()
    assert got[0] == reference(ops[0])
    assert got[1] == reference(ops[1])


@pytest.mark.parametrize("corrupt", [False, True])
def test_memtest_detects(corrupt):
    """The self-test passes on a good memory and counts errors when a data bit is stuck."""
    words = 200
    m = Module()
    m.submodules.t = t = MemTest(15, 32, words)
    m.submodules.mem = mem = SPRAMMemory(32, behavioural=True)
    wiring.connect(m, t.bus, mem.bus)
    if corrupt:
        # stuck-at-1 on data bit 3 of the read path: break the connection and re-drive
        m2 = Module()
        m2.submodules.t = t = MemTest(15, 32, words)
        m2.submodules.mem = mem = SPRAMMemory(32, behavioural=True)
        wiring.connect(m2, t.bus.req, mem.bus.req)
        m2.d.comb += [
            t.bus.resp.valid.eq(mem.bus.resp.valid),
            t.bus.resp.payload.eq(mem.bus.resp.payload | 8),
            mem.bus.resp.ready.eq(t.bus.resp.ready),
        ]
        m = m2
    sim = Simulator(m)
    sim.add_clock(1e-8)
    res = {}

    async def tb(ctx):
        await ctx.tick().until(t.done)
        res["errors"] = ctx.get(t.errors)
        res["passes"] = ctx.get(t.passes)

    sim.add_testbench(tb)
    sim.run()
    assert res["passes"] == 1
    expect = sum(1 for a in range(words) if not memtest_pattern(a, 0x5A5A, 32) & 8)
    assert res["errors"] == (expect if corrupt else 0)
    assert not corrupt or expect > 0


@pytest.mark.parametrize("width,seed", [(32, 3), (16, 4)])
def test_spram_blocks_with_the_toolchains_model(width, seed):
    """The SPRAM target with its ``SB_SPRAM256KA`` instances (what the iCEBreaker bitstream
    holds), simulated under Verilator with yosys's own model of the primitive: seeded random
    traffic over every block reads back what was written."""
    import numpy as np

    from sim import runner
    from sim.ice40_cells import sb_spram256ka
    from test_sdram import random_ops
    dut = SPRAMMemory(width, primitives=True)
    ops = random_ops(random.Random(seed), 1500, addr_space=dut.depth, data_width=width)
    table = np.array([(op[0] == "w", op[1], op[2] if op[0] == "w" else 0) for op in ops],
                     dtype=np.int64)
    out = runner.run_cocotb(runner.to_verilog(dut) + sb_spram256ka(), "sim.tb_memport",
                            inputs=dict(ops=table, aw=dut.addr_width, ready_p=0.7, seed=seed))
    assert list(out["reads"]) == reference(ops)
