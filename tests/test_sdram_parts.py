"""The SDRAM parts table (``hw/memory/sdram_parts.py``): the controller built for the worst case
runs against the timing-checking model of every fitted part, configured from that part's own
datasheet values; a controller built for a faster part than the one fitted fails."""
import dataclasses
import random

import pytest
from amaranth.sim import Simulator

from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMController
from hw.memory.sdram_parts import PARTS, WORST_CASE, part, worst_case
from sim.sdram_model import SDRAMModel, SDRAMTimingError, attach


def run(ctrl_chip, model_chip, clk=100e6, n=120, seed=1, **kw):
    """Random traffic (row misses included) through controller + model; returns reads, expected."""
    init = dict(init_us=5.0)
    dut = SDRAMController(clk, chip=dataclasses.replace(ctrl_chip, **init), init_wait_us=5.0,
                          extra_read_latency=2, **kw)
    model = SDRAMModel(clk, dataclasses.replace(model_chip, **init), seed=seed)
    sim = Simulator(dut)
    sim.add_clock(1 / clk)
    attach(sim, dut.pins, model, out_delay=1, in_delay=1)
    rng = random.Random(seed)
    mem, ops = {}, []
    for _ in range(n):
        a = rng.randrange(1 << dut.addr_width) if rng.random() < 0.6 else rng.randrange(64)
        if not mem or rng.random() < 0.5:
            mem[a] = rng.getrandbits(dut.data_width)
            ops.append((1, a, mem[a]))
        else:
            a = rng.choice(list(mem))
            ops.append((0, a, mem[a]))
    got = []

    async def tb(ctx):
        while not ctx.get(dut.init_done):   # a plain loop ends cleanly on a model error
            await ctx.tick()
        ctx.set(dut.bus.resp.ready, 1)
        want = sum(1 for o in ops if not o[0])
        i = 0
        while len(got) < want:
            if i < len(ops):
                ctx.set(dut.bus.req.valid, 1)
                ctx.set(dut.bus.req.payload.write, ops[i][0])
                ctx.set(dut.bus.req.payload.addr, ops[i][1])
                ctx.set(dut.bus.req.payload.data, ops[i][2])
            else:
                ctx.set(dut.bus.req.valid, 0)
            _, _, rdy, rv, rd = await ctx.tick().sample(dut.bus.req.ready, dut.bus.resp.valid,
                                                        dut.bus.resp.payload)
            i += bool(rdy and i < len(ops))
            if rv:
                got.append(rd)

    sim.add_testbench(tb)
    sim.run()
    return got, [o[2] for o in ops if not o[0]], model


@pytest.mark.parametrize("name", sorted(PARTS))
def test_worst_case_controller_fits_every_part(name):
    got, want, model = run(WORST_CASE, PARTS[name], burst_length=2)
    assert got == want and model.stats.reads == len(want)


@pytest.mark.parametrize("rule,ctrl_chip", [
    # the timings the controller had before the parts table: MT48LC16M16A2-6A's 18/18/60 ns
    ("tRCD|tRP|tRC", MT48LC16M16A2_6A),
    # a "worst case" that forgot one part
    ("tRCD|tRP|tRC", worst_case([p for n, p in PARTS.items() if n != "AS4C32M16SB-7"])),
])
def test_controller_shorter_than_the_part_fails(rule, ctrl_chip):
    with pytest.raises(SDRAMTimingError, match=rule):
        run(ctrl_chip, PARTS["AS4C32M16SB-7"])


def test_cl2_needs_10ns_on_the_6a():
    """Micron's -6A needs tCK ≥ 10 ns at CAS latency 2 (7.5 ns is the -7E's): a controller
    with the -7E figure picks CL2 at 120 MHz and the -6A model refuses the mode register."""
    old = dataclasses.replace(MT48LC16M16A2_6A, tCK_cl2=7.5)
    with pytest.raises(SDRAMTimingError, match="CL2 needs tCK"):
        run(old, MT48LC16M16A2_6A, clk=120e6, n=4)


def test_worst_case_covers_each_part():
    for p in PARTS.values():
        for f in ("tRCD", "tRP", "tRC", "tRFC", "tRAS", "tWR", "tRRD", "tCK_cl2", "tCK_cl3",
                  "tAC_cl2", "tAC_cl3"):
            assert getattr(WORST_CASE, f) >= getattr(p, f), (p.name, f)
        assert WORST_CASE.tOH <= p.tOH and WORST_CASE.tRAS_max <= p.tRAS_max
    assert (WORST_CASE.tRCD, WORST_CASE.tRP, WORST_CASE.tRC, WORST_CASE.tRFC) == (21, 21, 63, 63)


def test_part_lookup():
    assert part(None) is WORST_CASE and part("AS4C32M16SB-7").tRCD == 21
    with pytest.raises(ValueError, match="unknown SDRAM part 'X'.*IS42S16160G-7"):
        part("X")


def test_ulx3s_top_uses_the_worst_case_by_default():
    from hw.soc.top import BoardTop
    for name, want in ((None, WORST_CASE), ("AS4C32M16SB-7", PARTS["AS4C32M16SB-7"])):
        top = BoardTop("ulx3s-85f", sdram_part=name)
        top._MustUse__silence = True          # constructed for its attributes only
        assert top.sdram_chip is want
