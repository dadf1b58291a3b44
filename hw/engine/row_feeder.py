"""Row feeder: streams the input rows of one pass from the map memory into the engine's ring of
line memories, so each input row is fetched once per pass and reused from the ring for every
kernel row and column (the row-stationary reuse of Eyeriss).

The map sits behind a memory port (``hw/memory/memport.py``: block RAM in simulation, the SDRAM
controller on a board) in the engine's input layout, ``(block·H + y)·W + x`` from ``base``.  A
pass fetches rows ``y = 0 … rows−1`` in order, for each row its ``nb`` channel blocks, for each
block its ``W`` pixels, and writes pixel ``(y, b, x)`` to word ``b·W + x`` of line ``y mod L``
(``line_rows = L`` lines of ``line_words`` words, both powers of two), so the array's address
generator finds a tap's word from the tap's coordinates by concatenation, with no multiplier
(the host puts ``b·W`` in the step table).

Flow control: a row is requested only while ``y < limit`` — the engine raises ``limit`` as the
array stops reading old rows, so a row never overwrites a line still in use — and ``rows`` counts
the rows completely written, which the engine compares with the rows its next output row needs.
Requests stream at one per cycle; responses may come at any latency (in request order).
"""
from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature


def _log2(n: int) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"{n} is not a power of two")
    return n.bit_length() - 1


class RowFeeder(wiring.Component):
    """``go`` starts a pass (``base``, ``rows``, ``w``, ``plane = H·W``, ``nb`` are taken then and
    must stay until ``idle``); ``fetched`` counts words requested since reset (memory traffic)."""

    def __init__(self, addr_width: int, word_width: int, line_rows: int, line_words: int):
        self.line_rows, self.line_words = line_rows, line_words
        self.xb, self.yb = _log2(line_words), _log2(line_rows)
        #: ring address bits: line, word within the line
        self.ring_bits = self.xb + self.yb
        super().__init__({
            "bus": Out(MemPortSignature(addr_width, word_width)),
            "go": In(1),
            "base": In(addr_width),
            "n_rows": In(12),
            "w": In(12),
            "plane": In(addr_width),
            "nb": In(8),
            "limit": In(signed(14)),
            "rows": Out(13),
            "idle": Out(1),
            "fetched": Out(32),
            "wr_addr": Out(max(1, self.ring_bits)),
            "wr_data": Out(word_width),
            "wr_en": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req, resp = self.bus.req, self.bus.resp

        # ---- request side: (row, block, column) in fetch order, address kept as a running sum
        ry, rb, rx = Signal(13), Signal(8), Signal(12)
        ptr, blk_ptr, row_ptr = (Signal(len(req.payload.addr), name=n)
                                 for n in ("ptr", "blk_ptr", "row_ptr"))
        active = Signal()               # between go and the last row written
        wanted = Signal()
        m.d.comb += [wanted.eq(active & (ry < self.n_rows) & (ry.as_signed() < self.limit)),
                     req.valid.eq(wanted), req.payload.addr.eq(ptr), req.payload.write.eq(0)]
        with m.If(req.valid & req.ready):
            m.d.sync += self.fetched.eq(self.fetched + 1)
            with m.If(rx + 1 != self.w):
                m.d.sync += [rx.eq(rx + 1), ptr.eq(ptr + 1)]
            with m.Elif(rb + 1 != self.nb):
                m.d.sync += [rx.eq(0), rb.eq(rb + 1), blk_ptr.eq(blk_ptr + self.plane),
                             ptr.eq(blk_ptr + self.plane)]
            with m.Else():
                m.d.sync += [rx.eq(0), rb.eq(0), ry.eq(ry + 1), row_ptr.eq(row_ptr + self.w),
                             blk_ptr.eq(row_ptr + self.w), ptr.eq(row_ptr + self.w)]

        # ---- write side: every response goes to its line at once -------------------------
        wy, wb, wx = Signal(13), Signal(8), Signal(12)
        wcol = Signal(self.xb + 1)        # b·W + x: the word's place in its line
        m.d.comb += [resp.ready.eq(1), self.wr_en.eq(resp.valid), self.wr_data.eq(resp.payload),
                     self.wr_addr.eq(Cat(wcol[:self.xb], wy[:self.yb])), self.rows.eq(wy)]
        with m.If(resp.valid):
            m.d.sync += wcol.eq(wcol + 1)
            with m.If(wx + 1 != self.w):
                m.d.sync += wx.eq(wx + 1)
            with m.Elif(wb + 1 != self.nb):
                m.d.sync += [wx.eq(0), wb.eq(wb + 1)]
            with m.Else():
                m.d.sync += [wx.eq(0), wb.eq(0), wy.eq(wy + 1), wcol.eq(0)]
        m.d.comb += self.idle.eq(~active)
        with m.If(active & (ry >= self.n_rows) & (wy >= self.n_rows)):
            m.d.sync += active.eq(0)

        with m.If(self.go):
            m.d.sync += [active.eq(1), ry.eq(0), rb.eq(0), rx.eq(0), wy.eq(0), wb.eq(0), wx.eq(0),
                         wcol.eq(0),
                         ptr.eq(self.base), blk_ptr.eq(self.base), row_ptr.eq(self.base)]
        return m
