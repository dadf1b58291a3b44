"""The systolic array and what feeds it: the skew, the map and weight reads, the padding.

:func:`feed_array` adds the ``SystolicArray`` to the engine's module and feeds row ``r``
``r·hop`` cycles after row 0 (the skew delays the row's address, validity, weight address and
lane, not the data). Each row reads its input word (the map memory, or in line mode the ring)
and its weight word; validity and lane follow the data through the read, and a tap outside
the map takes the input zero point.
"""
from amaranth.hdl import Mux, Signal

from hw.memory.read_reg_ram import LATENCY as MEM_LATENCY
from hw.engine.static_chain import static_chain
from hw.engine.systolic import SystolicArray

__all__ = ["feed_array"]


def feed_array(m, cfg, d, mems, addrs, platform=None) -> SystolicArray:
    """Add the array and feed it from stage A's row addresses ``addrs``
    (:class:`hw.engine.issue.RowAddresses`) for descriptor ``d``. Returns the array (its
    ``psum`` are the column sums)."""
    A, R, C, L = cfg.addr_width, cfg.rows, cfg.cols, cfg.lanes
    AW = addrs.width
    bels = None
    if cfg.dsp_sites and getattr(platform, "family", None) == "ecp5":
        from hw.engine.dsp_sites import SCHEMES
        bels = SCHEMES[cfg.dsp_sites](R, C)
    array = m.submodules.array = SystolicArray(R, C, hop=cfg.psum_hop, bels=bels)
    # the input zero point reaches row r through stage r of one chain (hw.engine.static_chain),
    # not one descriptor net fanning out to every row's padding multiplexers
    zp_rows = static_chain(m, d.x_zp, R, "x_zp")
    m.d.comb += array.dw.eq(d.depthwise)
    for r in range(R):
        addr, ok, wa, ln = addrs.addr[r], addrs.ok[r], addrs.waddr, addrs.lane[r]
        # skew: row r reads r·hop cycles after row 0
        for k in range(r * cfg.psum_hop):
            addr2 = Signal(AW, name=f"skew_addr_{r}_{k}")
            ok2 = Signal(name=f"skew_ok_{r}_{k}")
            wa2 = Signal(A, name=f"skew_wa_{r}_{k}")
            ln2 = Signal(range(L), name=f"skew_lane_{r}_{k}")
            m.d.sync += [addr2.eq(addr), ok2.eq(ok), wa2.eq(wa), ln2.eq(ln)]
            addr, ok, wa, ln = addr2, ok2, wa2, ln2
        # the read data reaches a register before any logic or long route (an ECP5 DP16KD
        # without its own output register takes 5.8 ns from clock to data): the output
        # register of hw.memory.read_reg_ram or, for the line memory, one of its own
        if cfg.line_rows:
            xrp = mems.line_mem.read_port()
            m.d.comb += xrp.addr.eq(addr)
            x_q = Signal(L * 8, name=f"x_q_{r}")
            m.d.sync += x_q.eq(xrp.data)
        else:
            m.d.comb += mems.in_mem.r_addr[r].eq(addr)
            x_q = mems.in_mem.r_data[r]
        m.d.comb += mems.w_mems[r].r_addr[0].eq(wa)
        w_q = mems.w_mems[r].r_data[0]
        # validity and lane follow the data: read (1) + output register (1)
        for k in range(MEM_LATENCY):
            ok2 = Signal(name=f"ok_d_{r}_{k}")
            ln2 = Signal(range(L), name=f"lane_d_{r}_{k}")
            m.d.sync += [ok2.eq(ok), ln2.eq(ln)]
            ok, ln = ok2, ln2
        m.d.comb += array.lane[r].eq(ln)
        for lane in range(L):
            m.d.comb += array.x[r][lane].eq(
                Mux(ok, x_q[lane * 8:(lane + 1) * 8], zp_rows[r]))
        for c in range(C):
            m.d.comb += array.w[r][c].eq(w_q[c * 8:(c + 1) * 8])
    return array
