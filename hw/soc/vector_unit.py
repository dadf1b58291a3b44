"""The DMA unit's pooling: ``POOL`` (max pooling) and ``GAP`` (global average pooling), off-chip
map to off-chip map, on the controller's memory port (``hw.soc.isa``, ``docs/isa.md``).

``POOL`` reads each valid tap of each output word (``kh·kw`` reads per output, no line buffer),
the requests of a pixel's taps back to back ahead of their responses, keeps the lane-wise
maximum from −128, and writes the word; ``GAP`` sums each channel block's ``hw`` words per lane (minus ``zp_in``),
then passes each lane's sum, shifted left by ``headroom``, through one requantisation lane
(``hw.engine.requant``: the engine's own arithmetic) and writes the block's word.  The byte
counts the emulator reports for these instructions are these reads and writes.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.engine.requant import Requant, RequantSerial
from hw.memory.memport import MemPortSignature
from hw.soc.isa import GapArgs, PoolArgs

__all__ = ["VectorUnit"]


class VectorUnit(wiring.Component):
    """``go`` (one cycle, with ``gap`` and the instruction's ``args``) starts an operation;
    ``idle`` is high when it has finished; ``bytes_read``/``bytes_written`` count its traffic
    since ``go``.  ``lanes`` bytes per map word (a power of two, whole memory words)."""

    def __init__(self, lanes: int, mem_addr_width: int, mem_width: int, serial: bool = False):
        if lanes & (lanes - 1) or lanes * 8 % mem_width:
            raise ValueError(f"{lanes} lanes are not a power of two of whole memory words")
        self.L, self.mw, self.serial = lanes, mem_width, serial
        super().__init__({
            "go": In(1), "gap": In(1), "args": In(248),
            "idle": Out(1),
            "bytes_read": Out(32), "bytes_written": Out(32),
            "mem": Out(MemPortSignature(mem_addr_width, mem_width)),
        })

    def elaborate(self, platform):
        m = Module()
        L, mw = self.L, self.mw
        MB = mw // 8
        WPW = L // MB                                   # memory words per map word
        lg = (L - 1).bit_length()
        sh = (MB - 1).bit_length()
        mem = self.mem
        pa = Signal(PoolArgs)
        ga = Signal(GapArgs)
        pa_in = data.View(PoolArgs, self.args[:PoolArgs.as_shape().size])
        ga_in = data.View(GapArgs, self.args[:GapArgs.as_shape().size])

        addr = Signal(32)                               # byte address of the current word
        rq, rs = Signal(range(WPW + 1)), Signal(range(WPW + 1))   # requests / responses so far
        word = Signal(L * 8)
        m.d.comb += mem.req.payload.addr.eq(addr >> sh)
        req_fire = mem.req.valid & mem.req.ready
        resp_fire = mem.resp.valid & mem.resp.ready
        with m.If(req_fire & ~mem.req.payload.write):
            m.d.sync += self.bytes_read.eq(self.bytes_read + MB)
        with m.If(req_fire & mem.req.payload.write):
            m.d.sync += self.bytes_written.eq(self.bytes_written + MB)

        def read_word(at, then):
            """State body: read the map word at byte address ``at`` into ``word``."""
            m.d.comb += [mem.req.valid.eq(rq < WPW), mem.req.payload.addr.eq((at + (rq << sh)) >> sh),
                         mem.resp.ready.eq(1)]
            with m.If(req_fire):
                m.d.sync += rq.eq(rq + 1)
            with m.If(resp_fire):
                m.d.sync += [word.word_select(rs, mw).eq(mem.resp.payload), rs.eq(rs + 1)]
                with m.If(rs == WPW - 1):
                    m.d.sync += [rq.eq(0), rs.eq(0)]
                    m.next = then

        def write_word(at, value, then):
            """State body: write ``value`` (a map word) at byte address ``at``."""
            m.d.comb += [mem.req.valid.eq(1), mem.req.payload.write.eq(1),
                         mem.req.payload.data.eq(value.word_select(rq, mw)),
                         mem.req.payload.addr.eq((at + (rq << sh)) >> sh)]
            with m.If(req_fire):
                m.d.sync += rq.eq(rq + 1)
                with m.If(rq == WPW - 1):
                    m.d.sync += rq.eq(0)
                    m.next = then

        # ---- POOL state ---------------------------------------------------------------------
        b, oy, ox, ky, kx = (Signal(12, name=n) for n in ("b", "oy", "ox", "ky", "kx"))
        wy, wx = Signal(signed(14)), Signal(signed(14))     # the window's top-left, input pixels
        pb, py0, pyk = Signal(32), Signal(32), Signal(32)   # plane, window-row, tap-row pointers
        dpb, dpy, dp = Signal(32), Signal(32), Signal(32)   # output plane, row, word pointers
        row_bytes, srow_sh, pt_row, cnt = Signal(32), Signal(32), Signal(32), Signal(5)
        acc = Signal(data.ArrayLayout(signed(8), L))
        iy, ix = Signal(signed(15)), Signal(signed(15))
        m.d.comb += [iy.eq(wy + ky), ix.eq(wx + kx)]
        inside = (iy >= 0) & (iy < pa.h) & (ix >= 0) & (ix < pa.w)
        # a pixel's taps: requested so far, their words back and maxed in, the requests done,
        # a whole tap's word landed last cycle
        taps_req, taps_got = Signal(8), Signal(8)
        req_done, got = Signal(), Signal()

        def next_tap():
            """The request side moves to the window's next tap (or is done with the pixel)."""
            with m.If(kx + 1 < pa.kw):
                m.d.sync += kx.eq(kx + 1)
            with m.Elif(ky + 1 < pa.kh):
                m.d.sync += [kx.eq(0), ky.eq(ky + 1), pyk.eq(pyk + row_bytes)]
            with m.Else():
                m.d.sync += req_done.eq(1)

        # ---- GAP state ----------------------------------------------------------------------
        sums = Signal(data.ArrayLayout(signed(32), L))
        pix = Signal(24)
        lane = Signal(range(L + 1))
        out = Signal(data.ArrayLayout(signed(8), L))
        rq_lane = RequantSerial() if self.serial else Requant(lut_mul=True)
        m.submodules.requant = rq_lane
        waiting = Signal()

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.go):
                    m.d.sync += [pa.eq(pa_in), ga.eq(ga_in), self.bytes_read.eq(0),
                                 self.bytes_written.eq(0), rq.eq(0), rs.eq(0)]
                    with m.If(self.gap):
                        m.d.sync += [b.eq(0), addr.eq(ga_in.src), dp.eq(ga_in.dst)]
                        m.next = "GAP_BLOCK"
                    with m.Else():
                        m.d.sync += [row_bytes.eq(pa_in.src_row << lg), srow_sh.eq(0),
                                     pt_row.eq(0), cnt.eq(0)]
                        m.next = "POOL_SETUP"
            # POOL: sh·row and pt·row by repeated addition (no multiplier)
            with m.State("POOL_SETUP"):
                with m.If(cnt < pa.sh):
                    m.d.sync += srow_sh.eq(srow_sh + row_bytes)
                with m.If(cnt < pa.pt):
                    m.d.sync += pt_row.eq(pt_row + row_bytes)
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == 15):
                    m.d.sync += [b.eq(0), pb.eq(pa.src), dpb.eq(pa.dst)]
                    m.next = "POOL_PLANE"
            with m.State("POOL_PLANE"):
                m.d.sync += [oy.eq(0), py0.eq(pb - pt_row), wy.eq(-pa.pt.as_signed()), dpy.eq(dpb)]
                m.next = "POOL_ROW"
            with m.State("POOL_ROW"):
                m.d.sync += [ox.eq(0), wx.eq(-pa.pl.as_signed()), dp.eq(dpy)]
                m.next = "POOL_PIXEL"
            with m.State("POOL_PIXEL"):
                m.d.sync += [ky.eq(0), kx.eq(0), pyk.eq(py0), rq.eq(0), rs.eq(0),
                             taps_req.eq(0), taps_got.eq(0), req_done.eq(0), got.eq(0)]
                m.d.sync += [acc[k].eq(-128) for k in range(L)]
                m.next = "POOL_TAPS"
            with m.State("POOL_TAPS"):
                # requests run ahead of the responses: every valid tap's memory words go out
                # back to back while the words of earlier taps come back and are maxed in
                with m.If(~req_done):
                    with m.If(inside):
                        m.d.comb += [mem.req.valid.eq(1), mem.req.payload.addr.eq(
                            (pyk + (ix.as_unsigned() << lg) + (rq << sh)) >> sh)]
                        with m.If(req_fire):
                            with m.If(rq == WPW - 1):
                                m.d.sync += [rq.eq(0), taps_req.eq(taps_req + 1)]
                                next_tap()
                            with m.Else():
                                m.d.sync += rq.eq(rq + 1)
                    with m.Else():
                        next_tap()
                m.d.comb += mem.resp.ready.eq(1)
                with m.If(resp_fire):
                    m.d.sync += [word.word_select(rs, mw).eq(mem.resp.payload), rs.eq(rs + 1)]
                    with m.If(rs == WPW - 1):
                        m.d.sync += rs.eq(0)
                m.d.sync += got.eq(resp_fire & (rs == WPW - 1))
                with m.If(got):
                    for k in range(L):
                        x = word[k * 8:(k + 1) * 8].as_signed()
                        m.d.sync += acc[k].eq(Mux(x > acc[k], x, acc[k]))
                    m.d.sync += taps_got.eq(taps_got + 1)
                with m.If(req_done & ~got & (taps_got == taps_req)):
                    m.next = "POOL_WRITE"
            with m.State("POOL_WRITE"):
                write_word(dp, acc.as_value(), "POOL_NEXT")
            with m.State("POOL_NEXT"):
                with m.If(ox + 1 < pa.wo):
                    m.d.sync += [ox.eq(ox + 1), wx.eq(wx + pa.sw), dp.eq(dp + L)]
                    m.next = "POOL_PIXEL"
                with m.Elif(oy + 1 < pa.ho):
                    m.d.sync += [oy.eq(oy + 1), wy.eq(wy + pa.sh), py0.eq(py0 + srow_sh),
                                 dpy.eq(dpy + (pa.dst_row << lg))]
                    m.next = "POOL_ROW"
                with m.Elif(b + 1 < pa.nb):
                    m.d.sync += [b.eq(b + 1), pb.eq(pb + (pa.src_plane << lg)),
                                 dpb.eq(dpb + (pa.dst_plane << lg))]
                    m.next = "POOL_PLANE"
                with m.Else():
                    m.next = "IDLE"
            # GAP: per channel block, sum its words, requantise lane by lane, write
            with m.State("GAP_BLOCK"):
                m.d.sync += [pix.eq(0), lane.eq(0)] + [sums[k].eq(0) for k in range(L)]
                m.next = "GAP_READ"
            with m.State("GAP_READ"):
                read_word(addr, "GAP_ADD")
            with m.State("GAP_ADD"):
                for k in range(L):
                    m.d.sync += sums[k].eq(sums[k] + word[k * 8:(k + 1) * 8].as_signed() - ga.zp_in)
                m.d.sync += [addr.eq(addr + L), pix.eq(pix + 1)]
                with m.If(pix + 1 == ga.hw):
                    m.next = "GAP_REQUANT"
                with m.Else():
                    m.next = "GAP_READ"
            with m.State("GAP_REQUANT"):
                # one lane's sum at a time through the requantisation lane
                p = rq_lane.i.payload
                m.d.comb += [p.acc.eq(sums[lane] << ga.headroom), p.bias.eq(0), p.mult.eq(ga.mult),
                             p.shift.eq(ga.shift), p.zp.eq(ga.zp_out), p.lo.eq(-128),
                             p.hi.eq(127), rq_lane.i.valid.eq(~waiting)]
                m.d.sync += waiting.eq(1)
                with m.If(rq_lane.o.valid):
                    m.d.sync += [out[lane].eq(rq_lane.o.payload), waiting.eq(0),
                                 lane.eq(lane + 1)]
                    with m.If(lane == L - 1):
                        m.next = "GAP_WRITE"
            with m.State("GAP_WRITE"):
                write_word(dp, out.as_value(), "GAP_NEXT")
            with m.State("GAP_NEXT"):
                m.d.sync += [dp.eq(dp + L), b.eq(b + 1)]
                with m.If(b + 1 == ga.nb):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "GAP_BLOCK"
        return m
