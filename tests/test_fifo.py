"""hw.memory.fifo.BufferedFIFO: the order and flow of a FIFO under random pushes and pops (a
Python deque beside it), its memory never read at the address written in the same cycle (what
its marking claims), and on iCE40 the marking removes the read-during-write emulation."""
from collections import deque

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal

from host.synthesis import undefined_collisions
from hw.memory.fifo import BufferedFIFO
from sim.amsim import run
from sim.yosys_cells import cell_counts


@pytest.mark.parametrize("depth,seed", [(2, 1), (5, 2), (16, 3), (64, 4)])
def test_order_flow_and_no_collisions(depth, seed):
    rng = np.random.default_rng(seed)
    dut = BufferedFIFO(width=8, depth=depth)
    m = Module()
    m.submodules.fifo = dut
    model, popped, expect = deque(), [], []
    collisions = []

    async def tb(ctx):
        w, r = dut.storage.write_ports[0], dut.storage.read_ports[0]
        for t in range(1500):
            busy = (t // 200) % 2                       # phases that fill it, and drain it
            push = int(rng.random() < (0.8 if busy else 0.3))
            pop = int(rng.random() < (0.3 if busy else 0.8))
            value = int(rng.integers(0, 256))
            ctx.set(dut.w_en, push)
            ctx.set(dut.w_data, value)
            ctx.set(dut.r_en, pop)
            w_rdy, r_rdy, r_data = ctx.get(dut.w_rdy), ctx.get(dut.r_rdy), ctx.get(dut.r_data)
            if ctx.get(w.en) and ctx.get(r.en) and ctx.get(w.addr) == ctx.get(r.addr):
                collisions.append(t)
            if pop and r_rdy:
                popped.append(r_data)
                expect.append(model.popleft())
            if push and w_rdy:
                model.append(value)
            assert len(model) <= depth
            await ctx.tick()

    run(m, tb)
    assert popped == expect and len(popped) > 300
    assert not collisions


def test_marking_removes_the_emulation_on_ice40():
    dut = BufferedFIFO(width=16, depth=256)
    m = Module()
    m.submodules.fifo = dut
    ports = [dut.w_data, dut.w_en, dut.r_en, dut.r_data, dut.r_rdy, dut.w_rdy]
    text = rtlil.convert(m, name="top", ports=ports)
    ffs = [sum(n for c, n in cell_counts(t, "ice40").items() if c.startswith("SB_DFF"))
           for t in (text, undefined_collisions(text))]
    assert ffs[1] <= ffs[0] - 16                  # the written word's register, at least
