"""cocotb testbench: any memory-port target (``hw.memory.memport``) under seeded random
traffic.

Inputs (``sim.runner.load_inputs``): ``ops`` (N × 3: kind 0=read 1=write, addr, data), ``aw``
(address width), ``ready_p`` (how often the response is taken), ``seed``. Outputs: ``reads``
(the data of every read, in order) and ``cycles``.
"""
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from sim.runner import load_inputs, save_outputs
from sim.tb_sdram import initiator_cycle


async def start(dut):
    """Clock the target, hold it in reset for two cycles with its port idle."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.bus__req__valid.value = 0
    dut.bus__resp__ready.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0


@cocotb.test()
async def traffic(dut):
    d = load_inputs()
    ops, aw = d["ops"], int(d["aw"])
    rng = random.Random(int(d["seed"]))
    await start(dut)
    n_reads = int(np.sum(ops[:, 0] == 0))
    reads, i, cycles = [], 0, 0
    while cycles < 50 * len(ops):
        await FallingEdge(dut.clk)
        cycles += 1
        i = await initiator_cycle(dut, ops, i, aw, rng, float(d["ready_p"]), reads)
        if i >= len(ops) and len(reads) >= n_reads:
            break
    save_outputs(reads=np.array(reads, dtype=np.int64), cycles=np.array(cycles))
