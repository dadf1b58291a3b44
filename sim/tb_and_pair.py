"""cocotb testbench for hw.engine.and_pair.AndPairSum: apply (a, s0, s1), read the combinational sum."""
import cocotb
import numpy as np
from cocotb.triggers import Timer

from sim.runner import load_inputs, save_outputs


@cocotb.test()
async def and_pair_sum(dut):
    d = load_inputs()
    got = []
    for a, s0, s1 in zip(d["a"], d["s0"], d["s1"]):
        dut.a.value, dut.s0.value, dut.s1.value = int(a), int(s0), int(s1)
        await Timer(1, unit="ns")
        got.append(int(dut.o.value))
    save_outputs(o=np.array(got, dtype=np.int64))
