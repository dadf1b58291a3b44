"""The ULX3S SDRAM memory as one component: controller, PHY and boot read calibration.

:class:`SDRAMSystem` is what the board top instantiates and what the pin-level simulation
(``sim/sdram_pins.py``) runs, so the simulated pin logic is the board's own:

* :class:`hw.memory.sdram.SDRAMController` with the part's timings and the planned CAS latency,
  its read pipeline lengthened by the PHY's ``read_latency``;
* :class:`hw.memory.sdram_phy.SDRAMPHY` on the board's ``sdram`` pads (I/O registers, the
  forwarded SDRAM clock from domain ``sdram``, the capture delay line);
* :class:`hw.memory.sdram_cal.ReadCalibrator`, which owns the controller's port from the end of
  the power-up sequence until it has chosen the capture cycle; then ``bus`` is connected and
  ``ready`` rises.  Requests on ``bus`` wait (``ready`` low on the port) until then.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature
from hw.memory.sdram import SDRAMChip, SDRAMController
from hw.memory.sdram_cal import ReadCalibrator, cal_result_layout
from hw.memory.sdram_phy import SDRAMPHY

__all__ = ["SDRAMSystem"]


class SDRAMSystem(wiring.Component):
    """Calibrated SDRAM memory behind a memory port.

    Parameters
    ----------
    clk_freq : float
    chip : SDRAMChip
        Timings the controller is built for (e.g. the worst case of the fitted parts).
    pads
        The ``sdram`` resource (``dir="-"``) or :func:`hw.memory.sdram_phy.sim_pads`.
    cas_latency, capture_cycle : int
        From :func:`hw.memory.sdram_timing.plan`; ``capture_cycle`` is the calibration's
        fallback when no cycle passes.
    burst_length, positions, init_wait_us
        Controller burst length, PHY capture positions, power-up wait.

    Ports
    -----
    bus : ``In(MemPortSignature(...))``
        The memory, once ``ready``.
    ready : Out(1)
        Power-up sequence and read calibration done.
    init_done : Out(1)
        Power-up sequence done (the controller's).
    cal : ``Out(cal_result_layout)``
        The calibration result (for the host: STATUS ``flags`` bits 16…31).
    force, force_capture : In(1), In(range(positions))
        Test hook: with ``force`` high the PHY uses ``force_capture`` (tie low on boards).
    """

    def __init__(self, clk_freq: float, chip: SDRAMChip, pads, *, cas_latency: int,
                 capture_cycle: int, burst_length: int = 2, positions: int = 4,
                 init_wait_us: float = 200.0):
        self.phy = SDRAMPHY(chip, pads, positions=positions)
        self.ctrl = SDRAMController(clk_freq, chip=chip, cas_latency=cas_latency,
                                    extra_read_latency=self.phy.read_latency,
                                    burst_length=burst_length, init_wait_us=init_wait_us)
        self.calibrator = ReadCalibrator(self.ctrl.addr_width, self.ctrl.data_width,
                                         positions=positions, fallback=capture_cycle)
        self.chip = chip
        super().__init__({
            "bus": In(MemPortSignature(self.ctrl.addr_width, self.ctrl.data_width)),
            "ready": Out(1),
            "init_done": Out(1),
            "cal": Out(cal_result_layout),
            "force": In(1),
            "force_capture": In(range(positions)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctrl = ctrl = self.ctrl
        m.submodules.phy = phy = self.phy
        m.submodules.cal = cal = self.calibrator
        wiring.connect(m, ctrl.pins, phy.ctrl)
        m.d.comb += [
            phy.capture.eq(Mux(self.force, self.force_capture, cal.capture)),
            cal.start.eq(ctrl.init_done),
            self.init_done.eq(ctrl.init_done),
            self.ready.eq(cal.done),
            self.cal.eq(cal.result),
        ]
        for ini, sel in ((cal.bus, ~cal.done), (self.bus, cal.done)):
            with m.If(sel):
                m.d.comb += [ctrl.bus.req.valid.eq(ini.req.valid),
                             ctrl.bus.req.payload.eq(ini.req.payload),
                             ini.req.ready.eq(ctrl.bus.req.ready),
                             ini.resp.valid.eq(ctrl.bus.resp.valid),
                             ini.resp.payload.eq(ctrl.bus.resp.payload),
                             ctrl.bus.resp.ready.eq(ini.resp.ready)]
        return m
