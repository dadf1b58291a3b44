"""The simulated SoC's SDRAM (``sim.sim_sdram``): the board's controller against the Verilog
chip model, Verilated together.  Seeded random traffic must read back what was written with no
rule broken; controllers built for timings shorter than the fitted part's must be caught by the
rule they break."""
import dataclasses

import numpy as np
import pytest

from hw.memory.sdram_parts import WORST_CASE
from sim import runner
from sim.sdram_model import PINS
from sim.sim_sdram import RULES, VERILOG, SimSDRAM
from tests.test_sdram_rtl import expected_reads, make_ops

CLK = 100e6


def run(dut, ops, *, seed=1, ready_p=0.7, max_cycles=200_000, idle=20):
    return runner.run_cocotb(runner.to_verilog(dut) + VERILOG, "sim.tb_sim_sdram", inputs=dict(
        ops=ops, aw=dut.ctrl.addr_width,
        ready_p=ready_p, seed=seed, max_cycles=max_cycles, idle=idle))


@pytest.mark.parametrize("seed,ready_p", [(5, 0.7), pytest.param(6, 1.0, marks=pytest.mark.slow)])
def test_random_traffic_reads_back_and_keeps_every_rule(seed, ready_p):
    dut = SimSDRAM(CLK, fatal=False)
    ops = make_ops(seed, 1200, bl=2)
    out = run(dut, ops, seed=seed, ready_p=ready_p)
    assert int(out["error"]) == 0, RULES[int(out["error"]) - 1]
    assert list(out["reads"]) == expected_reads(ops)
    assert int(out["model_writes"]) == int(np.sum(ops[:, 0] == 1))
    assert int(out["model_reads"]) == int(np.sum(ops[:, 0] == 0))


@pytest.mark.parametrize("change,rule,idle", [
    (dict(tRCD=6.0), "tRCD", 20),
    # each rule is a Verilator build of its own (~35 s): one in make test, the rest slow
    pytest.param(dict(tWR=2.0), "tWR", 20, marks=pytest.mark.slow),
    pytest.param(dict(tRAS=10.0, tRC=30.0), "tRAS", 20, marks=pytest.mark.slow),
    pytest.param(dict(tREF_ms=640.0), "refresh interval", 120_000, marks=pytest.mark.slow),
])
def test_a_controller_shorter_than_the_part_is_caught(change, rule, idle):
    dut = SimSDRAM(CLK, controller_chip=dataclasses.replace(WORST_CASE, **change), fatal=False)
    ops = make_ops(7, 300, bl=2)
    out = run(dut, ops, idle=idle)
    assert int(out["error"]) == RULES.index(rule) + 1, \
        RULES[int(out["error"]) - 1] if int(out["error"]) else "no rule broken"


# ---- the Verilog chip model against the Python one, on the same pin traces ------------------


def controller_trace(seed, n_ops=160):
    """The pins of the SDRAM controller (100 MHz, burst 2, the fitted part's timings) over
    seeded random traffic, one row per rising edge, from the Amaranth simulator."""
    import random

    from amaranth.sim import Simulator

    from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMController
    from tests.test_sdram import random_ops as sdram_ops
    dut = SDRAMController(CLK, chip=MT48LC16M16A2_6A, burst_length=2, init_wait_us=100)
    rng = random.Random(seed)
    ops = sdram_ops(rng, n_ops, addr_space=1 << dut.addr_width, data_width=32)
    rows = []
    sim = Simulator(dut)
    sim.add_clock(1 / CLK)

    async def recorder(ctx):
        async for _clk, _rst, *vals in ctx.tick().sample(*(getattr(dut.pins, n) for n in PINS)):
            rows.append(vals)

    async def producer(ctx):
        ctx.set(dut.bus.resp.ready, 1)
        await ctx.tick().until(dut.init_done)
        for op in ops:
            ctx.set(dut.bus.req.valid, 1)
            ctx.set(dut.bus.req.payload.addr, op[1])
            ctx.set(dut.bus.req.payload.write, op[0] == "w")
            ctx.set(dut.bus.req.payload.data, op[2] if op[0] == "w" else 0)
            await ctx.tick().until(dut.bus.req.ready)
            ctx.set(dut.bus.req.valid, 0)
            for _ in range(rng.choice((0, 0, 0, 1, 5))):
                await ctx.tick()
        for _ in range(40):
            await ctx.tick()

    sim.add_process(recorder)
    sim.add_testbench(producer)
    sim.run()
    return np.array(rows, dtype=np.int64)


def python_model(trace):
    """(rule broken first or None, its edge or -1, {edge: value the chip drives})."""
    from hw.memory.sdram import MT48LC16M16A2_6A
    from sim.sdram_model import SDRAMModel, SDRAMTimingError
    model = SDRAMModel(CLK, MT48LC16M16A2_6A)
    driven = {}
    for n, r in enumerate(trace):
        try:
            model.edge(cke=r[0], cs_n=r[1], ras_n=r[2], cas_n=r[3], we_n=r[4], ba=r[5], a=r[6],
                       dq=r[7], dq_oe=r[8], dqm=r[9])
        except SDRAMTimingError as e:
            return str(e).split(": ")[1], n, driven
        v = model.dq_for_edge(n + 1)
        if v is not None:
            driven[n] = v
    return None, -1, driven


def verilog_model(trace):
    from hw.memory.sdram import MT48LC16M16A2_6A
    from sim.sim_sdram import model_parameters
    params = ", ".join(f".{k}({v})" for k, v in
                       model_parameters(MT48LC16M16A2_6A, CLK, fatal=False).items())
    top = ("module top(input clk, input cke, input cs_n, input ras_n, input cas_n, "
           "input we_n, input [1:0] ba, input [12:0] a, input [15:0] dq_o, input dq_oe, "
           "input [1:0] dqm, output [15:0] dq_i, output [7:0] error);\n"
           f"  blockfuse_sdram #({params}) chip(.clk(clk), .cke(cke), .cs_n(cs_n), "
           ".ras_n(ras_n), .cas_n(cas_n), .we_n(we_n), .ba(ba), .a(a), .dq_o(dq_o), "
           ".dq_oe(dq_oe), .dqm(dqm), .dq_i(dq_i), .error(error), .reads(), .writes(), "
           ".refreshes());\nendmodule\n")
    out = runner.run_cocotb(VERILOG + top, "sim.tb_sdram_trace", inputs=dict(trace=trace))
    err = int(out["error"])
    return (RULES[err - 1] if err else None), int(out["at"]), out["dq"]


def squeeze(trace, k, n):
    """``trace`` with up to ``n`` idle rows (NOP, DQ not driven) after row ``k`` removed: the
    commands after ``k`` come earlier, as from a controller with shorter timings."""
    idle = [i for i in range(k + 1, min(len(trace), k + 1 + 4 * n))
            if trace[i][1] == 1 or tuple(trace[i][2:5]) == (1, 1, 1)][:n]
    idle = [i for i in idle if not trace[i][8]]
    return np.delete(trace, idle, axis=0)


@pytest.mark.parametrize("seed", [11, 12])
def test_the_verilog_chip_agrees_with_the_python_model(seed):
    """A legal controller trace (no rule broken by either model, the same read data), then
    traces with commands pulled earlier: both models must name the same first rule broken at
    the same edge."""
    trace = controller_trace(seed)
    rule, at, driven = python_model(trace)
    assert rule is None, rule
    v_rule, v_at, dq = verilog_model(trace)
    assert v_rule is None, v_rule
    assert {n: int(dq[n]) for n in driven} == driven
    rng = np.random.default_rng(seed)
    commands = [i for i in range(len(trace)) if trace[i][1] == 0
                and tuple(trace[i][2:5]) != (1, 1, 1)]
    broken = set()
    for k in rng.choice(commands, size=6, replace=False):
        t = squeeze(trace, int(k), int(rng.integers(1, 4)))
        want = python_model(t)[:2]
        assert verilog_model(t)[:2] == want
        broken.add(want[0])
    assert broken - {None}, "no mutation broke a rule"
