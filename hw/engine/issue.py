"""The engine's front end: the issue loop and address generation (stages T and A).

* :class:`IssueLoop` walks the schedule, one step per cycle: output-channel block →
  output row → output column → iteration → step (line mode: row → block → column → …), and
  holds ``busy`` and the cycle counter;
* :class:`TableReads` (stage T) reads the step table and ``in_base`` at the loop's registered
  counters, the loop state it belongs to one cycle later beside it;
* :class:`RowAddresses` (stage A) turns each row's step entry into its read address (a map
  address, or in line mode a ring address), its validity and its lane, registered.

Each adds its logic to the engine's module; they are parts of ``Engine.elaborate``, not
components, because they share the loop registers cycle by cycle.
"""
from amaranth.hdl import Cat, Mux, Signal, signed

__all__ = ["IssueLoop", "TableReads", "RowAddresses"]


class IssueLoop:
    """The loop counters of one run, from ``start`` to the last step's issue.

    Down counters (what is left of the pixel's slot, the row, the map, the blocks) so the loop
    conditions are zero tests of registers, not adders and comparators in series. Exposes the
    loop state the later stages read: ``s`` and ``ob`` (step and block, registered), ``waddr``
    (weight address), the tap bounds ``ylo``/``yhi``/``xlo``/``xhi``, ``pix``, the iteration
    offsets ``ioff``/``ydoff``, the flags ``issue``, ``last_step``, ``wrap``, ``last_it``,
    ``last_x``, ``last_y``, ``last_ob``, ``run`` and ``busy``. ``stall`` is driven by the
    caller (line mode: the rows a pixel needs are not in the ring yet; else 0). ``start``
    raises ``busy`` and clears ``done``; the output writer (``hw.engine.writer``) ends the run."""

    def __init__(self, m, cfg, d, start, busy, done, cycles_out):
        A = cfg.addr_width
        line = bool(cfg.line_rows)
        OB, S, XY, IT, Y = cfg.ob_bits, cfg.slot_bits, cfg.xy_bits, cfg.it_bits, cfg.coord_bits
        run = Signal()
        ob, s = Signal(OB), Signal(S)
        s_left, x_left, y_left, ob_left = Signal(S), Signal(XY), Signal(XY), Signal(OB)
        # tap bounds: a tap (dy, dx) of the current pixel lies inside the map iff
        # ylo <= dy < yhi and xlo <= dx < xhi (ylo = −iy0, yhi = H − iy0, likewise x)
        ylo, yhi = Signal(signed(Y)), Signal(signed(Y))
        xlo, xhi = Signal(signed(Y)), Signal(signed(Y))
        pix, rowpix = Signal(signed(A + 3)), Signal(signed(A + 3))
        waddr, wbase = Signal(A), Signal(A)
        # reduction iterations of the current pixel: what is left, whether this is the last,
        # and the offsets iteration i adds (i·it_stride to addresses, i·it_dy to tap rows)
        it_left, last_it = Signal(IT), Signal()
        ioff, ydoff = Signal(A + 2), Signal(signed(Y))
        cycles = Signal(32)
        m.d.comb += cycles_out.eq(cycles)
        # next values of s and ob (the counters' next-state logic)
        s_nx, ob_nx = Signal(S), Signal(OB)
        m.d.comb += [s_nx.eq(s), ob_nx.eq(ob)]
        m.d.sync += [s.eq(s_nx), ob.eq(ob_nx)]

        # a pixel occupies max(n_it·steps, drain) cycles so the shared requant lanes keep up:
        # its last iteration lasts ``slot`` (host-computed) cycles, the others ``steps``
        slot_m1, steps_m1, first_m1 = Signal(S), Signal(S), Signal(S)
        slot_one, steps_one, first_one = Signal(), Signal(), Signal()
        first_d = Mux(d.n_it == 1, d.slot, d.steps) - 1
        last_step = (s + 1 == d.steps) & last_it
        issue = Signal()
        # line mode: the pixel waits while the rows its window needs are not in the ring yet
        stall = Signal()
        m.d.comb += issue.eq(run & (s < d.steps) & ~stall)
        # loop conditions as registers (set one cycle ahead from the down counters): the next
        # step / block address the synchronous table reads take depends on them
        wrap, last_x, last_y, last_ob = Signal(), Signal(), Signal(), Signal()

        def restart_x():
            return [x_left.eq(d.wo - 1), last_x.eq(d.wo == 1), xlo.eq(d.pad_l),
                    xhi.eq(d.w + d.pad_l)]

        def restart_rows():
            return [y_left.eq(d.ho - 1), last_y.eq(d.ho == 1), ylo.eq(d.pad_t),
                    yhi.eq(d.h + d.pad_t), rowpix.eq(d.pix0), pix.eq(d.pix0)] + restart_x()

        def next_y():
            return [y_left.eq(y_left - 1), last_y.eq(y_left == 1),
                    ylo.eq(ylo - d.stride_h), yhi.eq(yhi - d.stride_h)]

        def next_ob():
            """Move to the next output-channel block (its weights, its in_base read)."""
            m.d.comb += ob_nx.eq(ob + 1)
            m.d.sync += [wbase.eq(wbase + d.w_ob), waddr.eq(wbase + d.w_ob),
                         ob_left.eq(ob_left - 1), last_ob.eq(ob_left == 1)]

        busy_r = Signal()
        m.d.comb += busy.eq(busy_r)
        with m.If(start & ~busy_r):
            m.d.comb += [s_nx.eq(0), ob_nx.eq(0)]
            m.d.sync += [run.eq(1), busy_r.eq(1), done.eq(0), cycles.eq(0),
                         waddr.eq(d.w_base), wbase.eq(d.w_base),
                         slot_m1.eq(d.slot - 1), slot_one.eq(d.slot == 1),
                         steps_m1.eq(d.steps - 1), steps_one.eq(d.steps == 1),
                         first_m1.eq(first_d), first_one.eq(first_d == 0),
                         s_left.eq(first_d), wrap.eq(first_d == 0),
                         it_left.eq(d.n_it - 1), last_it.eq(d.n_it == 1), ioff.eq(0),
                         ydoff.eq(0),
                         ob_left.eq(d.n_ob - 1), last_ob.eq(d.n_ob == 1)] + restart_rows()
        with m.Elif(busy_r):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(run & ~stall):
            with m.If(~wrap):
                m.d.comb += s_nx.eq(s + 1)
                m.d.sync += [waddr.eq(waddr + 1), s_left.eq(s_left - 1), wrap.eq(s_left == 1)]
            with m.Elif(~last_it):
                # the next iteration of the same pixel: the weights run on, the reads shift
                nxt_last = it_left == 1
                m.d.comb += s_nx.eq(0)
                m.d.sync += [waddr.eq(waddr + 1), it_left.eq(it_left - 1),
                             last_it.eq(nxt_last), ioff.eq(ioff + d.it_stride),
                             ydoff.eq(ydoff + d.it_dy),
                             s_left.eq(Mux(nxt_last, slot_m1, steps_m1)),
                             wrap.eq(Mux(nxt_last, slot_one, steps_one))]
            with m.Else():
                m.d.comb += s_nx.eq(0)
                m.d.sync += [waddr.eq(wbase), s_left.eq(first_m1), wrap.eq(first_one),
                             it_left.eq(d.n_it - 1), last_it.eq(d.n_it == 1), ioff.eq(0),
                             ydoff.eq(0)]
                with m.If(~last_x):
                    m.d.sync += [x_left.eq(x_left - 1), last_x.eq(x_left == 1),
                                 xlo.eq(xlo - d.stride_w), xhi.eq(xhi - d.stride_w),
                                 pix.eq(pix + d.stride_w)]
                with m.Else():
                    m.d.sync += restart_x()
                    if line:
                        # output row → output-channel block → column, so every block of an
                        # output row reads the same lines and each input row is fetched once
                        with m.If(~last_ob):
                            next_ob()
                        with m.Else():
                            m.d.comb += ob_nx.eq(0)
                            m.d.sync += [wbase.eq(d.w_base), waddr.eq(d.w_base),
                                         ob_left.eq(d.n_ob - 1),
                                         last_ob.eq(d.n_ob == 1)]
                            with m.If(~last_y):
                                m.d.sync += next_y()
                            with m.Else():
                                m.d.sync += run.eq(0)
                    else:
                        with m.If(~last_y):
                            m.d.sync += next_y() + [rowpix.eq(rowpix + d.row_step),
                                                    pix.eq(rowpix + d.row_step)]
                        with m.Else():
                            next_ob()
                            m.d.sync += restart_rows()
                            with m.If(last_ob):
                                m.d.sync += run.eq(0)

        self._start = start
        self.run, self.busy, self.stall, self.issue = run, busy_r, stall, issue
        self.s, self.ob, self.waddr = s, ob, waddr
        self.pix, self.ioff, self.ydoff = pix, ioff, ydoff
        self.ylo, self.yhi, self.xlo, self.xhi = ylo, yhi, xlo, xhi
        self.last_step, self.wrap, self.last_it = last_step, wrap, last_it
        self.last_x, self.last_y, self.last_ob = last_x, last_y, last_ob

    @property
    def starting(self):
        """``start`` taken: the first cycle of a run."""
        return self._start & ~self.busy


class TableReads:
    """Stage T: the step table and ``in_base`` read at the current (``s``, ``ob``) registers,
    not at their next-state logic: the address nets fan out to every LUT-RAM cell of the
    tables (routed 85F critical path: s → s + 1 → multiplexer → 6 ns of address routing), so
    they must start at a flip-flop. The data arrive a cycle later (``step``, ``in_base``); the
    loop state they belong to waits in the ``t_*`` registers: ``go`` (a step issued), ``last``
    (its pixel's last step), ``final`` (the run's last step), ``ob``, ``waddr``, the tap bounds
    with the iteration's row offset applied and ``pix`` with its address offset. With two
    table banks the descriptor's bank bits (registers too) sit above the counters."""

    def __init__(self, m, cfg, d, mems, loop):
        A = cfg.addr_width
        step_rd = mems.step_mem.read_port()
        base_rd = mems.base_mem.read_port()
        if cfg.table_banks == 2:       # the bank's bit above the index, from the descriptor
            sb, ob = (cfg.step_depth - 1).bit_length(), (cfg.ob_depth - 1).bit_length()
            m.d.comb += [step_rd.addr.eq(Cat(loop.s[:sb], d.step_bank)),
                         base_rd.addr.eq(Cat(loop.ob[:ob], d.ob_bank))]
        else:
            m.d.comb += [step_rd.addr.eq(loop.s), base_rd.addr.eq(loop.ob)]
        self.step, self.in_base = step_rd.data, base_rd.data
        t_go, t_last, t_final = Signal(), Signal(), Signal()
        Y = cfg.coord_bits
        t_ob, t_waddr = Signal(cfg.ob_bits), Signal(A)
        t_ylo, t_yhi = Signal(signed(Y)), Signal(signed(Y))
        t_xlo, t_xhi = Signal(signed(Y)), Signal(signed(Y))
        t_pix = Signal(signed(A + 3))
        m.d.sync += [t_go.eq(loop.issue), t_last.eq(loop.last_step),
                     t_final.eq(loop.last_step & loop.last_x & loop.last_y & loop.last_ob),
                     t_ob.eq(loop.ob), t_waddr.eq(loop.waddr), t_ylo.eq(loop.ylo - loop.ydoff),
                     t_yhi.eq(loop.yhi - loop.ydoff), t_xlo.eq(loop.xlo), t_xhi.eq(loop.xhi),
                     t_pix.eq(loop.pix + loop.ioff)]
        self.go, self.last, self.final, self.ob, self.waddr = t_go, t_last, t_final, t_ob, t_waddr
        self.ylo, self.yhi, self.xlo, self.xhi, self.pix = t_ylo, t_yhi, t_xlo, t_xhi, t_pix


class RowAddresses:
    """Stage A, registered: per read port ``p`` the address ``addr[p]`` it reads
    (``addr_width`` bits, in line mode ``width`` = the wider of that and the ring's); per array
    row ``r`` whether it takes an element inside the map (``ok[r]``: its entry is enabled and
    its port's tap lies inside; else the row takes the zero point), the lane ``lane[r]`` and
    the port ``port[r]`` whose word it takes (with as many ports as rows, port ``r``).
    ``waddr`` is the weight address, the same for every row. (The beat flags pass stage A in
    the flag chain of ``hw.engine.drain``.)"""

    def __init__(self, m, cfg, table, feeder=None):
        A, R, L, P = cfg.addr_width, cfg.rows, cfg.lanes, cfg.read_ports
        line = bool(cfg.line_rows)
        a_waddr = Signal(A)
        AW = max(A, feeder.ring_bits) if line else A
        a_addr = [Signal(AW, name=f"a_addr_{p}") for p in range(P)]
        a_ok = [Signal(name=f"a_ok_{r}") for r in range(R)]
        a_lane = [Signal(range(L), name=f"a_lane_{r}") for r in range(R)]
        a_port = [Signal(range(max(P, 2)), name=f"a_port_{r}") for r in range(R)]
        m.d.sync += a_waddr.eq(table.waddr)
        inside = []
        for p in range(P):
            e = table.step.ports[p]
            ok = Signal(name=f"tap_inside_{p}")
            m.d.comb += ok.eq((e.dy >= table.ylo) & (e.dy < table.yhi) & (e.dx >= table.xlo)
                              & (e.dx < table.xhi))
            inside.append(ok)
            if line:
                # ring address of the tap: (input row mod line_rows, block·W + input column);
                # xlo = −ix0, ylo = −iy0 of the pixel; in_base holds the first block·W of the
                # output block's group and delta the tap's block·W within the group
                ix, iy = Signal(signed(max(A, 14) + 3)), Signal(signed(15))
                m.d.comb += [ix.eq(table.in_base + e.delta + e.dx - table.xlo),
                             iy.eq(e.dy - table.ylo)]
                ring = Cat(ix[:feeder.xb], iy[:feeder.yb])
                m.d.sync += a_addr[p].eq(ring)
            else:
                m.d.sync += a_addr[p].eq(table.in_base + e.delta + table.pix)
        for r in range(R):
            row = table.step.rows[r]
            if P == R:
                port_ok, port = inside[r], r
            else:
                # the row's port's "inside" bit, by a chain of multiplexers (P is small; a
                # dynamic bit selection made yosys 0.70's ABC9 assert, docs/soc_synth.md)
                port_ok, port = inside[0], row.port
                for p in range(1, P):
                    port_ok = Mux(row.port == p, inside[p], port_ok)
            m.d.sync += [a_ok[r].eq(row.en & port_ok), a_lane[r].eq(row.lane),
                         a_port[r].eq(port)]
        self.width = AW
        self.waddr, self.addr, self.ok, self.lane, self.port = a_waddr, a_addr, a_ok, a_lane, a_port
