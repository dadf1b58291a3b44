"""Pin-level simulation of the ULX3S SDRAM interface: the board's memory component
(:class:`hw.memory.sdram_system.SDRAMSystem`: controller, the PHY's I/O registers and capture
delay line, the boot calibration) in the Amaranth simulator, against the timing-checking SDRAM
model placed in continuous time with pad delays.

Time 0 is a system clock edge at the FPGA's registers; edge ``k`` is at ``k T``.  With the delays
of one :class:`hw.memory.sdram_timing.PadDelays` corner:

* what the PHY's output registers hold after edge ``k`` is at the chip's pins from
  ``kT + t_out + trace`` to ``(k+1)T + t_out + trace``;
* the chip's clock edges are at ``c_j = jT + d + t_out + skew + trace``, ``d`` the SDRAM clock's
  delay behind the system clock from the PLL's phase model (``ECP5PLL.phase``, checked against
  ecppll in ``tests/test_pll.py``); a command, address or write data bit that is not stable from
  ``tIS`` before to ``tIH`` after ``c_j`` stops the run (:class:`PinTimingError`);
* the chip's read data for edge ``e`` are stable at the FPGA's input register from
  ``c_(e-1) + tAC + trace + t_in`` to ``c_e + tOH + trace + t_in`` (the part's datasheet tAC and
  tOH, :meth:`sim.sdram_model.SDRAMModel.dq_window`); the register samples at ``nT`` and gets
  the value only if it is stable from ``t_su`` before to ``t_h`` after, random bits otherwise
  (and when the chip drives nothing).

So a wrong clock phase, CAS latency or capture position shows up as a timing error or as wrong
data, as it would on the board.
"""
from __future__ import annotations

import dataclasses
import math
import random

from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from hw.memory.sdram import SDRAMChip
from hw.memory.sdram_phy import sim_pads
from hw.memory.sdram_system import SDRAMSystem
from hw.memory.sdram_timing import PadDelays, plan as timing_plan
from sim.sdram_model import SDRAMModel

__all__ = ["PinTimingError", "PinLevelTop", "run_pins"]


class PinTimingError(AssertionError):
    """A signal at the chip's pins violates its setup or hold time."""


class PinLevelTop(Elaboratable):
    """The board's :class:`hw.memory.sdram_system.SDRAMSystem` on simulated pads; the testbench
    drives its ``bus`` after calibration (``mem.ready``)."""

    def __init__(self, clk_freq, ctrl_chip: SDRAMChip, *, cas_latency, capture_cycle,
                 positions=4, init_wait_us=5.0):
        self.pads = sim_pads(ctrl_chip)
        self.mem = SDRAMSystem(clk_freq, ctrl_chip, self.pads, cas_latency=cas_latency,
                               capture_cycle=capture_cycle, positions=positions,
                               init_wait_us=init_wait_us)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem
        return m


def run_pins(clk_freq: float, *, part: SDRAMChip, ctrl_chip: SDRAMChip, corner: PadDelays,
             phase_deg: float | None = None, cas_latency: int | None = None, positions=4,
             n_ops=120, seed=0, force_capture: int | None = None) -> dict:
    """Calibrate, then run ``n_ops`` random reads/writes (32-bit words, bursts of 2) through the
    pins.  Returns ``plan``, ``passed`` (calibration mask), ``position``, ``ok``, ``reads``
    (results) and ``expected``.  ``phase_deg``/``cas_latency`` default to the timing plan's for
    ``ctrl_chip``; ``force_capture`` overrides the calibrated position for the traffic."""
    p = timing_plan(clk_freq, ctrl_chip, phase_deg=phase_deg, cas_latency=cas_latency)
    init_us = 5.0
    top = PinLevelTop(p.clk_freq, dataclasses.replace(ctrl_chip, init_us=init_us),
                      cas_latency=p.cas_latency, capture_cycle=p.capture_cycle,
                      positions=positions, init_wait_us=init_us)
    model = SDRAMModel(p.clk_freq, dataclasses.replace(part, init_us=init_us), seed=seed)
    T = 1e9 / p.clk_freq
    d, c = p.shift_ns, corner
    chip = part
    pads, mem = top.pads, top.mem
    ctrl = mem.ctrl
    rng = random.Random(seed)
    out = {"plan": p}

    def chip_edge(j):
        return j * T + d + c.t_out + c.skew + c.trace

    names = ["clk_en", "cs", "ras", "cas", "we", "ba", "a", "dqm"]

    async def pins(ctx):
        launches = {}
        j = 1
        k = 0
        while True:
            await ctx.tick()
            k += 1
            v = {n: ctx.get(getattr(pads, n).o) for n in names}
            v["dq"], v["dq_oe"] = ctx.get(pads.dq.o), ctx.get(pads.dq.oe)
            launches[k] = v
            launches.pop(k - 8, None)
            # chip edges whose inputs are all launched by now
            while chip_edge(j) <= k * T + c.t_out + c.trace:
                t = chip_edge(j)
                kk = math.floor((t - c.t_out - c.trace) / T)
                setup = t - (kk * T + c.t_out + c.trace) - chip.tIS
                hold = (kk + 1) * T + c.t_out + c.trace - t - chip.tIH
                if kk >= 1 and (setup < 0 or hold < 0):
                    raise PinTimingError(
                        f"chip edge {j} at {t:.2f} ns: command/address/data "
                        f"{'setup' if setup < 0 else 'hold'} margin "
                        f"{min(setup, hold):.2f} ns (SDRAM clock {d:.2f} ns behind)")
                lv = launches.get(kk)
                if lv is not None:
                    model.edge(cke=lv["clk_en"], cs_n=1 - lv["cs"], ras_n=1 - lv["ras"],
                               cas_n=1 - lv["cas"], we_n=1 - lv["we"], ba=lv["ba"], a=lv["a"],
                               dq=lv["dq"], dq_oe=lv["dq_oe"], dqm=lv["dqm"], t_ns=t)
                j += 1
            # what the input register samples at edge k + 1
            ts = (k + 1) * T
            value = None
            if model.cycle >= 0:
                for e in range(model.cycle - 3, model.cycle + 4):
                    w = model.dq_window(e, t_next_edge=chip_edge(e + 1 + (j - 1 - model.cycle)
                                                                 - 1))
                    if w is None:
                        continue
                    lo, hi = w[1] + c.trace + c.t_in, w[2] + c.trace + c.t_in
                    if lo <= ts - c.t_su and ts + c.t_h <= hi:
                        value = w[0]
            ctx.set(pads.dq.i, model.garbage() if value is None else value)

    ops, shadow = [], {}
    for _ in range(n_ops):
        if not shadow or rng.random() < 0.5:
            a = rng.randrange(1 << 12) if rng.random() < 0.5 else rng.randrange(1 << 20)
            shadow[a] = rng.getrandbits(ctrl.data_width)
            ops.append(("w", a, shadow[a]))
        else:
            a = rng.choice(list(shadow))
            ops.append(("r", a, shadow[a]))
    out["expected"] = [o[2] for o in ops if o[0] == "r"]

    async def traffic(ctx):
        while not ctx.get(mem.ready):    # (not .until(): a pin error must end the run cleanly)
            await ctx.tick()
        out["passed"] = ctx.get(mem.cal.passed)
        out["position"] = ctx.get(mem.cal.position)
        out["ok"] = ctx.get(mem.cal.ok)
        if force_capture is not None:
            ctx.set(mem.force_capture, force_capture)
            ctx.set(mem.force, 1)
        bus = mem.bus
        got = []
        n_reads = len(out["expected"])
        i = 0
        ctx.set(bus.resp.ready, 1)
        while len(got) < n_reads:
            if i < len(ops):
                kind, a, v = ops[i]
                ctx.set(bus.req.valid, 1)
                ctx.set(bus.req.payload.addr, a)
                ctx.set(bus.req.payload.write, kind == "w")
                ctx.set(bus.req.payload.data, v)
            else:
                ctx.set(bus.req.valid, 0)
            _, _, rdy, rv, rd = await ctx.tick().sample(bus.req.ready, bus.resp.valid,
                                                        bus.resp.payload)
            if i < len(ops) and rdy:
                i += 1
            if rv:
                got.append(rd)
        out["reads"] = got

    sim = Simulator(top)
    sim.add_clock(T * 1e-9)
    sim.add_testbench(pins)
    sim.add_testbench(traffic)
    sim.run_until(200e-6)     # bound: a hung calibration ends the run without "reads"
    out.setdefault("reads", None)
    return out
