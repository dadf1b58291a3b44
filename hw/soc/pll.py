"""PLL parameter solvers and clock/reset generation for ECP5 (EHXPLLL) and iCE40 (SB_PLL40).

The solvers search the documented ranges (ECP5: PFD 3.125-400 MHz, VCO 400-800 MHz; iCE40:
PFD 10-133 MHz, VCO 533-1066 MHz) for the output closest to the request, preferring the exact
frequency.  :class:`ECP5ClockGen` / :class:`ICE40ClockGen` create the ``sync`` domain from the
board oscillator, held in reset until the PLL locks and for a few cycles after.  The domain
itself (a ``ClockDomain`` given to the constructor) is defined by the top-level.

:class:`ECP5ClockGen` can also drive a second domain at the same frequency from the PLL's CLKOS
output, shifted by a static phase (the ULX3S SDRAM clock).  The phase is set as ecppll (Project
Trellis) sets it: ``CLKOS_CPHASE`` whole VCO cycles and ``CLKOS_FPHASE`` eighths of one beyond
``CLKOP``'s, so the shift is ``(ΔCPHASE + FPHASE / 8) / f_VCO`` (:meth:`ECP5PLL.phase`);
``tests/test_pll.py`` checks the settings against ``ecppll``'s own.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["ecp5_pll_params", "ice40_pll_params", "ECP5ClockGen", "ICE40ClockGen"]


@dataclass(frozen=True)
class ECP5PLL:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_out: float

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div

    @property
    def phase_step_deg(self) -> float:
        """Resolution of a CLKOS phase at the CLKOP frequency: 1/8 VCO cycle."""
        return 360.0 / (8 * self.clkop_div)

    def phase_settings(self, phase_deg: float) -> tuple[int, int]:
        """``(CLKOS_CPHASE, CLKOS_FPHASE)`` for a CLKOS at the CLKOP frequency that lags CLKOP by
        ``phase_deg`` (rounded down to a multiple of :attr:`phase_step_deg`, as ecppll does)."""
        if not 0 <= phase_deg < 360:
            raise ValueError(f"PLL phase must be in [0, 360) degrees, not {phase_deg}")
        eighths = int(phase_deg / self.phase_step_deg + 1e-6)
        return self.clkop_div - 1 + eighths // 8, eighths % 8

    def phase(self, cphase: int, fphase: int) -> float:
        """Delay (ns) of CLKOS behind CLKOP for these settings: the PLL's phase model."""
        return ((cphase - (self.clkop_div - 1)) + fphase / 8) / self.f_vco * 1e9


def ecp5_pll_params(f_in: float, f_out: float) -> ECP5PLL:
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            f = f_pfd * clkfb_div
            for clkop_div in range(1, 129):
                vco = f * clkop_div
                if not 400e6 <= vco <= 800e6:
                    continue
                # closest output first, then the VCO nearest the middle of its range (as
                # ecppll chooses: finer phase steps than at 400 MHz)
                key = (round(abs(f - f_out)), abs(vco - 600e6))
                if best is None or key < best[0]:
                    best = (key, ECP5PLL(clki_div, clkfb_div, clkop_div, f))
    if best is None:
        raise ValueError(f"no ECP5 PLL setting for {f_out / 1e6} MHz")
    return best[1]


@dataclass(frozen=True)
class ICE40PLL:
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_out: float


def ice40_pll_params(f_in: float, f_out: float) -> ICE40PLL:
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            vco = f_pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                f = vco / (1 << divq)
                err = abs(f - f_out)
                if best is None or err < best[0] - 1:
                    fr = 1 if f_pfd < 17e6 else 2 if f_pfd < 26e6 else 3 if f_pfd < 44e6 \
                        else 4 if f_pfd < 66e6 else 5 if f_pfd < 101e6 else 6
                    best = (err, ICE40PLL(divr, divf, divq, fr, f))
    if best is None:
        raise ValueError(f"no iCE40 PLL setting for {f_out / 1e6} MHz")
    return best[1]


class ECP5ClockGen(Elaboratable):
    """Drives ``cd`` at ``f_out`` from an ECP5 input clock (``clk_in``, e.g. the ULX3S's 25 MHz
    oscillator) through EHXPLLL, with a reset held until lock.  With ``shifted_cd``, CLKOS drives
    that domain at the same frequency, ``shift_deg`` behind ``cd`` (no reset: a clock to
    forward, not to run logic on)."""

    def __init__(self, clk_in, f_in: float, f_out: float, cd: ClockDomain, *,
                 shifted_cd: ClockDomain | None = None, shift_deg: float = 0.0):
        self.cd = cd
        self.clk_in = clk_in
        self.f_in = f_in
        self.params = ecp5_pll_params(f_in, f_out)
        self.f_out = self.params.f_out
        self.shifted_cd = shifted_cd
        self.shift = self.params.phase_settings(shift_deg)
        #: the shift the settings give (ns), from the phase model
        self.shift_ns = self.params.phase(*self.shift)
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        cd_sync = self.cd
        clk = Signal()
        shifted = {}
        if self.shifted_cd is not None:
            clkos = Signal()
            shifted = dict(a_FREQUENCY_PIN_CLKOS=f"{self.f_out / 1e6:g}",
                           p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=p.clkop_div,
                           p_CLKOS_CPHASE=self.shift[0], p_CLKOS_FPHASE=self.shift[1],
                           p_OUTDIVIDER_MUXB="DIVB", i_ENCLKOS=0, o_CLKOS=clkos)
            m.d.comb += self.shifted_cd.clk.eq(clkos)
        m.submodules.pll = Instance(
            "EHXPLLL", **shifted,
            a_FREQUENCY_PIN_CLKI=f"{self.f_in / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.f_out / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p.clkop_div, p_CLKOP_CPHASE=p.clkop_div - 1,
            p_CLKOP_FPHASE=0, p_CLKI_DIV=p.clki_div, p_CLKFB_DIV=p.clkfb_div,
            p_FEEDBK_PATH="CLKOP",
            i_CLKI=self.clk_in, i_CLKFB=clk, i_RST=0, i_STDBY=0,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk, o_LOCK=self.locked,
        )
        m.d.comb += cd_sync.clk.eq(clk)
        m.submodules.rst = ResetSynchronizer(~self.locked, domain=cd_sync.name)
        if platform is not None:
            platform.add_clock_constraint(cd_sync.clk, self.f_out)
        return m


class ICE40ClockGen(Elaboratable):
    """Drives ``cd`` at ``f_out`` from the iCE40 input clock pin (``pad``, an I/O port of a
    PLL-capable pin) through SB_PLL40_PAD, with a reset held until lock."""

    def __init__(self, pad, f_in: float, f_out: float, cd: ClockDomain):
        self.cd = cd
        self.pad = pad
        self.f_in = f_in
        self.params = ice40_pll_params(f_in, f_out)
        self.f_out = self.params.f_out
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        cd_sync = self.cd
        clk = Signal()
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_DIVR=p.divr, p_DIVF=p.divf, p_DIVQ=p.divq,
            p_FILTER_RANGE=p.filter_range,
            i_PACKAGEPIN=self.pad, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk, o_LOCK=self.locked,
        )
        m.d.comb += cd_sync.clk.eq(clk)
        m.submodules.rst = ResetSynchronizer(~self.locked, domain=cd_sync.name)
        if platform is not None:
            platform.add_clock_constraint(cd_sync.clk, self.f_out)
        return m


