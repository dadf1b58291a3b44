"""The processing element: one int8×int8 multiply, registered so it maps onto one hard
multiplier (ECP5 MULT18X18D with its input/output registers, iCE40 SB_MAC16).

:class:`PE` is the systolic cell of :class:`hw.engine.systolic.SystolicArray`: registered
operands, registered product, then a registered partial-sum add (``psum_out = psum_in + x·w``
three cycles after the operands); partial sums flow down a column.
"""
from amaranth.hdl import ClockSignal, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: the column sums' width (int32 accumulation)
ACC = signed(32)

def psum_width(rows: int) -> int:
    """Bits of a partial sum after ``rows`` int8×int8 products: every product lies in
    [−128·127, 128·128], so ``|sum| ≤ rows·2^14``."""
    return (rows * (1 << 14)).bit_length() + 1


class PE(wiring.Component):
    """``x_r, w_r <= x, w``; ``prod <= x_r*w_r``; ``psum_out <= psum_in + prod`` (latency 3 for
    x/w, 1 for psum_in).  Register → multiplier → register, no logic in the multiplier's path;
    on ECP5 the operand and product registers are MULT18X18D's own (instantiated), elsewhere
    yosys maps the multiply (iCE40: SB_MAC16 with the registers in the fabric beside it)."""
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
        if getattr(platform, "family", None) == "ecp5":
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
        else:
            x_r, w_r = Signal(signed(8)), Signal(signed(8))
            m.d.sync += [x_r.eq(self.x), w_r.eq(self.w)]
            m.d.sync += prod.eq(x_r * w_r)
        m.d.sync += self.psum_out.eq(self.psum_in + prod)
        return m

