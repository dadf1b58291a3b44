"""Fused 2×2 max-pool (stride 2, floor) on the engine's output words, so a conv+ReLU+pool
chain writes a quarter of the activations.

Input: output-channel words (``lanes`` int8) in raster order of an ``h × w`` map (one word per
beat, ``lib.stream``). Output: the pooled ``h//2 × w//2`` map in raster order. One row buffer of
``max_width/2`` words holds the horizontal maxima of each even row; the odd row combines with
it. An odd last row or column is dropped (ONNX MaxPool 2×2/2 without padding, floor mode).
Max-pooling is exact on int8 (`docs/numerics.md`), so no requantisation is involved.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class MaxPool2x2(wiring.Component):
    def __init__(self, lanes: int, max_width: int):
        self.lanes, self.max_width = lanes, max_width
        word = data.ArrayLayout(signed(8), lanes)
        self.word = word
        super().__init__({
            "w": In(range(max_width + 1)),
            "h": In(12),
            "i": In(stream.Signature(word)),
            "o": Out(stream.Signature(word)),
        })

    def _max(self, m, a, b, name):
        r = Signal(self.word, name=name)
        for k in range(self.lanes):
            m.d.comb += r[k].eq(Mux(a[k] > b[k], a[k], b[k]))
        return r

    def elaborate(self, platform):
        m = Module()
        m.submodules.rowbuf = rowbuf = Memory(shape=self.word, depth=max(1, self.max_width // 2),
                                              init=[])
        x = Signal(range(self.max_width + 1))
        y = Signal(12)
        hold = Signal(self.word)
        wr = rowbuf.write_port()
        rd = rowbuf.read_port(domain="comb")
        m.d.comb += [rd.addr.eq(x >> 1), wr.addr.eq(x >> 1)]

        take = Signal()
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     take.eq(self.i.valid & self.i.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        v = self.i.payload
        hmax = self._max(m, hold, v, "hmax")
        pair_done = x[0] & (x + 1 <= (self.w & ~1))      # odd column inside the even width
        row_used = y + 1 <= (self.h & ~1)                 # row inside the even height
        m.d.comb += [wr.data.eq(hmax), wr.en.eq(take & pair_done & ~y[0] & row_used)]
        vmax = self._max(m, rd.data, hmax, "vmax")
        with m.If(take):
            with m.If(~x[0]):
                m.d.sync += hold.eq(v)
            with m.If(pair_done & y[0] & row_used):
                m.d.sync += [self.o.payload.eq(vmax), self.o.valid.eq(1)]
            with m.If(x + 1 == self.w):
                m.d.sync += x.eq(0)
                m.d.sync += y.eq(Mux(y + 1 == self.h, 0, y + 1))
            with m.Else():
                m.d.sync += x.eq(x + 1)
        return m
