"""The SDRAM controller's Verilog (Verilator, cocotb) against the timing-checking model: seeded
random traffic compared with a Python dict, and a deliberately mis-configured controller whose
violations the model must catch through the whole RTL loop."""
import dataclasses
import random

import numpy as np
import pytest

from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMController
from sim.runner import SimulationError, run_cocotb

CHIP = MT48LC16M16A2_6A


def make_ops(seed, n, bl=1):
    rng = random.Random(seed)
    aw = CHIP.addr_width - (bl.bit_length() - 1)
    written = {}
    ops = []
    hot = [rng.randrange(1 << CHIP.addr_width) & ~0x1FF for _ in range(5)]
    for _ in range(n):
        if not written or rng.random() < 0.5:
            a = (rng.choice(hot) + rng.randrange(512)) % (1 << aw) if rng.random() < 0.7 \
                else rng.randrange(1 << aw)
            d = rng.getrandbits(min(16 * bl, 62))
            written[a] = d
            ops.append((1, a, d))
        else:
            ops.append((0, rng.choice(list(written)), 0))
    return np.array(ops, dtype=np.int64)


def expected_reads(ops):
    mem, out = {}, []
    for kind, a, d in ops:
        if kind:
            mem[a] = d
        else:
            out.append(mem[a])
    return out


@pytest.mark.parametrize("clk_freq,io_delay,ready_p,seed,bl", [
    (25e6, 0, 0.6, 21, 1),
    pytest.param(100e6, 1, 0.8, 22, 1, marks=pytest.mark.slow),
    pytest.param(50e6, 1, 0.7, 23, 2, marks=pytest.mark.slow),
    (100e6, 1, 0.7, 24, 2),      # the ULX3S SoC's clock and burst (its pins: test_sdram_pins.py)
])
def test_rtl_random_traffic(clk_freq, io_delay, ready_p, seed, bl):
    ops = make_ops(seed, 1500, bl)
    dut = SDRAMController(clk_freq, extra_read_latency=2 * io_delay, burst_length=bl)
    out = run_cocotb(dut, "sim.tb_sdram", inputs=dict(
        clk_freq=clk_freq, io_delay=io_delay, ops=ops, ready_p=ready_p, seed=seed,
        aw=dut.addr_width))
    assert list(out["reads"]) == expected_reads(ops)
    assert int(out["model_writes"]) == int(np.sum(ops[:, 0] == 1))
    assert int(out["model_reads"]) == int(np.sum(ops[:, 0] == 0))


def test_rtl_violation_is_caught():
    """A controller built for a chip with a too-short tRCD (6 ns instead of 18 ns) must be
    flagged by the model (which knows the real chip) as soon as it reads or writes."""
    fast = dataclasses.replace(CHIP, tRCD=6.0)
    dut = SDRAMController(100e6, chip=fast)
    with pytest.raises(SimulationError, match="tRCD"):
        run_cocotb(dut, "sim.tb_sdram", inputs=dict(
            clk_freq=100e6, io_delay=0, ops=make_ops(3, 50), ready_p=1.0, seed=3))
