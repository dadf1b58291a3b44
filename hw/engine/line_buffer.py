"""Row-stationary line buffer: K×K windows of a streamed map, each input row stored once.

Input pixels arrive row by row (``lib.stream``, one pixel word per beat). Each row is written
once into one of ``max_k`` line memories (row ``iy`` lives in line ``iy mod max_k``) and then
reused for every kernel row that covers it and every horizontal window position — the
Eyeriss row-stationary idea that makes each input byte leave off-chip memory once.

For each output row the buffer sweeps the padded columns ``j = 0 … (Wo−1)·s + K − 1``: all line
memories are read at column ``j − pad_l`` (one read per line per column), the K×K shift
register takes the new column, and every ``s``-th position from ``K−1`` on a window leaves on
the output stream. Rows or columns outside the map read as the zero point (image borders or,
for block convolution, block borders: the caller sets the pads per block).

Elaboration parameters: ``max_width`` (longest row), ``max_k`` (largest kernel), ``width``
(bits of a pixel word, e.g. 8·lanes). Runtime (descriptor): ``h, w, k, stride, pads, zp``.
Filling the next rows waits until the current output row is swept (no overlap), so the buffer
emits at most one window per cycle and pauses for ``stride·W`` input beats between output rows.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


def line_buffer_desc(max_width: int, max_k: int) -> data.StructLayout:
    dim = range(max_width + 1)
    return data.StructLayout({
        "h": 12, "w": dim, "k": range(max_k + 1), "stride": 2,
        "pad_t": 3, "pad_l": 3, "pad_b": 3, "pad_r": 3,
        "zp": 8,
    })


class LineBuffer(wiring.Component):
    def __init__(self, max_width: int, max_k: int = 7, width: int = 8):
        self.max_width, self.max_k, self.width = max_width, max_k, width
        self.lanes = width // 8
        win = data.ArrayLayout(data.ArrayLayout(width, max_k), max_k)
        super().__init__({
            "desc": In(line_buffer_desc(max_width, max_k)),
            "start": In(1),
            "busy": Out(1),
            "i": In(stream.Signature(width)),
            "o": Out(stream.Signature(win)),
        })

    def elaborate(self, platform):
        m = Module()
        NL, K, WB = self.max_k, self.max_k, self.width
        d = self.desc
        zp_word = Cat(*([d.zp] * self.lanes))

        lines = []
        for n in range(NL):
            mem = Memory(shape=WB, depth=self.max_width, init=[])
            m.submodules[f"line_{n}"] = mem
            lines.append(mem)

        # output size of the padded map
        hp = Signal(14)
        wp = Signal(14)
        m.d.comb += [hp.eq(d.h + d.pad_t + d.pad_b), wp.eq(d.w + d.pad_l + d.pad_r)]
        ho = Signal(13)
        j_last = Signal(14)                # last padded column a sweep reads
        with m.If(d.stride == 2):
            m.d.comb += ho.eq(((hp - d.k) >> 1) + 1)
            m.d.comb += j_last.eq((((wp - d.k) >> 1) << 1) + d.k - 1)
        with m.Else():
            m.d.comb += ho.eq(hp - d.k + 1)
            m.d.comb += j_last.eq(wp - 1)

        # ---- state ------------------------------------------------------------------------
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        oy = Signal(13)
        iy0 = Signal(range(-8, 1 << 13))     # first input row of the current window row
        base = Signal(range(NL))             # line holding row iy0 (mod NL)
        rows_in = Signal(13)                 # input rows fully stored
        col_in = Signal(range(self.max_width + 1))
        sweeping = Signal()
        j = Signal(14)

        # rows needed before sweeping output row oy (after the last one: all, to drain the input)
        tail = Signal()
        need = Signal(range(-8, 1 << 14))
        m.d.comb += need.eq(Mux(tail, d.h, iy0 + d.k))
        have_rows = Signal()
        m.d.comb += have_rows.eq((rows_in >= need) | (rows_in == d.h))

        # ---- fill: accept input while the rows for this output row are missing --------------
        fill = busy & ~sweeping & ~have_rows
        m.d.comb += self.i.ready.eq(fill)
        line_w = Signal(range(NL))          # line of row rows_in
        for n, mem in enumerate(lines):
            wpt = mem.write_port()
            m.d.comb += [wpt.addr.eq(col_in), wpt.data.eq(self.i.payload),
                         wpt.en.eq(self.i.valid & self.i.ready & (line_w == n))]
        with m.If(self.i.valid & self.i.ready):
            with m.If(col_in + 1 == d.w):
                m.d.sync += [col_in.eq(0), rows_in.eq(rows_in + 1),
                             line_w.eq(Mux(line_w == NL - 1, 0, line_w + 1))]
            with m.Else():
                m.d.sync += col_in.eq(col_in + 1)

        # ---- sweep --------------------------------------------------------------------------
        stall = Signal()
        m.d.comb += stall.eq(self.o.valid & ~self.o.ready)
        r_valid, r_colok, r_emit, r_last = Signal(), Signal(), Signal(), Signal()
        with m.If(busy & ~tail & ~sweeping & have_rows & ~self.o.valid & ~r_valid):
            m.d.sync += [sweeping.eq(1), j.eq(0)]

        ix = Signal(range(-8, 1 << 14))
        m.d.comb += ix.eq(j - d.pad_l)
        issue = sweeping & ~stall
        rdata = []
        for mem in lines:
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(ix), rp.en.eq(~stall)]
            rdata.append(rp.data)

        # what the read returns next cycle: column validity, emit flag, rows' lines
        r_line = [Signal(range(NL), name=f"r_line_{ky}") for ky in range(K)]
        r_rowok = [Signal(name=f"r_rowok_{ky}") for ky in range(K)]
        phase_ok = Mux(d.stride == 2, ~(j - (d.k - 1))[0], 1)
        with m.If(~stall):
            m.d.sync += [
                r_valid.eq(issue),
                r_colok.eq((ix >= 0) & (ix < d.w)),
                r_emit.eq(issue & (j >= d.k - 1) & phase_ok),
                r_last.eq(issue & (j == j_last)),
            ]
            for ky in range(K):
                ln = base + ky
                m.d.sync += [
                    r_line[ky].eq(Mux(ln >= NL, ln - NL, ln)),
                    r_rowok[ky].eq((iy0 + ky >= 0) & (iy0 + ky < d.h)),
                ]
        with m.If(issue):
            with m.If(j == j_last):
                m.d.sync += sweeping.eq(0)
            with m.Else():
                m.d.sync += j.eq(j + 1)

        # window shift register: new column enters at index k−1
        win = Signal(self.o.payload.shape())
        with m.If(r_valid & ~stall):
            for ky in range(K):
                col = Signal(WB, name=f"newcol_{ky}")
                sel = Const(0, WB)
                for n in range(NL):
                    sel = Mux(r_line[ky] == n, rdata[n], sel)
                m.d.comb += col.eq(Mux(r_colok & r_rowok[ky], sel, zp_word))
                for kx in range(K):
                    nxt = win[ky][kx + 1] if kx + 1 < K else 0
                    m.d.sync += win[ky][kx].eq(Mux(d.k - 1 == kx, col, nxt))
            with m.If(r_emit):
                m.d.sync += self.o.valid.eq(1)
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.comb += self.o.payload.eq(win)

        # end of a sweep: next output row
        with m.If(r_valid & ~stall & r_last):
            m.d.sync += [oy.eq(oy + 1), iy0.eq(iy0 + d.stride)]
            nb = base + d.stride
            m.d.sync += base.eq(Mux(nb >= NL, nb - NL, nb))
            with m.If(oy + 1 == ho):
                m.d.sync += tail.eq(1)
        with m.If(tail & (rows_in == d.h)):
            m.d.sync += [busy.eq(0), tail.eq(0)]

        with m.If(self.start & ~busy):
            m.d.sync += [busy.eq(1), oy.eq(0), iy0.eq(-d.pad_t), rows_in.eq(0), col_in.eq(0),
                         line_w.eq(0), sweeping.eq(0), tail.eq(0),
                         base.eq(Mux(d.pad_t == 0, 0, NL - d.pad_t))]
        return m
