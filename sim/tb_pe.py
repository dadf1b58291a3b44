"""cocotb testbench for hw.engine.pe.PE: drive x, w and psum_in from the inputs every cycle and
record psum_out every cycle."""
import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sim.runner import load_inputs, save_outputs


@cocotb.test()
async def pe_stream(dut):
    d = load_inputs()
    n = len(d["x"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    out = np.zeros(n, dtype=np.int64)
    for t in range(n):
        await FallingEdge(dut.clk)
        dut.x.value = int(d["x"][t])
        dut.w.value = int(d["w"][t])
        dut.psum_in.value = int(d["psum_in"][t])
        out[t] = dut.psum_out.value.to_signed()
    save_outputs(psum_out=out)
