"""cocotb testbench for hw.engine.engine.Engine: for each program of the batch, load the
memories, start once, wait for ``done`` (no Python per simulated cycle while the layer runs) and
read the output memory back. One simulator process serves the whole batch, so a layer cut into
many engine runs does not pay a process start for each."""
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.runner import load_inputs, save_outputs

KEYS = ("in_hex", "w_hex", "step_hex", "blk_hex")


@cocotb.test()
async def engine_layers(dut):
    d = load_inputs()
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.start.value = 0
    dut.ld_en.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    n_prog = len(d["desc_hex"])
    starts = {k: np.concatenate([[0], np.cumsum(d[k.replace("_hex", "_n")])]) for k in KEYS}
    out, cycles, fetched = [], [], []
    sim_seconds = cpu_seconds = 0.0
    for p in range(n_prog):
        for sel, key in enumerate(KEYS):
            dut.ld_sel.value = sel
            for addr, word in enumerate(d[key][starts[key][p]:starts[key][p + 1]]):
                dut.ld_en.value = 1
                dut.ld_addr.value = addr
                dut.ld_data.value = int(str(word), 16)
                await RisingEdge(dut.clk)
        dut.ld_en.value = 0
        # the descriptor changes with start, as late as any controller may change it: what
        # the engine needs later in the run it must hold itself
        dut.desc.value = int(str(d["desc_hex"][p]), 16)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        t0, c0 = time.perf_counter(), time.process_time()
        await RisingEdge(dut.done)            # one wake-up for the whole layer
        sim_seconds += time.perf_counter() - t0
        cpu_seconds += time.process_time() - c0
        await ReadOnly()
        cycles.append(int(dut.cycles.value))
        # line mode: words the row feeder read from the map memory
        fetched.append(int(dut.fetched.value) if hasattr(dut, "fetched") else -1)
        await RisingEdge(dut.clk)
        n_out = int(d["n_out"][p])
        dut.rd_addr.value = 0
        for a in range(n_out):
            await FallingEdge(dut.clk)        # the read port captured rd_addr on the rising edge
            out.append(format(int(dut.rd_data.value), "x"))
            dut.rd_addr.value = a + 1 if a + 1 < n_out else 0
        await RisingEdge(dut.clk)
    save_outputs(out_hex=np.array(out), cycles=np.array(cycles), fetched=np.array(fetched),
                 sim_seconds=np.array([sim_seconds]), cpu_seconds=np.array([cpu_seconds]))
