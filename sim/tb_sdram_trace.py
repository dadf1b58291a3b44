"""cocotb testbench: the Verilog SDRAM chip model (``sim.sim_sdram.VERILOG``) replaying a pin
trace, one row per rising edge.

Inputs (``sim.runner.load_inputs``): ``trace`` (N × 10: clk_en, cs_n, ras_n, cas_n, we_n, ba,
a, dq_o, dq_oe, dqm as the chip samples them at edge n).  Outputs: ``error`` (the rule number
broken first, 0 for none), ``at`` (its edge, -1 for none) and ``dq`` (what the chip drives for
edge n + 1, read after edge n).
"""
import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.runner import load_inputs, save_outputs

PINS = ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dq_o", "dq_oe", "dqm")


@cocotb.test()
async def replay(dut):
    trace = load_inputs()["trace"]

    def put(row):
        for name, v in zip(PINS, row):
            getattr(dut, name).value = int(v)

    put(trace[0])
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dq, error, at = [], 0, -1
    for n in range(len(trace)):
        await RisingEdge(dut.clk)
        await ReadOnly()
        dq.append(int(dut.dq_i.value))
        error = int(dut.error.value)
        if error:
            at = n
            break
        await FallingEdge(dut.clk)
        if n + 1 < len(trace):
            put(trace[n + 1])
    save_outputs(error=np.array(error), at=np.array(at), dq=np.array(dq, dtype=np.int64))
