"""SDRAM controller against the timing-checking SDRAM model (Amaranth simulator).

* random read/write traffic (seeded) compared with a Python dict, at several clocks, with and
  without I/O registers and with a stalling response consumer;
* the model itself: hand-written command sequences that break one rule each must raise.
"""
import dataclasses
import random

import pytest
from amaranth.sim import Simulator

from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMController
from sim.sdram_model import SDRAMModel, SDRAMTimingError, attach

CHIP = MT48LC16M16A2_6A


def run_traffic(clk_freq, ops, *, seed=0, ready_p=1.0, req_p=1.0, io_delay=0,
                extra_cycles=60, **kw):
    """Run ``ops`` (list of ("w", addr, data) / ("r", addr)) through a controller + model.

    Returns (read results, model, cycles from init_done to the last response)."""
    dut = SDRAMController(clk_freq, extra_read_latency=2 * io_delay, **kw)
    model = SDRAMModel(clk_freq, seed=seed)
    sim = Simulator(dut)
    sim.add_clock(1 / clk_freq)
    attach(sim, dut.pins, model, out_delay=io_delay, in_delay=io_delay)
    rng = random.Random(seed)
    n_reads = sum(op[0] == "r" for op in ops)
    got = []
    t = {}

    async def producer(ctx):
        await ctx.tick().until(dut.init_done)
        for op in ops:
            while rng.random() > req_p:
                await ctx.tick()
            ctx.set(dut.bus.req.valid, 1)
            ctx.set(dut.bus.req.payload.addr, op[1])
            ctx.set(dut.bus.req.payload.write, op[0] == "w")
            ctx.set(dut.bus.req.payload.data,
                    op[2] if op[0] == "w" else rng.getrandbits(dut.data_width))
            await ctx.tick().until(dut.bus.req.ready)
            ctx.set(dut.bus.req.valid, 0)
        for _ in range(extra_cycles):
            await ctx.tick()

    async def consumer(ctx):
        await ctx.tick().until(dut.init_done)
        cycles = 0
        while len(got) < n_reads:
            r = rng.random() < ready_p
            ctx.set(dut.bus.resp.ready, r)
            _, _, valid, data = await ctx.tick().sample(dut.bus.resp.valid, dut.bus.resp.payload)
            cycles += 1
            if r and valid:
                got.append(data)
        t["cycles"] = cycles

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return got, model, dut


def random_ops(rng, n, *, addr_space, p_write=0.5, data_width=16):
    """Random traffic over a few hot rows plus random addresses; reads only of written words."""
    ops, written = [], {}
    hot = [rng.randrange(addr_space) & ~0x1FF for _ in range(6)]
    for _ in range(n):
        if rng.random() < 0.7:
            addr = (rng.choice(hot) + rng.randrange(512)) % addr_space
        else:
            addr = rng.randrange(addr_space)
        if not written or rng.random() < p_write:
            data = rng.getrandbits(data_width)
            ops.append(("w", addr, data))
            written[addr] = data
        else:
            ops.append(("r", rng.choice(list(written))))
    return ops


def reference(ops):
    mem, out = {}, []
    for op in ops:
        if op[0] == "w":
            mem[op[1]] = op[2]
        else:
            out.append(mem[op[1]])
    return out


@pytest.mark.parametrize("clk_freq,io_delay,ready_p,seed", [
    (25e6, 0, 1.0, 1),
    (25e6, 1, 0.5, 2),
    (100e6, 0, 0.7, 3),
    (100e6, 1, 1.0, 4),
    (143e6, 1, 0.6, 5),
])
def test_random_traffic(clk_freq, io_delay, ready_p, seed):
    rng = random.Random(seed)
    ops = random_ops(rng, 600, addr_space=1 << CHIP.addr_width)
    got, model, _ = run_traffic(clk_freq, ops, seed=seed, ready_p=ready_p, req_p=0.8,
                                io_delay=io_delay)
    assert got == reference(ops)
    assert model.stats.reads == sum(op[0] == "r" for op in ops)
    assert model.stats.writes == sum(op[0] == "w" for op in ops)


@pytest.mark.parametrize("clk_freq,io_delay,bl,seed", [
    (50e6, 1, 2, 31),
    (100e6, 1, 4, 32),
    (25e6, 0, 8, 33),
])
def test_random_traffic_bursts(clk_freq, io_delay, bl, seed):
    """Burst mode: one memory-port word = a burst of BL columns (16·BL-bit words)."""
    rng = random.Random(seed)
    aw = CHIP.addr_width - (bl.bit_length() - 1)
    ops = random_ops(rng, 500, addr_space=1 << aw, data_width=16 * bl)
    got, model, dut = run_traffic(clk_freq, ops, seed=seed, ready_p=0.7, req_p=0.8,
                                  io_delay=io_delay, burst_length=bl)
    assert dut.data_width == 16 * bl and dut.addr_width == aw
    assert model.burst_length == bl
    assert got == reference(ops)
    assert model.stats.writes == sum(op[0] == "w" for op in ops)


def test_refresh_keeps_up():
    """A long, dense run crossing many refresh intervals: the model checks the refresh rate
    and tRAS(max); the controller must have refreshed about every tREFI."""
    clk = 50e6
    ops = []
    base = 0x12345 & ~0x1FF
    for i in range(3000):
        ops.append(("w", base + (i % 700), i & 0xFFFF))
        ops.append(("r", base + (i % 700)))
    got, model, dut = run_traffic(clk, ops, seed=7, ready_p=0.9)
    assert got == reference(ops)
    elapsed_ns = (model.cycle - model.t_ready) * 1e9 / clk
    assert model.refreshes >= int(elapsed_ns // CHIP.tREFI) - 1
    assert model.refreshes > 5


# ---- the checker must be able to fail --------------------------------------------------------

class Seq:
    """Drive the model by hand: ``nop(n)`` and named commands, one per edge."""

    def __init__(self, clk_freq=100e6, chip=CHIP):
        self.m = SDRAMModel(clk_freq, chip)
        self.tck = 1e9 / clk_freq

    def cmd(self, name, ba=0, a=0, dq=0, dq_oe=0):
        ras, cas, we = {"NOP": (1, 1, 1), "ACTIVE": (0, 1, 1), "READ": (1, 0, 1),
                        "WRITE": (1, 0, 0), "PRECHARGE": (0, 1, 0), "REFRESH": (0, 0, 1),
                        "LMR": (0, 0, 0)}[name]
        self.m.edge(cs_n=0, ras_n=ras, cas_n=cas, we_n=we, ba=ba, a=a, dq=dq,
                    dq_oe=dq_oe or name == "WRITE")
        return self

    def nop(self, n=1):
        for _ in range(n):
            self.cmd("NOP")
        return self

    def init(self, cl=2, bl=1):
        self.nop(int(100e3 / self.tck) + 1)
        self.cmd("PRECHARGE", a=1 << 10).nop(2)
        self.cmd("REFRESH").nop(6).cmd("REFRESH").nop(6)
        self.cmd("LMR", a=(cl << 4) | (bl.bit_length() - 1)).nop(2)
        return self


def test_model_accepts_legal_sequence():
    s = Seq().init()
    s.cmd("ACTIVE", ba=1, a=77).nop(1).cmd("WRITE", ba=1, a=5, dq=0xBEEF).cmd("READ", ba=1, a=5)
    assert s.m.dq_for_edge(s.m.cycle + 2) == 0xBEEF
    s.nop(3).cmd("PRECHARGE", ba=1).nop(1).cmd("ACTIVE", ba=1, a=78)


VIOLATIONS = {
    "power-up": lambda s: s.nop(100).cmd("PRECHARGE", a=1 << 10),
    "no-init": lambda s: s.nop(10001).cmd("ACTIVE", a=1),
    "lmr-before-refresh": lambda s: s.nop(10001).cmd("PRECHARGE", a=1 << 10).nop(2)
        .cmd("LMR", a=0x20),
    "tMRD": lambda s: s.nop(10001).cmd("PRECHARGE", a=1 << 10).nop(2).cmd("REFRESH").nop(6)
        .cmd("REFRESH").nop(6).cmd("LMR", a=0x20).cmd("ACTIVE"),
    "cl2-too-fast": lambda s: Seq(150e6).init(cl=2),
    "tRCD": lambda s: s.init().cmd("ACTIVE", a=3).cmd("READ"),
    "closed-bank": lambda s: s.init().cmd("READ", ba=2),
    "open-bank": lambda s: s.init().cmd("ACTIVE", a=3).nop(10).cmd("ACTIVE", a=4),
    "tRAS": lambda s: s.init().cmd("ACTIVE", a=3).nop(2).cmd("PRECHARGE"),
    "tRP": lambda s: s.init().cmd("ACTIVE", a=3).nop(5).cmd("PRECHARGE").cmd("ACTIVE", a=4),
    # tRAS + tRP already cover tRC on this chip: check the rule on a chip with a longer tRC
    "tRC": lambda s: Seq(chip=dataclasses.replace(CHIP, tRC=80)).init().cmd("ACTIVE", a=3).nop(4).cmd("PRECHARGE").nop(1)
        .cmd("ACTIVE", a=4),
    "tRRD": lambda s: s.init().cmd("ACTIVE", a=3).cmd("ACTIVE", ba=1, a=4),
    "tWR": lambda s: s.init().cmd("ACTIVE", a=3).nop(5).cmd("WRITE", a=1).cmd("PRECHARGE"),
    "tRFC": lambda s: s.init().cmd("REFRESH").nop(3).cmd("ACTIVE"),
    "refresh-open-bank": lambda s: s.init().cmd("ACTIVE").nop(8).cmd("REFRESH"),
    "turnaround": lambda s: s.init().cmd("ACTIVE").nop(2).cmd("READ").nop(1).cmd("WRITE"),
    "contention": lambda s: s.init().cmd("ACTIVE").nop(2).cmd("READ").nop(1)
        .cmd("NOP", dq_oe=1),
    "burst-interrupted": lambda s: s.init(bl=4).cmd("ACTIVE").nop(2).cmd("READ").nop(1)
        .cmd("READ", a=4),
    "read-burst-truncated": lambda s: s.init(bl=4).cmd("ACTIVE").nop(5).cmd("READ")
        .cmd("PRECHARGE"),
    "write-beat-missing": lambda s: s.init(bl=2).cmd("ACTIVE").nop(2).cmd("WRITE")
        .cmd("NOP", dq_oe=0),
    "write-burst-turnaround": lambda s: s.init(bl=2).cmd("ACTIVE").nop(2).cmd("READ").nop(3)
        .cmd("WRITE"),
    "refresh-starved": lambda s: s.init().nop(int(9 * 7812.5 / 10) + 10),
    "tRAS-max": lambda s: s.init().cmd("ACTIVE").nop(int(120e3 / 10) + 2),
}


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_model_detects_violation(name):
    s = Seq()
    if name == "tRAS-max":
        s.m.postpone = 10**6          # isolate the rule from refresh starvation
    with pytest.raises(SDRAMTimingError):
        VIOLATIONS[name](s)


def test_model_burst_data():
    s = Seq().init(bl=4)
    s.cmd("ACTIVE", ba=2, a=9).nop(2).cmd("WRITE", ba=2, a=8, dq=1)
    for v in (2, 3, 4):
        s.cmd("NOP", dq=v, dq_oe=1)
    s.nop(2).cmd("READ", ba=2, a=10)          # wraps inside the aligned burst: 10, 11, 8, 9
    e = s.m.cycle + 2
    assert [s.m.dq_for_edge(e + i) for i in range(4)] == [3, 4, 1, 2]


def test_model_data_is_stored():
    s = Seq().init()
    s.cmd("ACTIVE", ba=3, a=100).nop(2).cmd("WRITE", ba=3, a=9, dq=0x1234).nop(3)
    s.cmd("PRECHARGE", ba=3).nop(2).cmd("ACTIVE", ba=3, a=100).nop(2).cmd("READ", ba=3, a=9)
    assert s.m.dq_for_edge(s.m.cycle + 2) == 0x1234


def measure_efficiency(clk_freq, pattern, n=2000, io_delay=1, seed=11, bl=1):
    """Words per cycle for ``n`` back-to-back requests (producer always valid, consumer always
    ready), from the first request to the last response/write, refreshes included."""
    rng = random.Random(seed)
    dut = SDRAMController(clk_freq, extra_read_latency=2 * io_delay, burst_length=bl)
    model = SDRAMModel(clk_freq, seed=seed)
    sim = Simulator(dut)
    sim.add_clock(1 / clk_freq)
    attach(sim, dut.pins, model, out_delay=io_delay, in_delay=io_delay)
    if pattern == "seq":
        addrs = list(range(n))
    else:
        addrs = [rng.randrange(1 << dut.addr_width) for _ in range(n)]
    res = {}

    async def tb(ctx):
        await ctx.tick().until(dut.init_done)
        ctx.set(dut.bus.resp.ready, 1)
        for phase in ("w", "r"):
            issued = got = cycles = 0
            while (got if phase == "r" else issued) < n:
                ctx.set(dut.bus.req.valid, issued < n)
                ctx.set(dut.bus.req.payload.addr, addrs[min(issued, n - 1)])
                ctx.set(dut.bus.req.payload.write, phase == "w")
                ctx.set(dut.bus.req.payload.data, addrs[min(issued, n - 1)] & 0xFFFF)
                _, _, rdy, rv, rd = await ctx.tick().sample(
                    dut.bus.req.ready, dut.bus.resp.valid, dut.bus.resp.payload)
                cycles += 1
                if rdy and issued < n:
                    issued += 1
                if rv:
                    assert rd == addrs[got] & 0xFFFF
                    got += 1
            ctx.set(dut.bus.req.valid, 0)
            res[phase] = n / cycles
            for _ in range(10):
                await ctx.tick()

    sim.add_testbench(tb)
    sim.run()
    return res


def test_efficiency_sequential():
    """Streaming in one row after another: close to one word per cycle (reads pay one CAS
    latency once; row changes and refreshes cost the rest)."""
    eff = measure_efficiency(50e6, "seq")
    assert eff["w"] > 0.9 and eff["r"] > 0.85, eff


def test_efficiency_burst2_sequential():
    """32-bit words as bursts of 2: close to one word per two cycles (DQ busy every cycle)."""
    eff = measure_efficiency(50e6, "seq", n=1000, bl=2)
    assert eff["w"] > 0.45 and eff["r"] > 0.43, eff


@pytest.mark.slow
@pytest.mark.parametrize("bl", [1, 2])
@pytest.mark.parametrize("clk_freq", [50e6, 100e6])
@pytest.mark.parametrize("pattern", ["seq", "random"])
def test_efficiency_report(clk_freq, pattern, bl):
    eff = measure_efficiency(clk_freq, pattern, bl=bl)
    print(f"\nSDRAM efficiency BL{bl} {clk_freq / 1e6:.0f} MHz {pattern}: writes "
          f"{eff['w']:.3f}, reads {eff['r']:.3f} words/cycle "
          f"(DQ utilisation {eff['w'] * bl:.3f} / {eff['r'] * bl:.3f})")
    assert eff["w"] > 0.05 and eff["r"] > 0.05
