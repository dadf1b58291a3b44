"""Line mode: fill the ring of line memories ahead of the array and release rows behind it.

:func:`feed_lines` adds to the engine's module the map memory's port multiplexer (the load port
while idle, the row feeder while busy), the feeder's control, the issue loop's ``stall`` (the
rows an output row needs are not in the ring yet) and the release of input rows the array no
longer reads. Without line mode it only ties ``stall`` to 0.
"""
from amaranth.hdl import Mux, Signal, signed
from amaranth.lib import wiring

__all__ = ["feed_lines"]


def feed_lines(m, cfg, d, mems, loop, ld_en, ld_sel, ld_addr, ld_data):
    """Drive ``loop.stall`` and, in line mode, the feeder (``mems.feeder``) and the map
    memory's port (``mems.in_tgt``) for descriptor ``d``."""
    if not cfg.line_rows:
        m.d.comb += loop.stall.eq(0)
        return
    L = cfg.lanes
    feeder, busy_r, ylo = mems.feeder, loop.busy, loop.ylo
    # the map memory's port: the loader (sel 0) while idle, the feeder while busy
    tq, fq = mems.in_tgt.bus.req, feeder.bus.req
    m.d.comb += [
        tq.valid.eq(Mux(busy_r, fq.valid, ld_en & (ld_sel == 0))),
        tq.payload.addr.eq(Mux(busy_r, fq.payload.addr, ld_addr)),
        tq.payload.write.eq(~busy_r),
        tq.payload.data.eq(ld_data[:L * 8]),
        fq.ready.eq(tq.ready & busy_r),
    ]
    wiring.connect(m, mems.in_tgt.bus.resp, feeder.bus.resp)
    # the feeder fetches every row of the map once (all channel blocks side by side);
    # rel_iy0 is the first input row the array may still read, so rows below
    # rel_iy0 + line_rows may overwrite their line
    f_started = Signal()
    rel_iy0 = Signal(signed(14))
    m.d.comb += [feeder.base.eq(0), feeder.n_rows.eq(d.h_feed), feeder.w.eq(d.w),
                 feeder.plane.eq(d.plane), feeder.nb.eq(d.nb),
                 feeder.limit.eq(rel_iy0 + cfg.line_rows)]
    with m.If(loop.run & ~f_started & feeder.idle):
        m.d.comb += feeder.go.eq(1)
        m.d.sync += f_started.eq(1)
    need = Signal(signed(15))            # rows the current output row needs: iy0 + kh
    m.d.comb += need.eq(d.kh - ylo)
    m.d.comb += loop.stall.eq(~f_started |
                              (feeder.rows.as_signed() < Mux(need > d.h_feed, d.h_feed, need)))
    # an output row's last read leaves row R−1's skew 2 + (R−1)·hop cycles after its
    # issue (stages T and A, the skew); the release follows it (cfg.release_delay)
    rel = [loop.run & ~loop.stall & loop.wrap & loop.last_it & loop.last_x & loop.last_ob]
    for k in range(cfg.release_delay):
        e1 = Signal(name=f"rel_row_{k}")
        m.d.sync += e1.eq(rel[-1])
        rel.append(e1)
    with m.If(loop.starting):
        m.d.sync += [f_started.eq(0), rel_iy0.eq(-d.pad_t)]
    with m.Elif(rel[-1]):
        m.d.sync += rel_iy0.eq(rel_iy0 + d.stride_h)
