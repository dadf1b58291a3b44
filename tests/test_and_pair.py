"""hw.engine.and_pair.AndPairSum: the hand-instantiated ECP5 carry cells (simulated with yosys's own
CCU2C model) and the generic version both equal a·s0 + 2·a·s1, for odd and even widths."""
import numpy as np
import pytest

from hw.engine.and_pair import AndPairSum, ccu2c_init
from sim.ecp5_cells import cell_models
from sim.runner import run_cocotb, to_verilog


def test_lut_truth_table_and_its_generate_corner():
    init = ccu2c_init()
    for idx in range(16):
        a, b, c, d = (idx >> k & 1 for k in range(4))
        assert (init >> idx) & 1 == (a & b) ^ (c & d)
    # the carry cell's generate is the LUT at C = D = 0: a·s0 (what the sum carries when the
    # two products agree)
    assert [(init >> i) & 1 for i in range(4)] == [0, 0, 0, 1]


# the requant lane's width in the ECP5's carry cells in make test; the others slow (a build each)
@pytest.mark.parametrize("width,cells", [
    (31, "ecp5"), pytest.param(8, "ecp5", marks=pytest.mark.slow),
    pytest.param(31, "generic", marks=pytest.mark.slow)])
def test_and_pair_sum(width, cells):
    rng = np.random.default_rng(width)
    n = 300
    a = rng.integers(0, 1 << width, n, dtype=np.int64)
    a[:4] = [0, (1 << width) - 1, (1 << width) - 1, 1]
    s0 = rng.integers(0, 2, n)
    s1 = rng.integers(0, 2, n)
    s0[:4], s1[:4] = [1, 1, 0, 1], [1, 1, 1, 0]
    dut = AndPairSum(width, cells=cells)
    design = to_verilog(dut) + cell_models() if cells == "ecp5" else dut
    out = run_cocotb(design, "sim.tb_and_pair", inputs=dict(a=a, s0=s0, s1=s1))
    np.testing.assert_array_equal(out["o"], a * s0 + 2 * a * s1)
