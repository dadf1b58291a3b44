"""hw.engine.drain.column_accumulators against a running sum per column (Amaranth's simulator;
the engine as a whole is checked under Verilator in tests/test_engine.py)."""
import numpy as np
import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.engine.drain import column_accumulators


class _Accumulators(wiring.Component):
    """The accumulators alone, their sums brought out as ports."""

    def __init__(self, cols: int):
        self.cols = cols
        word = data.ArrayLayout(signed(32), cols)
        super().__init__({"psum": In(word), "go": In(1), "last": In(1),
                          "acc": Out(word), "total": Out(word)})

    def elaborate(self, platform):
        m = Module()
        accs, totals = column_accumulators(m, self.psum, self.go, self.last)
        for c in range(self.cols):
            m.d.comb += [self.acc[c].eq(accs[c]), self.total[c].eq(totals[c])]
        return m


def _wrap32(v):
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


@pytest.mark.parametrize("cols,seed", [(1, 0), (3, 1), (4, 2)])
def test_column_sums_per_pixel(cols, seed):
    """``total`` is the open pixel's sum plus this cycle's ``psum``; a ``go`` beat moves it to
    ``acc`` and, after the pixel's ``last`` beat, starts the next pixel at 0; cycles without
    ``go`` change nothing. Extreme sums check the int32 wrap."""
    rng = np.random.default_rng(seed)
    n = 200
    psum = rng.integers(-(1 << 31), 1 << 31, (n, cols))
    psum[:20] = (1 << 31) - 1                      # a pixel of maximal sums: wraps
    go = rng.random(n) < 0.7
    last = rng.random(n) < 0.3
    dut = _Accumulators(cols)

    async def bench(ctx):
        open_sum, acc = np.zeros(cols, dtype=np.int64), np.zeros(cols, dtype=np.int64)
        for t in range(n):
            ctx.set(dut.go, int(go[t]))
            ctx.set(dut.last, int(last[t]))
            for c in range(cols):
                ctx.set(dut.psum[c], int(psum[t, c]))
            total = _wrap32(open_sum + psum[t])
            assert [ctx.get(dut.total[c]) for c in range(cols)] == list(total), t
            assert [ctx.get(dut.acc[c]) for c in range(cols)] == list(acc), t
            await ctx.tick()
            if go[t]:
                acc = total
                open_sum = np.zeros(cols, dtype=np.int64) if last[t] else total

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
