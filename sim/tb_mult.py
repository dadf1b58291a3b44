"""cocotb testbench for a bare multiplier cell wrapper (``tests/test_pe.py``): drive ``a`` and
``b`` every cycle and record ``p`` every cycle."""
import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sim.runner import load_inputs, save_outputs


@cocotb.test()
async def mult_stream(dut):
    d = load_inputs()
    n = len(d["a"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    out = []
    for t in range(n):
        await FallingEdge(dut.clk)
        dut.a.value = int(d["a"][t])
        dut.b.value = int(d["b"][t])
        out.append(format(int(dut.p.value), "x"))
    save_outputs(p_hex=np.array(out))
