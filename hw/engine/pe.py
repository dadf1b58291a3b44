"""The processing element: one int8×int8 multiply, registered so it maps onto one hard
multiplier (ECP5 MULT18X18D with its input/output registers, iCE40 SB_MAC16).

:class:`PE` is the systolic cell of :class:`hw.engine.systolic.SystolicArray`: registered
operands, registered product, then a registered partial-sum add (``psum_out = psum_in + x·w``
three cycles after the operands); partial sums flow down a column.
"""
from amaranth.hdl import Cat, ClockSignal, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw import fpga_family

#: the column sums' width (int32 accumulation)
ACC = signed(32)

def psum_width(rows: int) -> int:
    """Bits of a partial sum after ``rows`` int8×int8 products: every product lies in
    [−128·127, 128·128], so ``|sum| ≤ rows·2^14``."""
    return (rows * (1 << 14)).bit_length() + 1


def _sext16(v):
    """An int8 as the 16-bit two's-complement operand of a 16×16 signed multiplier."""
    return Cat(v, v[7].replicate(8))


class PE(wiring.Component):
    """``x_r, w_r <= x, w``; ``prod <= x_r*w_r``; ``psum_out <= psum_in + prod`` (latency 3 for
    x/w, 1 for psum_in).  Register → multiplier → register, no logic in the multiplier's path;
    on ECP5 the operand and product registers are MULT18X18D's own (instantiated), on iCE40
    the whole PE is one SB_MAC16 (registers and adder its own); elsewhere (simulation) it is
    behavioural."""
    LATENCY = 3

    def __init__(self, psum_width: int = 32, bel: str | None = None):
        #: partial-sum bits: a column of ``rows`` PEs never needs more than
        #: :func:`psum_width` ``(rows)`` (the column foot widens to 32)
        self.psum_width = psum_width
        #: ECP5: the DSP site (nextpnr ``BEL``) to fix the multiplier to (``hw.engine.dsp_sites``)
        self.bel = bel
        super().__init__({"x": In(signed(8)), "w": In(signed(8)),
                          "psum_in": In(signed(psum_width)), "psum_out": Out(signed(psum_width))})

    def elaborate(self, platform):
        m = Module()
        prod = Signal(signed(16))
        if fpga_family(platform) == "ecp5":
            # yosys maps a multiply to a bare MULT18X18D and leaves the registers in slices
            # (route → multiplier → route); instantiated, the operand and product registers
            # are the block's own (same cycle behaviour as the behavioural version below)
            xa, wb, p = Signal(signed(18)), Signal(signed(18)), Signal(36)
            m.d.comb += [xa.eq(self.x), wb.eq(self.w), prod.eq(p[:16])]
            ports = {f"i_A{k}": xa[k] for k in range(18)}
            ports |= {f"i_B{k}": wb[k] for k in range(18)}
            ports |= {f"i_C{k}": 0 for k in range(18)}
            ports |= {f"o_P{k}": p[k] for k in range(36)}
            ports |= {f"i_{n}{k}": 0 for n in ("CLK", "CE", "RST") for k in range(1, 4)}
            if self.bel:
                ports["a_BEL"] = self.bel
            m.submodules.mult = Instance(
                "MULT18X18D",
                p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0", p_REG_OUTPUT_CLK="CLK0",
                p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
                i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
                i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0, **ports)
        elif fpga_family(platform) == "ice40":
            # SB_MAC16 does the whole PE: operand registers (A_REG, B_REG), the product
            # register (PIPELINE_16x16_MULT_REG2) and the partial-sum add with its output
            # register (C:D + product, the carry from the low half into the high half), so no
            # fabric logic cell holds a PE register (the UP5K is short of them)
            psum = Signal(signed(32))
            o = Signal(32)
            m.d.comb += [psum.eq(self.psum_in), self.psum_out.eq(o[:self.psum_width])]
            m.submodules.mac = Instance(
                "SB_MAC16",
                p_A_REG=1, p_B_REG=1, p_C_REG=0, p_D_REG=0,
                p_PIPELINE_16x16_MULT_REG2=1, p_A_SIGNED=1, p_B_SIGNED=1,
                p_TOPADDSUB_UPPERINPUT=1, p_TOPADDSUB_LOWERINPUT=2,
                p_TOPADDSUB_CARRYSELECT=2, p_TOPOUTPUT_SELECT=1,
                p_BOTADDSUB_UPPERINPUT=1, p_BOTADDSUB_LOWERINPUT=2,
                p_BOTADDSUB_CARRYSELECT=0, p_BOTOUTPUT_SELECT=1,
                i_CLK=ClockSignal(), i_CE=1,
                i_A=_sext16(self.x),
                i_B=_sext16(self.w), i_C=psum[16:], i_D=psum[:16],
                **{f"i_{n}": 0 for n in ("AHOLD", "BHOLD", "CHOLD", "DHOLD", "IRSTTOP",
                                         "IRSTBOT", "ORSTTOP", "ORSTBOT", "OLOADTOP",
                                         "OLOADBOT", "ADDSUBTOP", "ADDSUBBOT", "OHOLDTOP",
                                         "OHOLDBOT", "CI", "ACCUMCI", "SIGNEXTIN")},
                o_O=o)
            return m
        else:
            x_r, w_r = Signal(signed(8)), Signal(signed(8))
            m.d.sync += [x_r.eq(self.x), w_r.eq(self.w)]
            m.d.sync += prod.eq(x_r * w_r)
        m.d.sync += self.psum_out.eq(self.psum_in + prod)
        return m

