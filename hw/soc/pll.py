"""PLL parameter solvers and clock/reset generation for ECP5 (EHXPLLL) and iCE40 (SB_PLL40).

The solvers search the documented ranges (ECP5: PFD 3.125-400 MHz, VCO 400-800 MHz; iCE40:
PFD 10-133 MHz, VCO 533-1066 MHz) for the output closest to the request, preferring the exact
frequency.  :class:`ECP5ClockGen` / :class:`ICE40ClockGen` create the ``sync`` domain from the
board oscillator, held in reset until the PLL locks and for a few cycles after.  The domain
itself (a ``ClockDomain`` given to the constructor) is defined by the top-level.
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
                err = abs(f - f_out)
                if best is None or err < best[0] - 1:
                    best = (err, ECP5PLL(clki_div, clkfb_div, clkop_div, f))
                break
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
    oscillator) through EHXPLLL, with a reset held until lock."""

    def __init__(self, clk_in, f_in: float, f_out: float, cd: ClockDomain):
        self.cd = cd
        self.clk_in = clk_in
        self.f_in = f_in
        self.params = ecp5_pll_params(f_in, f_out)
        self.f_out = self.params.f_out
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        p = self.params
        cd_sync = self.cd
        clk = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
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


