"""cocotb testbench: ``sim.sim_sdram.SimSDRAM`` (the board's controller and the Verilog chip
model, Verilated together) driven through its memory port only.

Inputs (``sim.runner.load_inputs``): ``ops`` (N × 3: kind 0=read 1=write, addr, data),
``ready_p``, ``seed``, ``aw``, ``max_cycles``, optionally ``idle`` (cycles to run after the
last operation, e.g. to let the refresh rule see a long stretch).  Outputs: ``reads`` (the data
of every read, in order), ``error`` (the model's rule number, 0 when none was broken), the
model's ``model_reads``/``model_writes``/``refreshes`` and ``cycles``.  The model is built
with ``FATAL`` off, so a violation ends the run here and the test reads which rule it was.
"""
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge

from sim.runner import load_inputs, save_outputs
from sim.tb_memport import start
from sim.tb_sdram import initiator_cycle


@cocotb.test()
async def traffic(dut):
    d = load_inputs()
    ops = d["ops"]
    aw = int(d["aw"])
    ready_p = float(d["ready_p"])
    max_cycles = int(d["max_cycles"])
    rng = random.Random(int(d["seed"]))
    await start(dut)
    n_reads = int(np.sum(ops[:, 0] == 0))
    reads, i, cycles = [], 0, 0
    while cycles < max_cycles and int(dut.error.value) == 0:
        await FallingEdge(dut.clk)
        cycles += 1
        i = await initiator_cycle(dut, ops, i, aw, rng, ready_p, reads)
        if i >= len(ops) and len(reads) >= n_reads:
            break
    await FallingEdge(dut.clk)
    dut.bus__req__valid.value = 0
    idle = int(d["idle"]) if "idle" in d else 20
    for _ in range(idle // 1000):
        if int(dut.error.value):
            break
        await ClockCycles(dut.clk, 1000)
    await ClockCycles(dut.clk, 20)           # the last writes reach the chip
    save_outputs(reads=np.array(reads, dtype=np.int64), cycles=np.array(cycles),
                 error=np.array(int(dut.error.value)),
                 model_reads=np.array(int(dut.reads.value)),
                 model_writes=np.array(int(dut.writes.value)),
                 refreshes=np.array(int(dut.refreshes.value)))
