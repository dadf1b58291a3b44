"""Processing elements: one int8×int8 multiply each, registered so it maps onto one hard
multiplier (ECP5 MULT18X18D with its input/output registers, iCE40 SB_MAC16).

* :class:`PE` — the systolic cell of :class:`hw.systolic.SystolicArray`: registered product,
  then a registered partial-sum add (``psum_out = psum_in + x·w`` two cycles later); partial sums
  flow down a column.
* :class:`MAC` — a stand-alone accumulating MAC (``acc += x·w``), the smallest real RTL that
  proves the simulation flow against NumPy.
"""
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

ACC = signed(32)


class PE(wiring.Component):
    """``prod <= x*w``; ``psum_out <= psum_in + prod`` (latency 2 for x/w, 1 for psum_in)."""
    x: In(signed(8))
    w: In(signed(8))
    psum_in: In(ACC)
    psum_out: Out(ACC)

    def elaborate(self, platform):
        m = Module()
        prod = Signal(signed(16))
        m.d.sync += prod.eq(self.x * self.w)
        m.d.sync += self.psum_out.eq(self.psum_in + prod)
        return m


class MAC(wiring.Component):
    """Accumulating int8 MAC. When ``valid``: ``acc <= (0 if first else acc) + x*w`` (the
    product is registered first, so ``acc`` shows a beat two cycles after it is presented)."""
    valid: In(1)
    first: In(1)
    x: In(signed(8))
    w: In(signed(8))
    acc: Out(ACC)

    def elaborate(self, platform):
        m = Module()
        prod = Signal(signed(16))
        p_valid = Signal()
        p_first = Signal()
        m.d.sync += [prod.eq(self.x * self.w), p_valid.eq(self.valid), p_first.eq(self.first)]
        with m.If(p_valid):
            with m.If(p_first):
                m.d.sync += self.acc.eq(prod)
            with m.Else():
                m.d.sync += self.acc.eq(self.acc + prod)
        return m
