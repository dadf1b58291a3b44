"""Board-level timing of the ULX3S SDRAM interface: the SDRAM clock's phase, the CAS latency and
the read capture cycle, chosen on paper for a clock and checked at the delay corners.

The board top registers every SDRAM output in the ECP5's I/O flip-flops on the system clock and
forwards the SDRAM clock from the PLL's CLKOS output (through an ODDR), ``d`` ns behind the
system clock (``phase``).  Read data come back into the I/O input flip-flops, again on the
system clock, and a calibration at boot (``hw/memory/sdram_cal.py``) picks the cycle they are
taken in.  With all times relative to a system clock edge at the FPGA's registers:

* the chip samples a command launched at edge ``k`` at its clock edge
  ``c_k = kT + d + t_out + skew + trace``; the command reaches its pins at ``kT + t_out + trace``
  and stays until ``(k+1)T + t_out + trace``: setup ``d + skew - tIS`` and hold
  ``T - d - skew - tIH`` (SDRAM tIS/tIH);
* the data of chip edge ``e`` are stable at the FPGA's input registers from
  ``c_(e-1) + tAC + trace + t_in`` to ``c_e + tOH + trace + t_in``; sampled at edge
  ``n = (e - 1) + m``, the register needs ``t_su`` before and ``t_h`` after that edge.  With the
  round trip ``rho = d + t_out + skew + 2 trace + t_in``: setup margin ``mT - rho - tAC - t_su``,
  hold margin ``T + tOH - (mT - rho) - t_h``.

A board's delays lie somewhere between the two corners of :data:`ECP5_CORNERS`; the calibration
picks ``m`` on the board, so the phase must put the whole corner range of ``rho`` inside one
capture window: :func:`plan` returns the phase (on the PLL's grid) and CAS latency with the
largest guaranteed margin.  :data:`SUPPORTED_MHZ` is the clock range over which that margin is
at least :data:`MIN_MARGIN_NS` for the worst case of the fitted parts (``tests/test_sdram_pins``
simulates the pins at both ends and both corners); builds refuse other clocks.

The corner values are estimates, not measurements (see ``docs/memory.md``): ECP5 -6 I/O
register clock-to-output with the PLL-compensated clock 2.5-4.2 ns, clock/command pad skew
±0.3 ns, ULX3S traces 0.1-0.3 ns each way, pad-to-register input delay 0-0.6 ns, input register
setup and hold 0.9 ns each.
"""
from __future__ import annotations

from dataclasses import dataclass

from hw.memory.sdram import SDRAMChip

__all__ = ["PadDelays", "ECP5_CORNERS", "CapturePlan", "plan", "SUPPORTED_MHZ",
           "MIN_MARGIN_NS", "check_clock"]


@dataclass(frozen=True)
class PadDelays:
    """One corner of the FPGA + board delays (ns)."""
    name: str
    t_out: float     # system clock edge → FPGA output pad (I/O register or ODDR)
    skew: float      # SDRAM clock pad later than the command/data pads by this much
    trace: float     # FPGA ↔ SDRAM trace, each way
    t_in: float      # FPGA input pad → input register D (beyond the clock's insertion delay)
    t_su: float      # input register setup
    t_h: float       # input register hold

    def round_trip(self, d: float) -> float:
        """System clock edge → data launched by the chip's clock edge, back at the register."""
        return d + self.t_out + self.skew + 2 * self.trace + self.t_in


ECP5_CORNERS = (
    PadDelays("fast", t_out=2.5, skew=-0.3, trace=0.1, t_in=0.0, t_su=0.9, t_h=0.9),
    PadDelays("slow", t_out=4.2, skew=+0.3, trace=0.3, t_in=0.6, t_su=0.9, t_h=0.9),
)

#: Guaranteed margin (ns) every setup and hold must keep over the whole corner range.
MIN_MARGIN_NS = 0.5
#: System clocks (MHz) at which :func:`plan` meets :data:`MIN_MARGIN_NS` for the worst case of
#: the ULX3S parts (checked for every MHz by ``tests/test_sdram_timing.py``).
SUPPORTED_MHZ = (25.0, 100.0)


@dataclass(frozen=True)
class CapturePlan:
    clk_freq: float
    phase_deg: float          # SDRAM clock behind the system clock
    shift_ns: float           # the same, in ns (from the PLL's phase model)
    cas_latency: int
    capture_cycle: int        # ``m``: data of chip edge e sampled at system edge (e - 1) + m
    cmd_setup_ns: float       # worst-corner margins
    cmd_hold_ns: float
    read_setup_ns: float
    read_hold_ns: float

    @property
    def margin_ns(self) -> float:
        return min(self.cmd_setup_ns, self.cmd_hold_ns, self.read_setup_ns, self.read_hold_ns)


def _margins(chip, cl, T, d, m, corners):
    cs = min(d + c.skew - chip.tIS for c in corners)
    ch = min(T - d - c.skew - chip.tIH for c in corners)
    rs = min(m * T - c.round_trip(d) - chip.tAC(cl) - c.t_su for c in corners)
    rh = min(T + chip.tOH - (m * T - c.round_trip(d)) - c.t_h for c in corners)
    return cs, ch, rs, rh


def plan(clk_freq: float, chip: SDRAMChip, *, phase_deg: float | None = None,
         cas_latency: int | None = None, corners=ECP5_CORNERS) -> CapturePlan:
    """The phase (unless given), CAS latency (unless given) and capture cycle with the largest
    worst-corner margin at ``clk_freq``, on the ECP5 PLL's phase grid from a 25 MHz input."""
    from hw.soc.pll import ecp5_pll_params
    pll = ecp5_pll_params(25e6, clk_freq)
    T = 1e9 / pll.f_out
    cls = [cas_latency] if cas_latency else [cl for cl, tck in ((2, chip.tCK_cl2),
                                                                (3, chip.tCK_cl3))
                                            if T >= tck - 1e-9]
    steps = 8 * pll.clkop_div
    phases = [phase_deg] if phase_deg is not None else [i * 360 / steps for i in range(steps)]
    best = None
    for cl in cls:
        for ph in phases:
            d = pll.phase(*pll.phase_settings(ph))
            for m in range(1, 6):
                mg = _margins(chip, cl, T, d, m, corners)
                # prefer margin, then CL2 (shorter reads)
                key = (round(min(mg), 3), -cl)
                if best is None or key > best[0]:
                    best = (key, CapturePlan(pll.f_out, ph, d, cl, m, *mg))
    if best is None:
        raise ValueError(f"no CAS latency of {chip.name} allows {clk_freq / 1e6:g} MHz")
    return best[1]


def check_clock(clk_freq: float):
    """One-line error for a ULX3S system clock outside :data:`SUPPORTED_MHZ`."""
    lo, hi = SUPPORTED_MHZ
    if not lo - 1e-6 <= clk_freq / 1e6 <= hi + 1e-6:
        raise ValueError(f"{clk_freq / 1e6:g} MHz is outside the SDRAM interface's supported "
                         f"range {lo:g}-{hi:g} MHz (read capture and command timing are shown "
                         f"to hold only there; see docs/memory.md)")
