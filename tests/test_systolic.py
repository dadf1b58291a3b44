"""hw.engine.systolic.SystolicArray against NumPy (Amaranth's simulator: small array, no build)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.engine.systolic import SystolicArray


@pytest.mark.parametrize("rows,cols,dw,hop,regs", [
    (3, 4, 0, 1, True), (3, 4, 1, 1, True), (4, 2, 0, 1, True), (4, 2, 1, 1, True),
    (9, 2, 0, 1, True), (3, 4, 0, 2, True), (4, 2, 1, 3, True),
    # without the fabric registers (the UP5K's 2×4 array)
    (2, 4, 0, 1, False), (2, 4, 1, 1, False), (3, 2, 0, 2, False)])
def test_systolic_skewed_dot_products(rows, cols, dw, hop, regs):
    """The column sums leave ``sum_latency`` cycles after row 0's operands (the figure the
    engine's beat flags and cycle model use): read at that offset they are the dot products."""
    rng = np.random.default_rng(rows * 10 + cols + dw)
    dut = SystolicArray(rows, cols, hop=hop, fabric_regs=regs)
    L, T = dut.lanes, 12
    x = rng.integers(-128, 128, (T, rows, L))
    w = rng.integers(-128, 128, (T, rows, cols))
    lane = rng.integers(0, L, (T, rows))
    # extreme column sums (the partial sums are only psum_width(rows) bits wide)
    x[0], w[0] = -128, -128                         # rows · 2^14
    x[1], w[1] = -128, 127                          # −rows · 128 · 127
    # reference: column c of beat t = Σ_r x[t, r, sel] · w[t, r, c]
    want = np.zeros((T, cols), dtype=np.int64)
    for t in range(T):
        for r in range(rows):
            for c in range(cols):
                sel = c if dw else lane[t, r]
                want[t, c] += x[t, r, sel] * w[t, r, c]
    got = np.zeros((T, cols), dtype=np.int64)

    async def bench(ctx):
        ctx.set(dut.dw, dw)
        lat = dut.sum_latency
        for k in range(T + lat + 1):
            t_out = k - lat
            if 0 <= t_out < T:
                for c in range(cols):
                    got[t_out, c] = ctx.get(dut.psum[c])
            for r in range(rows):
                t = k - r * hop                     # row r runs r·hop cycles behind row 0
                live = 0 <= t < T
                for ln in range(L):
                    ctx.set(dut.x[r][ln], int(x[t, r, ln]) if live else 0)
                for c in range(cols):
                    ctx.set(dut.w[r][c], int(w[t, r, c]) if live else 0)
                ctx.set(dut.lane[r], int(lane[t, r]) if live else 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(got, want)
