"""cocotb testbench: hw.memory.sdram.SDRAMController (Verilated) against sim.sdram_model.SDRAMModel.

Inputs (``sim.runner.load_inputs``): ``clk_freq``, ``io_delay`` (I/O register stages emulated
on each side, as in the board top), ``ops`` (N × 3: kind 0=read 1=write, addr, data), ``ready_p``,
``seed``, ``aw`` (address width, for burst configurations), ``model_tRCD`` (optional: the
model's tRCD, to make a mismatch with the controller).  Everything is sampled and
driven at the falling clock edge (mid-cycle), so the model sees what the chip samples at the next
rising edge.  Outputs: ``reads`` (data of every read, in order), ``cycles``, model statistics.
A timing violation raises in the model and fails the test.
"""
import dataclasses
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.memory.sdram import MT48LC16M16A2_6A
from sim.runner import load_inputs, save_outputs
from sim.sdram_model import PINS, SDRAMModel

AW, DW = MT48LC16M16A2_6A.addr_width, MT48LC16M16A2_6A.dq_bits


async def initiator_cycle(dut, ops, i, aw, rng, ready_p, reads) -> int:
    """One cycle (from the falling edge) of a random initiator on the memory port ``bus``:
    offer ``ops[i]`` (kind 0 = read, 1 = write; addr; data) most cycles, take read data when
    the seeded coin says ready (appended to ``reads``); returns the index of the next op.  The
    handshakes are read once the offer has settled: a target's ``ready`` may depend on the
    request it is offered (the SPRAM target takes a write at any time, a read only with room
    for its response)."""
    want = i < len(ops) and rng.random() < 0.85
    if want:
        kind, addr, data = (int(x) for x in ops[i])
        dut.bus__req__payload.value = addr | (kind << aw) | (data << (aw + 1))
    dut.bus__req__valid.value = int(want)
    r = rng.random() < ready_p
    dut.bus__resp__ready.value = int(r)
    await ReadOnly()
    if want and int(dut.bus__req__ready.value):
        i += 1
    if r and int(dut.bus__resp__valid.value):
        reads.append(int(dut.bus__resp__payload.value))
    return i


@cocotb.test()
async def sdram_traffic(dut):
    d = load_inputs()
    clk_freq = float(d["clk_freq"])
    io_delay = int(d["io_delay"])
    ops = d["ops"]
    ready_p = float(d["ready_p"])
    rng = random.Random(int(d["seed"]))
    aw = int(d["aw"]) if "aw" in d else AW
    chip = MT48LC16M16A2_6A
    if "model_tRCD" in d:
        chip = dataclasses.replace(chip, tRCD=float(d["model_tRCD"]))
    model = SDRAMModel(clk_freq, chip, seed=int(d["seed"]))

    period_ps = round(1e12 / clk_freq / 2) * 2
    Clock(dut.clk, period_ps, unit="ps").start()
    dut.rst.value = 1
    dut.bus__req__valid.value = 0
    dut.bus__resp__ready.value = 0
    dut.pins__dq_i.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0

    out_q, in_q = [], [0] * io_delay
    reads = []
    n_reads = int(np.sum(ops[:, 0] == 0))
    i = 0
    cycles = 0
    started = None
    while True:
        await FallingEdge(dut.clk)
        cycles += 1
        # --- the chip ----------------------------------------------------------------------
        out_q.append({p: int(getattr(dut, f"pins__{p}").value) for p in PINS})
        drive = None
        if len(out_q) > io_delay:
            v = out_q.pop(0)
            # value for the edge being processed was decided one edge ago
            drive = model.dq_for_edge(model.cycle + 1)
            model.edge(cke=v["clk_en"], cs_n=v["cs_n"], ras_n=v["ras_n"], cas_n=v["cas_n"],
                       we_n=v["we_n"], ba=v["ba"], a=v["a"], dq=v["dq_o"], dq_oe=v["dq_oe"],
                       dqm=v["dqm"])
        in_q.append(model.garbage() if drive is None else drive)
        dut.pins__dq_i.value = in_q.pop(0)
        # --- the initiator -----------------------------------------------------------------
        if not int(dut.init_done.value):
            continue
        if started is None:
            started = cycles
        i = await initiator_cycle(dut, ops, i, aw, rng, ready_p, reads)
        if i >= len(ops) and len(reads) >= n_reads:
            break
    for _ in range(20):                     # let the last writes reach the chip
        await FallingEdge(dut.clk)
        dut.bus__req__valid.value = 0
        out_q.append({p: int(getattr(dut, f"pins__{p}").value) for p in PINS})
        if len(out_q) > io_delay:
            v = out_q.pop(0)
            model.edge(cke=v["clk_en"], cs_n=v["cs_n"], ras_n=v["ras_n"], cas_n=v["cas_n"],
                       we_n=v["we_n"], ba=v["ba"], a=v["a"], dq=v["dq_o"], dq_oe=v["dq_oe"],
                       dqm=v["dqm"])
    save_outputs(reads=np.array(reads, dtype=np.int64), cycles=np.array(cycles),
                 model_reads=np.array(model.stats.reads), model_writes=np.array(model.stats.writes),
                 refreshes=np.array(model.refreshes))
