"""Post-processing: int32 accumulator (+ bias) → int8, bit-exact with ``host.model.quant.requantize``.

gemmlowp/TFLite fixed point (`docs/numerics.md`): saturating left shift, saturating rounding doubling
high multiply by the Q31 multiplier, rounding right shift (half away from zero), ``+ zero
point``, clamp to [lo, hi] (ReLU/ReLU6/Clip bounds).

The lane works in sign–magnitude, which turns gemmlowp's sign-dependent nudges into plain
round-half-up on magnitudes:

* ``q = SRDHM(x, m)`` with ``m ≥ 0``: ``|q| = (|x|·m + 2^30 − [x<0]) >> 31``, sign of ``x``;
* ``RoundingDivideByPOT(q, e)``: ``|r| = (|q| + (2^e >> 1)) >> e``, sign of ``q``.

so the 32×31 product is unsigned: with hard multipliers four 16×16 partial products (one DSP
tile each: ECP5 MULT18X18D, iCE40 SB_MAC16), no carry chain longer than ~34 bits, 11 stages
(10 without the bias stage); in logic (``lut_mul``) sixteen pairs of partial-product rows, each
pair one carry chain (:mod:`hw.engine.and_pair`: on ECP5 the ANDs live inside the carry cells' LUTs),
and an adder tree that also adds the rounding constants, 12 stages.  The multiplier must be in
[0, 2^31) (what :func:`host.model.quant.quantize_multiplier` produces).

One lane takes one accumulator per cycle through always-ready ``lib.stream`` in/out (the engine
never back-pressures it), fixed latency :attr:`Requant.LATENCY`.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.engine.and_pair import AndPairSum
from hw.engine.static_chain import own_copy

#: Per-channel parameters and the accumulator of one output value.
RequantIn = data.StructLayout({
    "acc": signed(32),
    "bias": signed(32),    # added first (int32 wrap-around, as the accumulator itself)
    "mult": unsigned(31),  # Q31 multiplier m in [0, 2^31)
    "shift": signed(6),    # -31..30: left shift if > 0, rounding right shift if < 0
    "zp": signed(9),       # output zero point
    "lo": signed(8),
    "hi": signed(8),
})


def lane_signature() -> wiring.Signature:
    """The interface every requantisation lane has: an always-ready stream of
    :data:`RequantIn` in, int8 out."""
    return wiring.Signature({
        "i": In(stream.Signature(RequantIn, always_ready=True)),
        "o": Out(stream.Signature(signed(8), always_ready=True)),
    })


class Requant(wiring.Component):
    """One requantisation lane: ``o.payload = requantize(acc + bias, mult, shift, zp, lo, hi)``.

    ``lut_mul=True`` builds the product in logic instead of hard multipliers (one more stage),
    so the FPGA's multipliers all go to the PE array: ~2000 TRELLIS_COMB on ECP5 with
    ``cells="auto"``/``"ecp5"`` (carry cells with the ANDs inside), ~3000 as generic logic.
    ``bias=False`` drops the bias stage (the engine's accumulators start at the bias)."""

    def __init__(self, lut_mul: bool = False, bias: bool = True, cells: str = "auto"):
        self.lut_mul = lut_mul
        #: ``lut_mul`` partial products: ECP5 carry cells or generic logic (see hw.engine.and_pair)
        self.cells = cells
        #: ``bias=False``: no bias stage (``payload.bias`` is ignored) — the engine starts its
        #: column accumulators at the bias instead, one stage less
        self.bias = bias
        self.LATENCY = 10 + bool(lut_mul) + bool(bias)
        super().__init__(lane_signature())

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        stage = [0]

        def reg(value_shape, value, name):
            s = Signal(value_shape, name=f"s{stage[0]}_{name}")
            m.d.sync += s.eq(value)
            return s

        def carry(own=False, **kw):
            """Register the side-band fields into the next stage. ``own``: registers that
            synthesis may not merge with another lane's (hw.engine.static_chain.own_copy): the
            engine gives every lane the same zero point and bounds, and with merged registers
            lane 9's clamp read lane 8's bound across the die (the routed 85F's worst path)."""
            if own:
                return {k: own_copy(m, v, f"s{stage[0]}_{k}", platform) for k, v in kw.items()}
            return {k: reg(len(v) if not v.shape().signed else v.shape(), v, k) for k, v in kw.items()}

        # S0: bias add (optional)
        stage[0] = 0
        if self.bias:
            v = reg(1, self.i.valid, "v")
            a = reg(signed(32), p.acc + p.bias, "a")
            sb = carry(m=p.mult, sh=p.shift, zp=p.zp, lo=p.lo, hi=p.hi)
        else:
            v, a = self.i.valid, p.acc
            sb = dict(m=p.mult, sh=p.shift, zp=p.zp, lo=p.lo, hi=p.hi)

        # S1: sign, magnitude, split shift
        stage[0] = 1
        v1 = reg(1, v, "v")
        neg = reg(1, a < 0, "neg")
        mag = reg(unsigned(32), Mux(a < 0, -a, a), "mag")          # |INT32_MIN| = 2^31 fits
        left = reg(unsigned(5), Mux(sb["sh"] > 0, sb["sh"], 0), "left")
        right = reg(unsigned(5), Mux(sb["sh"] < 0, -sb["sh"], 0), "right")
        sb = carry(m=sb["m"], zp=sb["zp"], lo=sb["lo"], hi=sb["hi"])

        # S2: left shift (barrel)
        stage[0] = 2
        v2 = reg(1, v1, "v")
        wide = reg(unsigned(63), mag << left, "wide")
        neg2 = reg(1, neg, "neg")
        right2 = reg(unsigned(5), right, "right")
        sb = carry(**sb)

        # S3: saturate the magnitude to 2^31 − 1 (positive) or 2^31 (negative)
        stage[0] = 3
        v3 = reg(1, v2, "v")
        big = wide[31:] != 0                                       # wide ≥ 2^31
        over_neg = (wide[32:] != 0) | (wide[31] & (wide[:31] != 0))  # wide > 2^31
        sat = Mux(neg2, Mux(over_neg, 1 << 31, wide[:32]), Mux(big, (1 << 31) - 1, wide[:31]))
        x = reg(unsigned(32), sat, "x")
        neg3 = reg(1, neg2, "neg")
        right3 = reg(unsigned(5), right2, "right")
        sb = carry(**sb)

        if self.lut_mul:
            self._product_in_logic(m, reg, carry, stage, v3, x, neg3, right3, sb)
            return m

        # S4: four unsigned 16×16 partial products of |x|·m (hard multipliers)
        stage[0] = 4
        mm = sb["m"]
        pairs = {"hh": (x[16:32], mm[16:31]), "hl": (x[16:32], mm[:16]),
                 "lh": (x[:16], mm[16:31]), "ll": (x[:16], mm[:16])}
        v4 = reg(1, v3, "v")
        prods = {k: reg(unsigned(32), a * b, k) for k, (a, b) in pairs.items()}
        hh, hl, lh, ll = prods["hh"], prods["hl"], prods["lh"], prods["ll"]
        neg4 = reg(1, neg3, "neg")
        right4 = reg(unsigned(5), right3, "right")
        sb = carry(zp=sb["zp"], lo=sb["lo"], hi=sb["hi"])

        # S5: middle sum
        stage[0] = 5
        v5 = reg(1, v4, "v")
        mid = reg(unsigned(33), hl + lh, "mid")
        hh5 = reg(unsigned(32), hh, "hh")
        ll5 = reg(unsigned(32), ll, "ll")
        neg5 = reg(1, neg4, "neg")
        right5 = reg(unsigned(5), right4, "right")
        sb = carry(**sb)

        # S6: low part with the rounding nudge, high part  (P + c) >> 31 = 2(hh + mid_hi) + L >> 31
        stage[0] = 6
        v6 = reg(1, v5, "v")
        low = reg(unsigned(35), ll5 + (mid[:16] << 16) + (1 << 30) - neg5, "low")
        high = reg(unsigned(34), hh5 + mid[16:], "high")
        neg6 = reg(1, neg5, "neg")
        right6 = reg(unsigned(5), right5, "right")
        sb = carry(**sb)

        # S7: |q| = 2·high + (low >> 31), plus half for round-half-away-from-zero on the
        # magnitude (a three-operand add of ~34 bits)
        stage[0] = 7
        v8 = reg(1, v6, "v")
        half = Signal(unsigned(32))
        m.d.comb += half.eq((1 << right6) >> 1)
        qh = reg(unsigned(35), (high << 1) + low[31:] + half, "qh")
        neg8 = reg(1, neg6, "neg")
        right8 = reg(unsigned(5), right6, "right")
        sb = carry(**sb)
        self._output(m, reg, carry, stage, v8, qh, neg8, right8, sb)
        return m

    def _output(self, m, reg, carry, stage, v, qh, neg, right, sb):
        """The last three stages: right shift (barrel), sign and zero point, clamp."""
        # S9: right shift (barrel)
        stage[0] = 9
        v9 = reg(1, v, "v")
        r = reg(unsigned(len(qh)), qh >> right, "r")
        neg9 = reg(1, neg, "neg")
        sb = carry(own=True, **sb)

        # S10: apply the sign and add the zero point. Only r's low 10 bits enter the sum: with
        # r ≥ 1024, zp − r < −128 ≤ lo and zp + r > 127 ≥ hi for any 9-bit zp, so the clamp
        # gives lo (negative) or hi whatever zp is (``big``), and the sum and the clamp's
        # compares are 12 bits wide instead of ~37 (the routed 85F's worst path was the clamp)
        stage[0] = 10
        v10 = reg(1, v9, "v")
        big = reg(1, r[10:] != 0, "big")                          # r has ≥ 32 bits
        low = r[:10]
        y = reg(signed(12), Mux(neg9, sb["zp"] - low, sb["zp"] + low), "y")
        neg10 = reg(1, neg9, "neg")
        sb = carry(own=True, lo=sb["lo"], hi=sb["hi"])

        # S11: clamp
        lo, hi = sb["lo"], sb["hi"]
        m.d.sync += [
            self.o.valid.eq(v10),
            self.o.payload.eq(Mux(big, Mux(neg10, lo, hi),
                                  Mux(y < lo, lo, Mux(y > hi, hi, y)))),
        ]

    def _product_in_logic(self, m, reg, carry, stage, v3, x, neg3, right3, sb):
        """|q| + half in logic: sixteen pairs of partial-product rows, each pair one carry
        chain (:class:`hw.engine.and_pair.AndPairSum`), then a four-level adder tree into which the
        rounding nudge ``2^30 − [x<0]`` and the right shift's half (``2^(right−1)·2^31``) are
        added, so ``P >> 31`` is ``|q| + half`` directly.  Five stages, as many as the
        hard-multiplier path's four plus the one ``lut_mul`` always had."""
        mm = sb["m"]
        # S4: S_j = m·x[2j] + 2·m·x[2j+1]  (33 bits, weight 4^j)
        stage[0] = 4
        v = reg(1, v3, "v")
        rows = []
        for j in range(16):
            ps = AndPairSum(31, cells=self.cells)
            m.submodules[f"pair_{j}"] = ps
            m.d.comb += [ps.a.eq(mm), ps.s0.eq(x[2 * j]), ps.s1.eq(x[2 * j + 1])]
            rows.append(reg(unsigned(33), ps.o, f"pair{j}"))
        neg = reg(1, neg3, "neg")
        right = reg(unsigned(5), right3, "right")
        sb = carry(zp=sb["zp"], lo=sb["lo"], hi=sb["hi"])
        # S5..S7: tree levels (weights 4^j → 16^k → 256^k → 65536^k); the nudge joins at S6
        # (it is only wiring: 2^30 − 1 = thirty ones, 2^30 = bit 30), the half is decoded at S7
        widths = {5: 35, 6: 39, 7: 48}
        shift = 2
        for st in (5, 6, 7):
            stage[0] = st
            v = reg(1, v, "v")
            nxt = []
            for k in range(0, len(rows), 2):
                total = rows[k] + (rows[k + 1] << shift)
                if st == 6 and k == 0:
                    total = total + Cat(*([neg] * 30), ~neg)
                nxt.append(reg(unsigned(widths[st]), total, f"t{k // 2}"))
            rows = nxt
            shift *= 2
            if st == 7:
                half = reg(unsigned(31), (1 << right) >> 1, "half")
            neg = reg(1, neg, "neg")
            right = reg(unsigned(5), right, "right")
            sb = carry(**sb)
        # S8: P = |x|·m + nudge + half·2^31 (63 bits); |q| + half = P >> 31
        stage[0] = 8
        v = reg(1, v, "v")
        p = Signal(unsigned(63))
        m.d.comb += p.eq(rows[0] + (rows[1] << 16) + (half << 31))
        qh = reg(unsigned(32), p[31:], "qh")
        neg = reg(1, neg, "neg")
        right = reg(unsigned(5), right, "right")
        sb = carry(**sb)
        self._output(m, reg, carry, stage, v, qh, neg, right, sb)


class RequantSerial(wiring.Component):
    """A small requantisation lane for small FPGAs: the same function as :class:`Requant`, every
    wide operation done a few bits per cycle in three phases of ``II`` cycles each, which work
    on three values at once (the iCE40 has no barrel shifters or wide multiplexers to spare):

    * **left shift**: ``|acc + bias|`` shifted left ``DIGIT_BITS`` bits per cycle, the bits
      leaving at the top kept as an overflow flag, then saturated to 2^31 − 1 (positive) or
      2^31 (negative);
    * **multiply**: ``S = c + |x|·m`` with ``c = 2^30 − [x<0]``, ``DIGIT_BITS`` bits of ``m``
      per cycle, least significant first; the sum shifts right as its low bits are done, so
      no carry chain is wider than 34 bits; of those low bits only the last two (bits 30 and
      31 of ``S``) are kept;
    * **right shift**: ``T = (S >> 30) >> right``, ``DIGIT_BITS`` bits per cycle, then
      ``|r| = (T + [right > 0]) >> 1``: ``(S >> 31 + 2^(right−1)) >> right`` in one rounding
      (nested floors), then the sign, the zero point and the clamp.

    An input beat may come at most once every :attr:`II` cycles; ``zp``, ``lo`` and ``hi`` are
    read at the output stage and must not change while a value is in flight (the engine takes
    them from the layer descriptor).  Fixed latency :attr:`LATENCY` from the input beat to
    ``o.valid``.  The left shift has ``II − 2`` cycles: shifts up to :attr:`MAX_LEFT`
    (``host.model.quant`` allows 30; real layers stay far below, and the compiler refuses a
    larger one for this lane)."""
    #: bits of the multiplier per cycle (1: II = 32; 2: II = 16)
    DIGIT_BITS = 2
    II = 32 // DIGIT_BITS
    MAX_LEFT = DIGIT_BITS * (II - 2)
    LATENCY = 3 * II + 4 + (DIGIT_BITS > 1)

    def __init__(self):
        super().__init__(lane_signature())

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        r, II = self.DIGIT_BITS, self.II

        def serial_shift(rem, by):
            """One cycle of a serial shift: ``min(rem, r)`` bits (``by(k)``: the statements that
            shift by ``k``), taken off ``rem``."""
            with m.If(rem >= r):
                m.d.sync += by(r) + [rem.eq(rem - r)]
            for k in range(r - 1, 0, -1):
                with m.Elif(rem == k):
                    m.d.sync += by(k) + [rem.eq(0)]

        # S0: bias add; the multiplier waits here until the multiply phase takes it (an input
        # comes at most every II cycles, and the phase takes it on the II-th)
        v0 = Signal()
        a0 = Signal(signed(32))
        sh0 = Signal(signed(6))
        m0 = Signal(unsigned(31))
        m.d.sync += v0.eq(self.i.valid)
        with m.If(self.i.valid):
            m.d.sync += [a0.eq(p.acc + p.bias), sh0.eq(p.shift), m0.eq(p.mult)]

        # phase 1: |a0| into X, shifted left by `left`, r bits a cycle for II − 2 cycles
        X = Signal(32)
        ovf, p_neg = Signal(), Signal()
        lrem, p_right = Signal(5), Signal(5)
        pc = Signal(range(II))
        p_last = Signal()
        m.d.sync += p_last.eq(pc == 1)
        with m.If(v0):
            m.d.sync += [X.eq(Mux(a0 < 0, -a0, a0)), ovf.eq(0), p_neg.eq(a0 < 0),
                         lrem.eq(Mux(sh0 > 0, sh0, 0)), p_right.eq(Mux(sh0 < 0, -sh0, 0)),
                         pc.eq(II - 2)]
        with m.Elif(pc != 0):
            m.d.sync += pc.eq(pc - 1)
            serial_shift(lrem, lambda k: [X.eq(X << k), ovf.eq(ovf | (X[32 - k:] != 0))])

        # phase 2: S = c + x·m, r bits of m a cycle; the digit products registered a cycle
        # ahead of the sum when r > 1 (two carry chains in series would not meet the clock)
        sat = ovf | X[31]
        xm = Signal(32)
        mm = Signal(31)
        mc = Signal(range(II + 1))
        m_neg, m_first = Signal(), Signal()
        m_right = Signal(5)
        with m.If(p_last):
            m.d.sync += [xm.eq(Mux(sat, Mux(p_neg, 1 << 31, (1 << 31) - 1), X)), mm.eq(m0),
                         mc.eq(II), m_neg.eq(p_neg), m_right.eq(p_right), m_first.eq(1)]
        with m.Elif(mc != 0):
            m.d.sync += [mm.eq(mm >> r), mc.eq(mc - 1), m_first.eq(0)]
        prod = sum(Mux(mm[j], xm << j, 0) for j in range(r))
        # the sign and right shift travel with the digits: the next value's phase 2 starts
        # while this one's last digits are still being added
        d_go, d_first, d_last, d_neg, d_right = mc != 0, m_first, mc == 1, m_neg, m_right
        if r > 1:
            pp = Signal(32 + r)
            pp_go, pp_first, pp_last, pp_neg = Signal(), Signal(), Signal(), Signal()
            pp_right = Signal(5)
            m.d.sync += [pp.eq(prod), pp_go.eq(d_go), pp_first.eq(d_first),
                         pp_last.eq(d_go & d_last), pp_neg.eq(d_neg), pp_right.eq(d_right)]
            prod, d_go, d_first, d_last, d_neg, d_right = (pp, pp_go, pp_first, pp_last,
                                                           pp_neg, pp_right)
        else:
            d_last = d_go & d_last
        acc = Signal(32)
        low2 = Signal(2)                      # the last two bits shifted out: S[30], S[31]
        t = Signal(33 + r)
        m.d.comb += t.eq(Mux(d_first, (1 << 30) - d_neg, acc) + prod)
        s_last, s_neg = Signal(), Signal()
        s_right = Signal(5)
        m.d.sync += [s_last.eq(d_last), s_neg.eq(d_neg), s_right.eq(d_right)]
        with m.If(d_go):
            m.d.sync += [acc.eq(t >> r), low2.eq(Cat(low2, t[:r])[-2:])]

        # phase 3: Q = S >> 30, shifted right by `right`: r bits on loading, then r bits a
        # cycle for II − 1 cycles
        Q = Signal(34)
        rrem = Signal(5)
        q_neg, q_inc = Signal(), Signal()
        qc = Signal(range(II))
        q_last = Signal()
        m.d.sync += q_last.eq(qc == 1)
        with m.If(s_last):
            # the first r bits of the shift on the way in: II − 1 cycles then shift the rest
            with m.If(s_right >= r):
                m.d.sync += [Q.eq(Cat(low2, acc) >> r), rrem.eq(s_right - r)]
            with m.Else():
                m.d.sync += [Q.eq(Cat(low2, acc)), rrem.eq(s_right)]
            m.d.sync += [q_neg.eq(s_neg), q_inc.eq(s_right != 0), qc.eq(II - 1)]
        with m.Elif(qc != 0):
            m.d.sync += qc.eq(qc - 1)
            serial_shift(rrem, lambda k: [Q.eq(Q >> k)])

        # F1: |r| = (T + inc) >> 1, saturated to 9 bits (|r| ≥ 256 clamps whatever the zero
        # point);  F2: sign and zero point;  F3: clamp
        u = Signal(11)
        m.d.comb += u.eq(Q[:10] + q_inc)
        f1_v, f1_neg = Signal(), Signal()
        rr = Signal(9)
        m.d.sync += [f1_v.eq(q_last), f1_neg.eq(q_neg),
                     rr.eq(Mux((Q[10:] != 0) | u[10], 511, u[1:10]))]
        f2_v = Signal()
        y = Signal(signed(11))
        m.d.sync += [f2_v.eq(f1_v), y.eq(Mux(f1_neg, p.zp - rr, p.zp + rr))]
        m.d.sync += [self.o.valid.eq(f2_v),
                     self.o.payload.eq(Mux(y < p.lo, p.lo, Mux(y > p.hi, p.hi, y)))]
        return m
