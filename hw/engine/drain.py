"""The engine's back end up to the requantised values: beat flags, column accumulators, drain.

* :class:`BeatFlags` delays each step's flags from stage T to the column sums, beside the data;
* :func:`column_accumulators` adds the array's column sums over a pixel's steps;
* :class:`Drain` hands a finished pixel's ``cols`` sums to the ``post_lanes`` requantisation
  lanes, one group of ``post_lanes`` columns per drain beat (every ``requant_ii`` cycles), with
  each group's bias/multiplier/shift read from the parameter memory the cycle before.

Each adds its logic to the engine's module (parts of ``Engine.elaborate``).
"""
from amaranth.hdl import Cat, Mux, Signal, signed
from amaranth.lib import data

from hw.engine.requant import Requant, RequantSerial
from hw.engine.static_chain import static_chain

__all__ = ["BeatFlags", "column_accumulators", "Drain"]


class BeatFlags:
    """The flags of each issued step (``go``, ``last`` step of its pixel, ``final`` step of the
    run, block ``ob``) follow the data down the array: stage T → stage A (1) → row 0's memory
    read and output register (``mem_latency``) → array (``sum_latency``) → column sums.
    ``stages[k]`` is the tuple ``k`` cycles after stage T; ``go``, ``last``, ``final``, ``ob``
    are the last stage's, aligned with the array's ``psum``."""

    def __init__(self, m, table, mem_latency, sum_latency):
        flags = [(table.go, table.last, table.final, table.ob)]
        for k in range(1 + mem_latency + sum_latency):
            g, l, fin, o = flags[-1]
            n = (Signal(name=f"b_go_{k}"), Signal(name=f"b_last_{k}"),
                 Signal(name=f"b_final_{k}"), Signal.like(o, name=f"b_ob_{k}"))
            m.d.sync += [n[0].eq(g), n[1].eq(l), n[2].eq(fin), n[3].eq(o)]
            flags.append(n)
        self.stages = flags
        self.go, self.last, self.final, self.ob = flags[-1]


def column_accumulators(m, psum, go, last):
    """Per column, the sum over a pixel's steps of the array's ``psum`` (beats with ``go``).
    Returns ``(accs, totals)``: ``acc_c`` is the sum including this beat (what the drain
    takes), ``total_c`` the sum so far plus this beat's ``psum`` (combinational).

    ``open_c`` is the sum of the pixel still open, 0 after a pixel's ``last`` beat. The "pixel
    ends" flag thus picks ``open_c``'s next value behind the adder instead of zeroing its input
    in front of it: its net reaches all cols × 32 bits across the die and no longer runs
    through a carry chain on the way."""
    accs, totals = [], []
    for c in range(len(psum)):
        acc = Signal(signed(32), name=f"acc_{c}")
        open_sum = Signal(signed(32), name=f"open_{c}")
        total = Signal(signed(32), name=f"total_{c}")
        m.d.comb += total.eq(open_sum + psum[c])
        with m.If(go):
            m.d.sync += [acc.eq(total), open_sum.eq(Mux(last, 0, total))]
        accs.append(acc)
        totals.append(total)
    return accs, totals


class Drain:
    """``post_lanes`` (P) requantisation lanes take a pixel's ``cols`` (C) sums in ``groups``
    (D) drain beats, one every ``requant_ii`` (II) cycles. With D = 1 the accumulators
    themselves hold the sums while the lanes take them; otherwise shadow registers free the
    accumulators for the next pixel.

    Exposes ``lanes`` (the lanes' output streams), ``k`` (the group of the current beat),
    ``beat`` (a group enters the lanes), ``final`` (the run's last pixel is draining) and
    ``latency`` (the lanes' latency)."""

    def __init__(self, m, cfg, d, mems, flags, accs, totals):
        C, P, D, II, KB = cfg.cols, cfg.post_lanes, cfg.groups, cfg.requant_ii, cfg.group_bits
        cap = flags.go & flags.last               # the pixel's sums are complete this cycle
        d_act, dk = Signal(), Signal(range(max(D, 2)))
        dii = Signal(range(max(II, 2)))
        d_ob, sh_fin = Signal(cfg.ob_bits), Signal()
        # the group counter and block in next-state form: the parameter read address below is
        # registered from them
        dk_nx, d_ob_nx = Signal(range(max(D, 2))), Signal(cfg.ob_bits)
        m.d.comb += [dk_nx.eq(dk), d_ob_nx.eq(d_ob)]
        m.d.sync += [dk.eq(dk_nx), d_ob.eq(d_ob_nx)]
        with m.If(cap):
            m.d.comb += [dk_nx.eq(0), d_ob_nx.eq(flags.ob)]
            m.d.sync += [d_act.eq(1), dii.eq(0), sh_fin.eq(flags.final)]
        with m.Elif(d_act):
            if II > 1:
                m.d.sync += dii.eq(dii + 1)
            with m.If(dii == II - 1):
                m.d.sync += dii.eq(0)
                m.d.comb += dk_nx.eq(dk + 1)
                with m.If(dk == D - 1):
                    m.d.sync += d_act.eq(0)
                    m.d.comb += dk_nx.eq(0)
        beat = d_act & (dii == 0)
        if cfg.drain == 1:
            sh_acc = [[accs[p] for p in range(P)]]
        else:
            # a shift register of groups: the lanes always take group 0 (no multiplexer
            # between the shadow registers and the lanes' first adders)
            sh = Signal(data.ArrayLayout(data.ArrayLayout(signed(32), P), D), name="shadow_acc")
            with m.If(cap):
                for c in range(C):
                    k, p = divmod(c, P)
                    m.d.sync += sh[k][p].eq(totals[c])
            with m.Elif(beat):
                for k in range(D - 1):
                    m.d.sync += sh[k].eq(sh[k + 1])
            sh_acc = sh
        # the parameters of the next drain beat's group, read the cycle before it: at a capture
        # the new block's first group, else the group after the current one. The address is a
        # register, computed a cycle ahead from the flags one stage up and the next-state
        # values, because its nets reach the LUT-RAM cells of all the lanes across the die
        prm_rd = mems.prm_mem.read_port()
        prm_addr = Signal.like(prm_rd.addr, name="prm_addr")
        g2, l2, _, o2 = flags.stages[-2]
        if KB:
            m.d.sync += prm_addr.eq(Mux(g2 & l2, o2 << KB, Cat((dk_nx + 1)[:KB], d_ob_nx)))
        else:
            m.d.sync += prm_addr.eq(Mux(g2 & l2, o2, d_ob_nx))
        if cfg.table_banks == 2:       # the bank's bit above the index, from the descriptor
            bits = (cfg.block_words - 1).bit_length()
            m.d.comb += prm_rd.addr.eq(Cat(prm_addr[:bits], d.ob_bank))
        else:
            m.d.comb += prm_rd.addr.eq(prm_addr)
        # the output zero point and clamp bounds reach lane group g (4 groups at most) through
        # stage g of one chain (hw.engine.static_chain; one merged chain driving all 16 lanes
        # was the routed 85F critical path, 15 ns of routing); the first pixel reaches the
        # lanes ≥ rows + 6 cycles after start, later than stage 3
        n_post_groups = min(P, 4)
        post_static = list(zip(static_chain(m, d.y_zp, n_post_groups, "y_zp"),
                               static_chain(m, d.lo, n_post_groups, "lo"),
                               static_chain(m, d.hi, n_post_groups, "hi")))
        lanes_out = []
        for p in range(P):
            rq = RequantSerial() if cfg.serial_requant else Requant(lut_mul=cfg.lut_requant)
            latency = rq.LATENCY
            m.submodules[f"requant_{p}"] = rq
            prm = prm_rd.data[p]
            zp_p, lo_p, hi_p = post_static[p * n_post_groups // P]
            m.d.comb += [
                rq.i.valid.eq(beat),
                rq.i.payload.acc.eq(sh_acc[0][p]),
                rq.i.payload.bias.eq(prm.bias),
                rq.i.payload.mult.eq(prm.mult),
                rq.i.payload.shift.eq(prm.shift),
                rq.i.payload.zp.eq(zp_p), rq.i.payload.lo.eq(lo_p), rq.i.payload.hi.eq(hi_p),
            ]
            lanes_out.append(rq.o)
        self.lanes, self.k, self.beat, self.final, self.latency = (
            lanes_out, dk, beat, sh_fin, latency)
