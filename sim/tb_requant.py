"""cocotb testbench for hw.engine.requant.Requant: one beat per cycle, collect every output beat."""
import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.engine.requant import RequantIn
from sim.runner import load_inputs, save_outputs


def pack(layout, values: dict) -> int:
    word = 0
    for name, field in layout:
        w = field.width
        word |= (int(values[name]) & ((1 << w) - 1)) << field.offset
    return word


@cocotb.test()
async def requant_stream(dut):
    d = load_inputs()
    n = len(d["acc"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    gap = int(d["gap"][0]) if "gap" in d else 1        # cycles between input beats
    got, when = [], []
    for i in range(n * gap + 128):        # the longest lane latency, with room
        await FallingEdge(dut.clk)
        k, beat = divmod(i, gap)
        if k < n and beat == 0:
            dut.i__valid.value = 1
            dut.i__payload.value = pack(RequantIn, {f: d[f][k] for f in
                                                    ("acc", "bias", "mult", "shift", "zp", "lo", "hi")})
        else:
            dut.i__valid.value = 0
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.o__valid.value:
            got.append(dut.o__payload.value.to_signed())
            when.append(i)
    # when[k] − k·gap + 1: rising edges from beat k's presentation to its output (the latency)
    save_outputs(y=np.array(got, dtype=np.int64), when=np.array(when, dtype=np.int64))
