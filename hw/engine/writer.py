"""The engine's output writer: the requantised groups of a pixel become one output word, written
to the output memory in order (optionally through the fused 2×2/2 max-pool), and ``done``
rises after the run's last word.
"""
from amaranth.hdl import Mux, Signal, signed
from amaranth.lib import data

from hw.engine.memories import write_port

__all__ = ["write_output"]


def write_output(m, cfg, d, mems, drain, loop, done):
    """Add the writer for :class:`hw.engine.drain.Drain` ``drain``'s lanes to ``m``: the group
    index and final marker travel beside the requant pipeline; groups before the last wait in
    ``out_held``; the word is written at the next output address (``out_base`` at ``start``); ``done``
    rises (and ``busy`` falls) when the run's last word is written."""
    A, C, P, D = cfg.addr_width, cfg.cols, cfg.post_lanes, cfg.groups
    lanes_out, busy_r = drain.lanes, loop.busy
    o_valid = lanes_out[0].valid
    fin = drain.beat & (drain.k == D - 1) & drain.final
    if cfg.serial_requant:
        # long lanes (tens of cycles): the groups leave in order, so a counter of outputs
        # names them, and a timer delays the run's one final marker (carried beside the lane
        # they were ~3 flip-flops a cycle of latency, each in a logic cell of its own)
        o_k = Signal(range(max(D, 2)), name="out_k")
        with m.If(loop.starting):
            m.d.sync += o_k.eq(0)
        with m.Elif(o_valid):
            m.d.sync += o_k.eq(Mux(o_k == D - 1, 0, o_k + 1))
        timer = Signal(range(drain.latency + 1), name="fin_timer")
        with m.If(fin):
            m.d.sync += timer.eq(drain.latency)
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        fin = timer == 1
    else:
        # group index and final marker travel beside the requant pipeline
        o_k = drain.k
        for k in range(drain.latency):
            k2, f2 = Signal(range(max(D, 2)), name=f"ok_{k}"), Signal(name=f"fin_{k}")
            m.d.sync += [k2.eq(o_k), f2.eq(fin)]
            o_k, fin = k2, f2
    held = Signal(data.ArrayLayout(data.ArrayLayout(signed(8), P), D), name="out_held")
    if D > 1:
        with m.If(o_valid):
            for p in range(P):
                m.d.sync += held[o_k][p].eq(lanes_out[p].payload)

    wp_addr, wp_data, wp_en = write_port(mems.out_mem)
    out_addr = Signal(A)
    write = o_valid & (o_k == D - 1)
    word = Signal(C * 8)
    for c in range(C):
        k, p = divmod(c, P)
        src = lanes_out[p].payload if k == D - 1 else held[k][p]
        m.d.comb += word[c * 8:(c + 1) * 8].eq(src)
    if cfg.pool_width:
        # fused 2×2/2 max-pool: the output words of each Ho×Wo map (raster order) pass
        # through hw.engine.pool.MaxPool2x2; one cycle later it writes the pooled words in
        # raster order of the Ho/2 × Wo/2 map, so ``done`` waits one cycle more
        from hw.engine.pool import MaxPool2x2
        m.submodules.pool = pool = MaxPool2x2(C, cfg.pool_width)
        # a pooled row is Wo words, or in line mode n_ob·Wo (blocks side by side)
        m.d.comb += [pool.w.eq(d.pool_w), pool.h.eq(d.ho), pool.o.ready.eq(1),
                     pool.i.valid.eq(write & d.pool), pool.i.payload.as_value().eq(word)]
        store = Signal()
        m.d.comb += store.eq(Mux(d.pool, pool.o.valid, write))
        m.d.comb += [wp_addr.eq(out_addr), wp_en.eq(store),
                     wp_data.eq(Mux(d.pool, pool.o.payload.as_value(), word))]
        fin_d = Signal()
        m.d.sync += fin_d.eq(fin)
        fin = Mux(d.pool, fin_d, fin)
    else:
        store = write
        m.d.comb += [wp_addr.eq(out_addr), wp_en.eq(write), wp_data.eq(word)]
    with m.If(loop.starting):
        m.d.sync += out_addr.eq(d.out_base)
    with m.Elif(store):
        m.d.sync += out_addr.eq(out_addr + 1)
    with m.If(fin & busy_r):
        m.d.sync += [busy_r.eq(0), done.eq(1)]
