"""Post-processing: int32 accumulator → int8, bit-exact with ``host.quant.requantize``.

gemmlowp/TFLite fixed point (DESIGN.md §4): saturating left shift, saturating rounding doubling
high multiply by the Q31 multiplier, rounding right shift (half away from zero), ``+ zero
point``, clamp to [lo, hi] (ReLU/ReLU6/Clip bounds).  Bias is already in the accumulator (the
engine starts each output with the folded bias).

One lane is a 5-stage pipeline with an always-ready ``lib.stream`` in and out (the engine never
back-pressures it): one accumulator per cycle, fixed latency :attr:`Requant.LATENCY`.  The
32×32 multiply is the only wide multiplier; it is shared by all columns of the array (see
``hw.engine``), so its cost does not scale with the PE count.
"""
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

#: Per-channel parameters and the accumulator of one output value.
RequantIn = data.StructLayout({
    "acc": signed(32),
    "mult": signed(32),    # Q31 multiplier m (>= 0 from quantize_multiplier; any int32 works)
    "shift": signed(6),    # -31..30: left shift if > 0, rounding right shift if < 0
    "zp": signed(9),       # output zero point
    "lo": signed(8),
    "hi": signed(8),
})


class Requant(wiring.Component):
    """One requantisation lane: ``o.payload = requantize(acc, mult, shift, zp, lo, hi)``."""
    LATENCY = 5

    i: In(stream.Signature(RequantIn, always_ready=True))
    o: Out(stream.Signature(signed(8), always_ready=True))

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload

        # ---- stage 1: split the shift, saturating left shift ------------------------------
        v1, x1, m1, r1, zp1, lo1, hi1 = (Signal(name="v1"), Signal(signed(32), name="x1"),
                                         Signal(signed(32), name="m1"), Signal(5, name="r1"),
                                         Signal(signed(9), name="zp1"), Signal(signed(8), name="lo1"),
                                         Signal(signed(8), name="hi1"))
        left = Signal(5)
        m.d.comb += left.eq(Mux(p.shift > 0, p.shift, 0))
        wide = Signal(signed(64))
        m.d.comb += wide.eq(p.acc << left)
        m.d.sync += [
            v1.eq(self.i.valid),
            x1.eq(Mux(wide > INT32_MAX, INT32_MAX, Mux(wide < INT32_MIN, INT32_MIN, wide))),
            m1.eq(p.mult),
            r1.eq(Mux(p.shift < 0, -p.shift, 0)),
            zp1.eq(p.zp), lo1.eq(p.lo), hi1.eq(p.hi),
        ]

        # ---- stage 2: 32×32 product (one wide multiplier) --------------------------------
        v2, ab2, ovf2 = Signal(name="v2"), Signal(signed(64), name="ab2"), Signal(name="ovf2")
        r2, zp2, lo2, hi2 = (Signal(5, name="r2"), Signal(signed(9), name="zp2"),
                             Signal(signed(8), name="lo2"), Signal(signed(8), name="hi2"))
        m.d.sync += [
            v2.eq(v1), ab2.eq(x1 * m1),
            ovf2.eq((x1 == INT32_MIN) & (m1 == INT32_MIN)),
            r2.eq(r1), zp2.eq(zp1), lo2.eq(lo1), hi2.eq(hi1),
        ]

        # ---- stage 3: rounding doubling high half (truncating division by 2^31) -----------
        t = Signal(signed(66))
        m.d.comb += t.eq(ab2 + Mux(ab2 >= 0, 1 << 30, 1 - (1 << 30)))
        q_trunc = Signal(signed(66))
        m.d.comb += q_trunc.eq((t + Mux(t < 0, (1 << 31) - 1, 0)) >> 31)
        v3, q3 = Signal(name="v3"), Signal(signed(32), name="q3")
        r3, zp3, lo3, hi3 = (Signal(5, name="r3"), Signal(signed(9), name="zp3"),
                             Signal(signed(8), name="lo3"), Signal(signed(8), name="hi3"))
        m.d.sync += [
            v3.eq(v2), q3.eq(Mux(ovf2, INT32_MAX, q_trunc)),
            r3.eq(r2), zp3.eq(zp2), lo3.eq(lo2), hi3.eq(hi2),
        ]

        # ---- stage 4: rounding divide by 2^right (half away from zero) --------------------
        mask = Signal(32)
        m.d.comb += mask.eq((Const(1, 33) << r3) - 1)
        rem = Signal(32)
        m.d.comb += rem.eq(q3.as_unsigned() & mask)
        thr = Signal(33)
        m.d.comb += thr.eq((mask >> 1) + (q3 < 0))
        v4, y4 = Signal(name="v4"), Signal(signed(33), name="y4")
        zp4, lo4, hi4 = Signal(signed(9), name="zp4"), Signal(signed(8), name="lo4"), Signal(signed(8), name="hi4")
        m.d.sync += [
            v4.eq(v3), y4.eq((q3 >> r3) + (rem > thr)),
            zp4.eq(zp3), lo4.eq(lo3), hi4.eq(hi3),
        ]

        # ---- stage 5: + zero point, clamp ------------------------------------------------
        z = Signal(signed(34))
        m.d.comb += z.eq(y4 + zp4)
        m.d.sync += [
            self.o.valid.eq(v4),
            self.o.payload.eq(Mux(z < lo4, lo4, Mux(z > hi4, hi4, z))),
        ]
        return m
