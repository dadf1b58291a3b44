"""cocotb testbench for hw.memory.read_reg_ram.ReadRegRAM: one write and one read per port every
cycle, as given; records every port's read data every cycle."""
import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from sim.runner import load_inputs, save_outputs


def to_int(row) -> int:
    return int.from_bytes(bytes(int(b) for b in row), "little")


@cocotb.test()
async def read_reg_ram(dut):
    d = load_inputs()
    n, ports = d["r_addr"].shape
    abits = int(d["abits"][0])
    nbytes = d["w_data"].shape[1]
    width = len(dut.r_data) // ports
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.w_en.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    got = np.zeros((n, ports, nbytes), dtype=np.uint8)
    for t in range(n):
        await FallingEdge(dut.clk)
        dut.w_en.value = int(d["w_en"][t])
        dut.w_addr.value = int(d["w_addr"][t])
        dut.w_data.value = to_int(d["w_data"][t])
        dut.r_addr.value = sum(int(a) << (p * abits) for p, a in enumerate(d["r_addr"][t]))
        word = int(dut.r_data.value)
        for p in range(ports):
            v = (word >> (p * width)) & ((1 << width) - 1)
            got[t, p] = np.frombuffer(v.to_bytes(nbytes, "little"), dtype=np.uint8)
    save_outputs(r_data=got)
