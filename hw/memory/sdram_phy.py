"""SDRAM physical layer for the ULX3S: I/O registers, the forwarded SDRAM clock and a read capture
delay that the boot calibration (``hw/memory/sdram_cal.py``) sets.

* Every command, address, mask and data output goes through the ECP5's output flip-flop in the
  pad (``io.FFBuffer``), so all of them leave the FPGA together, one system clock after the
  controller's own registers.
* The SDRAM clock is the PLL's CLKOS (domain ``clock_domain``, a static phase behind the system
  clock, ``hw/memory/sdram_timing.py`` picks it) through an ODDR with D0 = 1, D1 = 0: the pad
  copies CLKOS (as LiteX forwards its SDRAM clock).  In simulation (pads that are
  ``io.SimulationPort``) there is no ODDR model: the pin-level testbench
  (``sim/sdram_pins.py``) places the chip's clock edges at the phase instead.
* Read data are sampled by the input flip-flop in the pad on the system clock, then pass a delay
  line of ``positions`` stages; ``capture`` (0 … positions-1) takes the sample ``capture``
  cycles later than position 0, so the controller sees every position at the same latency:
  ``read_latency`` (give it as the controller's ``extra_read_latency``).  Position ``p`` is the
  timing plan's capture cycle ``m = p`` (``hw/memory/sdram_timing.py``).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In

from hw.memory.sdram import SDRAMChip, SDRAMPinsSignature

__all__ = ["SDRAMPHY", "sim_pads"]

#: (pad name, controller pin, active low on the controller side)
_OUTPUTS = [("clk_en", "clk_en", False), ("cs", "cs_n", True), ("ras", "ras_n", True),
            ("cas", "cas_n", True), ("we", "we_n", True), ("ba", "ba", False),
            ("a", "a", False), ("dqm", "dqm", False)]


def sim_pads(chip: SDRAMChip, addr_width: int = 13):
    """Simulation stand-ins for the board's ``sdram`` resource (same names; strobes active
    high as the ULX3S resource presents them)."""
    def port(direction, width):
        return io.SimulationPort(direction, width)
    return SimpleNamespace(
        clk_en=port("o", 1), cs=port("o", 1), ras=port("o", 1), cas=port("o", 1),
        we=port("o", 1), ba=port("o", chip.bank_bits), a=port("o", addr_width),
        dqm=port("o", chip.dq_bits // 8), dq=port("io", chip.dq_bits), clk=None)


class SDRAMPHY(wiring.Component):
    """I/O registers between :class:`hw.memory.sdram.SDRAMController` and the SDRAM pads.

    Parameters
    ----------
    chip : SDRAMChip
    pads
        The platform's ``sdram`` resource requested with ``dir="-"`` (or :func:`sim_pads`).
    positions : int
        Read capture positions, one system clock apart.
    clock_domain : str
        Domain whose clock is forwarded to the SDRAM (the PLL's phase-shifted output).

    Ports
    -----
    ctrl : ``In(SDRAMPinsSignature(chip))``
        The controller's pins.
    capture : In(range(positions))
        Read capture position (hold it steady while reads are in flight).
    """

    def __init__(self, chip: SDRAMChip, pads, *, positions: int = 4,
                 clock_domain: str = "sdram"):
        if positions < 1:
            raise ValueError("the PHY needs at least one capture position")
        self.chip = chip
        self.pads = pads
        self.positions = positions
        self.clock_domain = clock_domain
        super().__init__({
            "ctrl": In(SDRAMPinsSignature(chip)),
            "capture": In(range(positions)),
        })

    @property
    def read_latency(self) -> int:
        """Cycles the controller must add to its read pipeline (``extra_read_latency``) for any
        capture position.  Position ``p`` then takes the data of the chip's clock edge ``e``
        from the input register's sample at system clock edge ``(e - 1) + p`` (counting the chip
        edge that samples a command launched at system edge ``k`` as edge ``k``): the capture
        cycle ``m`` of :func:`hw.memory.sdram_timing.plan`."""
        return self.positions - 1

    def elaborate(self, platform):
        m = Module()
        pads, ctrl = self.pads, self.ctrl
        for name, pin, active_low in _OUTPUTS:
            m.submodules[f"o_{name}"] = buf = io.FFBuffer("o", getattr(pads, name))
            value = getattr(ctrl, pin)
            m.d.comb += buf.o.eq(~value if active_low else value)
        m.submodules.dq = dq = io.FFBuffer("io", pads.dq)
        m.d.comb += [dq.o.eq(ctrl.dq_o), dq.oe.eq(ctrl.dq_oe)]

        if pads.clk is not None:
            m.submodules.clk = clk = io.DDRBuffer("o", pads.clk, o_domain=self.clock_domain)
            m.d.comb += [clk.o[0].eq(1), clk.o[1].eq(0)]

        # delay line: line[i] is the input register's sample of i cycles ago
        line = [dq.i]
        for i in range(1, self.positions):
            s = Signal(self.chip.dq_bits, name=f"capture{i}")
            m.d.sync += s.eq(line[-1])
            line.append(s)
        out = Signal(self.chip.dq_bits)
        m.d.comb += out.eq(Array(reversed(line))[self.capture])
        m.d.comb += ctrl.dq_i.eq(out)
        return m
