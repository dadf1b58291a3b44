"""cocotb testbench for hw.engine.pe.MAC: drive int8 pairs from the inputs file, record acc each cycle."""
import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.runner import load_inputs, save_outputs


@cocotb.test()
async def mac_stream(dut):
    d = load_inputs()
    x, w, valid, first = d["x"], d["w"], d["valid"], d["first"]
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.valid.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    seen = []
    for i in range(len(x) + 3):
        await FallingEdge(dut.clk)
        if i < len(x):
            dut.x.value = int(x[i])
            dut.w.value = int(w[i])
            dut.valid.value = int(valid[i])
            dut.first.value = int(first[i])
        else:
            dut.valid.value = 0
        await RisingEdge(dut.clk)
        await ReadOnly()
        seen.append(dut.acc.value.to_signed())
    save_outputs(acc=np.array(seen, dtype=np.int64))
