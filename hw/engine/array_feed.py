"""The systolic array and what feeds it: the map and weight reads, the skew, the padding.

:func:`feed_array` adds the ``SystolicArray`` to the engine's module and feeds row ``r``
``r·hop`` cycles after row 0 (the skew). Two ways to read the input map:

* **a port per row** (``read_ports = rows``; line mode): the skew delays each row's address,
  validity, weight address and lane, then the row reads its own word (the map memory, or in
  line mode the ring) — one copy of the map per row;
* **shared ports** (``read_ports < rows``): the ports read the step's words at once; each row
  takes its port's word (rows below ``read_ports``, which also serve depthwise layers whole
  words) or one byte of it (the other rows), which the skew then delays — one copy of the map
  per port.

Either way the zero point replaces a tap outside the map after the skew, from stage ``r`` of
the zero point's chain: the value of the run the row's data belong to.

Each row's weight word comes from its own weight memory at the skewed weight address.
"""
from amaranth.hdl import Mux, Signal

from hw import fpga_family
from hw.engine.static_chain import static_chain
from hw.engine.systolic import SystolicArray

__all__ = ["feed_array"]


def _delay(m, value, n: int, name: str):
    """``value`` registered ``n`` times."""
    for k in range(n):
        reg = Signal.like(value, name=f"{name}_{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def feed_array(m, cfg, d, mems, addrs, platform=None) -> SystolicArray:
    """Add the array and feed it from stage A's addresses ``addrs``
    (:class:`hw.engine.issue.RowAddresses`) for descriptor ``d``. Returns the array (its
    ``psum`` are the column sums)."""
    A, R, C, L, P = cfg.addr_width, cfg.rows, cfg.cols, cfg.lanes, cfg.read_ports
    AW = addrs.width
    bels = None
    if cfg.dsp_sites and fpga_family(platform) == "ecp5":
        from hw.engine.dsp_sites import SCHEMES
        bels = SCHEMES[cfg.dsp_sites](R, C)
    array = m.submodules.array = SystolicArray(R, C, hop=cfg.psum_hop, bels=bels,
                                               fabric_regs=cfg.fabric_regs)
    ML = cfg.mem_latency
    # the input zero point reaches row r through stage r of one chain (hw.engine.static_chain),
    # not one descriptor net fanning out to every row's padding multiplexers
    zp_rows = static_chain(m, d.x_zp, R, "x_zp")
    m.d.comb += array.dw.eq(d.depthwise)
    if P < R:
        # the ports read at the step; their words reach a register before any logic
        words = []
        for p in range(P):
            m.d.comb += mems.in_mem.r_addr[p].eq(addrs.addr[p])
            words.append(mems.in_mem.r_data[p])
    for r in range(R):
        skew = r * cfg.psum_hop
        ok, ln, wa = addrs.ok[r], addrs.lane[r], addrs.waddr
        wa = _delay(m, wa, skew, f"skew_wa_{r}")
        m.d.comb += mems.w_mems[r].r_addr[0].eq(wa)
        for c in range(C):
            m.d.comb += array.w[r][c].eq(mems.w_mems[r].r_data[0][c * 8:(c + 1) * 8])
        if P < R:
            # validity, lane and port follow the read (1) and its output register (1, with
            # fabric_regs)
            ok = _delay(m, ok, ML, f"ok_d_{r}")
            ln = _delay(m, ln, ML, f"lane_d_{r}")
            port = _delay(m, addrs.port[r], ML, f"port_d_{r}")
            word = Signal(L * 8, name=f"x_port_word_{r}")
            # an explicit multiplexer chain: dynamic word selection here made yosys 0.70's
            # ABC9 assert (docs/soc_synth.md)
            pick = words[0]
            for p in range(1, P):
                pick = Mux(port == p, words[p], pick)
            m.d.comb += word.eq(pick)
            # the skew delays the row's data and validity; the zero point comes after it,
            # from stage r of the chain (the descriptor's value for this run)
            ok = _delay(m, ok, skew, f"skew_ok_{r}")
            if r < P:
                # a whole word (depthwise takes lane c in column c), the lane beside it
                _word_to_row(m, array, r, _delay(m, word, skew, f"skew_x_{r}"), ok,
                             _delay(m, ln, skew, f"skew_ln_{r}"), zp_rows[r])
            else:
                # one byte: the element the row multiplies (standard layers only)
                x = Signal(8, name=f"x_byte_{r}")
                m.d.comb += x.eq(word.word_select(ln, 8))
                x = _delay(m, x, skew, f"skew_x_{r}")
                m.d.comb += [array.lane[r].eq(0), array.x[r][0].eq(Mux(ok, x, zp_rows[r]))]
            continue
        # a port per row: the skew delays the row's address, validity and lane
        addr = _delay(m, addrs.addr[r], skew, f"skew_addr_{r}")
        ok = _delay(m, ok, skew, f"skew_ok_{r}")
        ln = _delay(m, ln, skew, f"skew_lane_{r}")
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
        # validity and lane follow the data: read (1) + output register (1, with fabric_regs)
        _word_to_row(m, array, r, x_q, _delay(m, ok, ML, f"ok_d_{r}"),
                     _delay(m, ln, ML, f"lane_d_{r}"), zp_rows[r])
    return array


def _word_to_row(m, array, r, word, ok, lane, zp):
    """Row ``r`` of the array takes ``word`` with its ``lane``, or the zero point ``zp`` in
    every lane where the tap lies outside the map (``ok`` low)."""
    m.d.comb += array.lane[r].eq(lane)
    for k in range(len(array.x[r])):
        m.d.comb += array.x[r][k].eq(Mux(ok, word[k * 8:(k + 1) * 8], zp))
