"""Convolution engine top: memories, address generation, systolic array, requantisation.

Everything a layer needs is inside, so a simulation loads the memories once, pulses ``start``
and waits for ``done`` with no per-cycle host activity.

Memories (sizes are elaboration parameters; all written through the ``ld_*`` port):

====  ===========  ==========================================  ====================================
sel   name         word                                        address
====  ===========  ==========================================  ====================================
0     input map    ``lanes`` int8 (channels of one pixel)      ``(block·H + y)·W + x``
1     weights      ``rows × cols`` int8 (one per PE)           ``ob·w_ob + i·steps + step``
2     step table   per row: ``dy, dx, en, delta``              ``step``
3     block table  ``in_base`` + bias/mult/shift of one group  ``ob·2^group_bits + k`` (group k
                   of ``post_lanes`` columns)                  of columns ``k·P … k·P+P−1``)
====  ===========  ==========================================  ====================================

With ``EngineConfig(pool_width=N)`` and the descriptor's ``pool`` bit, a fused 2×2/2 max-pool
(``hw.engine.pool.MaxPool2x2``) sits before the output memory, which then holds the pooled map.

The output memory (``cols`` int8 per word, address ``ob·Ho·Wo + oy·Wo + ox``) is read back
through ``rd_addr``/``rd_data``.

The step table is the engine's micro-program: for step ``s`` of one output pixel, row ``r``
reads the input word at ``in_base[ob] + delta + pix`` where ``pix = (oy·sh − pt)·W + (ox·sw −
pl)``, if the tap ``(iy0+dy, ix0+dx)`` lies inside the map and ``en`` is set; otherwise it gets
the input zero point (padding on any side, image or block borders alike).  Standard, grouped,
1×1 and FC layers flatten the reduction (kernel tap × input channel of the group) and pack it
densely onto the rows, ``rows`` elements per step, each row naming its tap and its lane (channel
within the word); depthwise layers use one step per block of ``rows`` kernel taps, one tap per
row, and take lane ``c`` in column ``c``.

A reduction longer than the step table is tiled: the table describes one *iteration* (e.g. the
taps of one block of input channels, or of some kernel rows), and the engine runs it ``n_it``
times per output pixel, iteration ``i`` reading at ``+ i·it_stride`` with tap rows ``+ i·it_dy``
while the weight address runs on; the column sums accumulate over all iterations.  So the step
table does not grow with Cin·K·K.

Schedule: output-channel block ``ob`` → output row → output column → iteration → step; one step
per cycle with no bubbles, so a layer takes ``n_ob·Ho·Wo·max(n_it·steps, drain)`` cycles plus
the pipeline latency.

Line mode (``EngineConfig(line_rows=L, line_words=N)``): the input map (sel 0) goes to a map
memory behind a memory port (``hw.memory.memport``; a board's SDRAM later) that only
:class:`hw.engine.row_feeder.RowFeeder` reads, streaming each input row once into a ring of ``L``
lines of ``N`` words that the array reads; the schedule becomes output row → ``ob`` → column →
step, and a pixel waits while the rows its window needs are not in the ring yet (see
docs/engine.md).  ``fetched`` counts the map words read.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.memory.bram import BRAMTarget
from hw.memory.read_reg_ram import LATENCY as RAM_LATENCY, ReadRegRAM
from hw.engine.requant import Requant, RequantSerial
from hw.engine.row_feeder import RowFeeder
from hw.engine.static_chain import static_chain
from hw.engine.systolic import SystolicArray


def layer_desc_layout(addr_width: int) -> data.StructLayout:
    """The layer descriptor. ``pix0 = −pt·W − pl`` and ``row_step = sh·W`` are derived by the
    host so the engine needs no multiplier outside the PEs."""
    return data.StructLayout({
        "h": 12, "w": 12, "ho": 12, "wo": 12,
        "n_ob": 12, "steps": 12,
        # reduction tiling: the step table is run n_it times per output pixel, iteration i
        # adding i·it_stride to every read address and i·it_dy to every tap row; ``slot`` is
        # the last iteration's length in cycles (≥ steps: the requant lanes' drain) and
        # ``w_ob`` the weight words of one output-channel block (n_it·steps)
        "n_it": 12, "slot": 12, "it_stride": addr_width, "it_dy": 4, "w_ob": addr_width,
        "stride_h": 4, "stride_w": 4,
        "pad_t": 4, "pad_l": 4,
        "row_step": addr_width,
        "pix0": signed(addr_width + 2),
        "depthwise": 1,
        "x_zp": signed(8),
        "y_zp": signed(9),
        "lo": signed(8),
        "hi": signed(8),
        "pool": 1,
        # line mode (EngineConfig.line_rows): kernel height, input rows the feeder fetches,
        # H·W (one channel block of the map), channel blocks per input row; a pooled row's
        # words (Wo, or n_ob·Wo in line mode)
        "kh": 4,
        "h_feed": 12,
        "plane": addr_width,
        "nb": 8,
        "pool_w": 12,
    })


def step_entry_layout(addr_width: int, lanes: int) -> data.StructLayout:
    return data.StructLayout({"dy": 4, "dx": 4, "en": 1, "lane": range(lanes),
                              "delta": addr_width})


def block_entry_layout(addr_width: int, cols: int) -> data.StructLayout:
    return data.StructLayout({
        "in_base": addr_width,
        "bias": data.ArrayLayout(signed(32), cols),
        "mult": data.ArrayLayout(signed(32), cols),
        "shift": data.ArrayLayout(signed(6), cols),
    })


#: cycles from a row's read address to its data at the array: the block-RAM read and the
#: output register behind it (``hw.memory.read_reg_ram.LATENCY``)
MEM_LATENCY = RAM_LATENCY


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


class EngineConfig:
    """Elaboration parameters of an engine instance (array shape and memory depths)."""

    def __init__(self, rows=4, cols=4, in_depth=4096, w_depth=2048, step_depth=512,
                 ob_depth=64, out_depth=4096, post_lanes=None, lut_requant=False,
                 serial_requant=False, pool_width=0, psum_hop=1, line_rows=0, line_words=0,
                 dsp_sites=None, load_regs=True):
        self.rows, self.cols = rows, cols
        #: write each memory from load-port registers of its own, one cycle late (what a big
        #: die needs: the port's nets then start at a register per memory); False writes
        #: straight from the port, for small FPGAs short of logic cells (iCE40 UP5K)
        self.load_regs = bool(load_regs)
        #: fixed multiplier sites on the FPGA (a scheme of ``hw.engine.dsp_sites``, e.g. "ecp5-85f");
        #: None lets the placer choose.  No effect in simulation.
        self.dsp_sites = dsp_sites
        #: line mode: the array reads a ring of ``line_rows`` input rows of up to
        #: ``line_words`` words (channel blocks × width) which :class:`hw.engine.row_feeder.RowFeeder`
        #: fills from the map memory, each row once for the whole layer (row-stationary);
        #: 0 = the array reads the whole map from the input memory
        self.line_rows, self.line_words = int(line_rows), int(line_words)
        if self.line_rows:
            for what, n in (("line_rows", self.line_rows), ("line_words", self.line_words)):
                if n < 1 or n & (n - 1):
                    raise ValueError(f"{what}={n} must be a power of two")
        #: cycles a partial sum takes from one array row to the next (``SystolicArray(hop=)``):
        #: 2 puts a register between rows, for arrays spread over a large die; the skew
        #: grows to ``(rows − 1)·hop`` cycles
        self.psum_hop = int(psum_hop)
        #: fused 2×2/2 max-pool on the output (descriptor bit ``pool``) for output maps up to
        #: this width; 0 = no pooling hardware (its row buffer costs ``pool_width/2`` words)
        self.pool_width = int(pool_width)
        #: requantisation lanes (each has one 32×32 multiply); ``cols`` of them drain a pixel
        #: in one cycle, fewer take ``ceil(cols / post_lanes)`` groups per pixel
        self.post_lanes = min(cols, post_lanes or cols)
        self.groups = -(-cols // self.post_lanes)
        #: requant multipliers in logic (all hard multipliers go to the PEs)
        self.lut_requant = bool(lut_requant) or bool(serial_requant)
        #: digit-serial requant lanes (:class:`hw.engine.requant.RequantSerial`, small FPGAs): in
        #: logic, a fraction of the size, one value per ``requant_ii`` cycles per lane
        self.serial_requant = bool(serial_requant)
        self.requant_ii = RequantSerial.II if serial_requant else 1
        #: cycles the post-processing needs per output pixel (a pixel takes ≥ this many)
        self.drain = self.groups * self.requant_ii
        #: block table words per output-channel block: 2^group_bits (one per group)
        self.group_bits = (self.groups - 1).bit_length()
        self.lanes = max(rows, cols)
        self.in_depth, self.w_depth, self.step_depth = in_depth, w_depth, step_depth
        self.ob_depth, self.out_depth = ob_depth, out_depth
        self.addr_width = _bits(max(in_depth, w_depth, out_depth, 2))

    @property
    def latency(self) -> int:
        """Pipeline fill and drain of one run: with ``slot = max(steps, drain)``,
        cycles = n_ob·Ho·Wo·slot − (slot − steps) + latency,
        latency = 2 + (rows − 1)·hop + MEM_LATENCY + A_lat + 1 + R_lat + drain − II:
        stages T and A (2: the table reads, then the addresses), the skew over the rows
        ((rows − 1)·hop), the memory read and its output register (``MEM_LATENCY`` = 2), the
        array (``A_lat = SystolicArray.LATENCY`` = 5: row fan-out register, the PE's operand
        registers in the fabric and in the multiplier, product, partial sum), the requant lane
        (R_lat = 11, 12 with ``lut_requant``, 19 serial; bias add included), and with the
        accumulator, the last pixel's drain (groups of ``post_lanes`` columns, one every ``II``
        cycles) and ``done``, ``1 + drain − II``."""
        return (2 + (self.rows - 1) * self.psum_hop + MEM_LATENCY + SystolicArray.LATENCY + 1
                + self.requant_latency + self.drain - self.requant_ii)

    @property
    def release_delay(self) -> int:
        """Line mode: cycles from an output row's last issue to the release of its first
        input rows: stages T and A (2), the skew ((rows − 1)·hop) and one cycle of margin."""
        return 3 + (self.rows - 1) * self.psum_hop

    @property
    def requant_latency(self) -> int:
        if self.serial_requant:
            return RequantSerial.LATENCY
        return 12 if self.lut_requant else 11

    def as_dict(self):
        return dict(rows=self.rows, cols=self.cols, in_depth=self.in_depth, w_depth=self.w_depth,
                    step_depth=self.step_depth, ob_depth=self.ob_depth, out_depth=self.out_depth,
                    post_lanes=self.post_lanes, lut_requant=self.lut_requant,
                    serial_requant=self.serial_requant, pool_width=self.pool_width,
                    psum_hop=self.psum_hop) | (
            dict(line_rows=self.line_rows, line_words=self.line_words) if self.line_rows else {}) | (
            dict(dsp_sites=self.dsp_sites) if self.dsp_sites else {}) | (
            {} if self.load_regs else dict(load_regs=False))

    def __repr__(self):
        return "EngineConfig(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


class Engine(wiring.Component):
    """One conv/FC layer per ``start``: ``done`` rises when the last output word is written;
    ``cycles`` counts the cycles from ``start`` to ``done``."""

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        A = cfg.addr_width
        self.desc_layout = layer_desc_layout(A)
        self.step_layout = step_entry_layout(A, cfg.lanes)
        #: block table word: one per (output-channel block, group of post_lanes columns)
        self.block_layout = block_entry_layout(A, cfg.post_lanes)
        self.ld_width = max(cfg.lanes * 8, cfg.rows * cfg.cols * 8,
                            cfg.rows * self.step_layout.size, self.block_layout.size)
        super().__init__({
            "desc": In(self.desc_layout),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
            "ld_en": In(1),
            "ld_sel": In(2),
            "ld_addr": In(A),
            "ld_data": In(self.ld_width),
            "rd_addr": In(A),
            "rd_data": Out(cfg.cols * 8),
        } | ({"fetched": Out(32)} if cfg.line_rows else {}))

    def elaborate(self, platform):
        m = Module()
        cfg, A = self.cfg, self.cfg.addr_width
        R, C, L = cfg.rows, cfg.cols, cfg.lanes
        P, D, II = cfg.post_lanes, cfg.groups, cfg.requant_ii
        d = self.desc

        # ---- memories --------------------------------------------------------------------
        # The block table (sel 3) is kept in two memories: ``in_base`` per block (read at
        # issue) and the bias/multiplier/shift of each group of ``post_lanes`` columns (read
        # the cycle before that group's drain beat).
        line = bool(cfg.line_rows)
        if line:
            # the map sits behind a memory port (a board's SDRAM; here block RAM) and only the
            # row feeder reads it; the array reads the ring of line memories
            m.submodules.in_mem = in_tgt = BRAMTarget(cfg.in_depth, L * 8)
            m.submodules.feeder = feeder = RowFeeder(in_tgt.addr_width, L * 8, cfg.line_rows,
                                                     cfg.line_words)
            m.submodules.line_mem = line_mem = Memory(shape=L * 8, depth=1 << feeder.ring_bits,
                                                      init=[])
            lwp = line_mem.write_port()
            m.d.comb += [lwp.addr.eq(feeder.wr_addr), lwp.data.eq(feeder.wr_data),
                         lwp.en.eq(feeder.wr_en), self.fetched.eq(feeder.fetched)]
        else:
            # one read port per array row, each followed by an output register (on ECP5,
            # block-RAM tiles without yosys's read-during-write emulation: hw.memory.read_reg_ram)
            m.submodules.in_mem = in_mem = ReadRegRAM(L * 8, cfg.in_depth, read_ports=R,
                                                      name="in_mem")
        # read back by the host one cycle after rd_addr; tiles on ECP5 (hw.memory.read_reg_ram), for
        # the same reason as the map and weight memories
        m.submodules.out_mem = out_mem = ReadRegRAM(C * 8, cfg.out_depth, name="out_mem",
                                                    registered=False)
        m.submodules.step_mem = step_mem = Memory(
            shape=data.ArrayLayout(self.step_layout, R), depth=cfg.step_depth, init=[])
        bl = self.block_layout
        KB = cfg.group_bits
        prm_layout = data.ArrayLayout(data.StructLayout(
            {"bias": signed(32), "mult": unsigned(31), "shift": signed(6)}), P)
        m.submodules.base_mem = base_mem = Memory(shape=A, depth=cfg.ob_depth, init=[])
        m.submodules.prm_mem = prm_mem = Memory(shape=prm_layout, depth=cfg.ob_depth << KB,
                                                init=[])
        w_mems = []
        for r in range(R):
            wm = ReadRegRAM(C * 8, cfg.w_depth, name=f"w_mem_{r}")
            m.submodules[f"w_mem_{r}"] = wm
            w_mems.append(wm)

        def write_port(mem):
            """(address, data, enable) of ``mem``'s write port."""
            if isinstance(mem, ReadRegRAM):
                return mem.w_addr, mem.w_data, mem.w_en
            wp = mem.write_port()
            return wp.addr, wp.data, wp.en

        def loader(mem, sel, value, addr_value=None, extra=1, name=None):
            """Write ``mem`` from the load port one cycle late, through registers: the write
            enable decoded from ``sel`` into a register of the memory's own, the address taken
            when ``sel`` is selected, the data taken every cycle. The load nets then start at
            registers instead of carrying the port's decoder to every block-RAM and LUT-RAM
            cell of the engine. The data registers have no clock enable because the decoder
            driving one was the routed 85F's critical path (one LUT, hundreds of enables
            across the die: 1117 for the parameter table); memories that take the same bits
            of ``ld_data`` share them (synthesis merges equal registers)."""
            w_addr, w_data, w_en = write_port(mem)
            name = name or f"ld{sel}"
            hit = self.ld_en & (self.ld_sel == sel) & extra
            addr_in = self.ld_addr if addr_value is None else addr_value
            if not cfg.load_regs:
                m.d.comb += [w_addr.eq(addr_in), w_data.eq(value), w_en.eq(hit)]
                return
            en = Signal(name=f"{name}_en")
            addr = Signal(len(w_addr), name=f"{name}_addr")
            word = Signal(len(Value.cast(w_data)), name=f"{name}_data")
            m.d.sync += [en.eq(hit), word.eq(value)]
            with m.If(hit):
                m.d.sync += addr.eq(addr_in)
            m.d.comb += [w_addr.eq(addr), w_data.eq(word), w_en.eq(en)]
        if not line:
            loader(in_mem, 0, self.ld_data[:L * 8])
        for r, wm in enumerate(w_mems):
            loader(wm, 1, self.ld_data[r * C * 8:(r + 1) * C * 8], name=f"ld1_{r}")
        loader(step_mem, 2, self.ld_data[:R * self.step_layout.size])
        # block table (sel 3): address ob·2^KB + group; in_base is taken from group 0's word
        blk_word = data.View(bl, self.ld_data[:bl.size])
        loader(base_mem, 3, blk_word.in_base, addr_value=self.ld_addr[KB:],
               extra=(self.ld_addr[:KB] == 0) if KB else 1, name="ld3_base")
        prm_word = Signal(prm_layout)
        for p in range(P):
            m.d.comb += [prm_word[p].bias.eq(blk_word.bias[p]), prm_word[p].mult.eq(blk_word.mult[p]),
                         prm_word[p].shift.eq(blk_word.shift[p])]
        loader(prm_mem, 3, prm_word)
        m.d.comb += [out_mem.r_addr[0].eq(self.rd_addr), self.rd_data.eq(out_mem.r_data[0])]

        # ---- issue: loop counters ----------------------------------------------------------
        # down counters (what is left of the pixel's slot, the row, the map, the blocks) so the
        # loop conditions are zero tests of registers, not adders and comparators in series
        run = Signal()
        ob, s = Signal(12), Signal(12)
        s_left, x_left, y_left, ob_left = Signal(12), Signal(12), Signal(12), Signal(12)
        # tap bounds: a tap (dy, dx) of the current pixel lies inside the map iff
        # ylo <= dy < yhi and xlo <= dx < xhi (ylo = −iy0, yhi = H − iy0, likewise x)
        ylo, yhi = Signal(signed(14)), Signal(signed(14))
        xlo, xhi = Signal(signed(14)), Signal(signed(14))
        pix, rowpix = Signal(signed(A + 3)), Signal(signed(A + 3))
        waddr, wbase = Signal(A), Signal(A)
        # reduction iterations of the current pixel: what is left, whether this is the last,
        # and the offsets iteration i adds (i·it_stride to addresses, i·it_dy to tap rows)
        it_left, last_it = Signal(12), Signal()
        ioff, ydoff = Signal(A + 2), Signal(signed(14))
        cycles = Signal(32)
        m.d.comb += self.cycles.eq(cycles)
        # next values of s and ob (the counters' next-state logic)
        s_nx, ob_nx = Signal(12), Signal(12)
        m.d.comb += [s_nx.eq(s), ob_nx.eq(ob)]
        m.d.sync += [s.eq(s_nx), ob.eq(ob_nx)]

        # a pixel occupies max(n_it·steps, drain) cycles so the shared requant lanes keep up:
        # its last iteration lasts ``slot`` (host-computed) cycles, the others ``steps``
        slot_m1, steps_m1, first_m1 = Signal(12), Signal(12), Signal(12)
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
        m.d.comb += self.busy.eq(busy_r)
        with m.If(self.start & ~busy_r):
            m.d.comb += [s_nx.eq(0), ob_nx.eq(0)]
            m.d.sync += [run.eq(1), busy_r.eq(1), self.done.eq(0), cycles.eq(0),
                         waddr.eq(0), wbase.eq(0),
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
                            m.d.sync += [wbase.eq(0), waddr.eq(0), ob_left.eq(d.n_ob - 1),
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

        # ---- stage T: table reads at registered addresses ----------------------------------
        # The step table and in_base are read at the current (s, ob) registers, not at their
        # next-state logic: the address nets fan out to every LUT-RAM cell of the tables
        # (routed 85F critical path: s → s + 1 → multiplexer → 6 ns of address routing), so
        # they must start at a flip-flop. The data arrive a cycle later; the loop state they
        # belong to waits in the t_* registers.
        step_rd = step_mem.read_port()
        base_rd = base_mem.read_port()
        m.d.comb += [step_rd.addr.eq(s), base_rd.addr.eq(ob)]
        in_base = base_rd.data
        t_go, t_last, t_final = Signal(), Signal(), Signal()
        t_ob, t_waddr = Signal(12), Signal(A)
        t_ylo, t_yhi = Signal(signed(14)), Signal(signed(14))
        t_xlo, t_xhi = Signal(signed(14)), Signal(signed(14))
        t_pix = Signal(signed(A + 3))
        m.d.sync += [t_go.eq(issue), t_last.eq(last_step),
                     t_final.eq(last_step & last_x & last_y & last_ob),
                     t_ob.eq(ob), t_waddr.eq(waddr), t_ylo.eq(ylo - ydoff),
                     t_yhi.eq(yhi - ydoff), t_xlo.eq(xlo), t_xhi.eq(xhi), t_pix.eq(pix + ioff)]

        # ---- stage A: per-row addresses and validity (registered) -------------------------
        # (the beat flags pass stage A in the flag chain below)
        a_waddr = Signal(A)
        AW = max(A, feeder.ring_bits) if line else A
        a_addr = [Signal(AW, name=f"a_addr_{r}") for r in range(R)]
        a_ok = [Signal(name=f"a_ok_{r}") for r in range(R)]
        a_lane = [Signal(range(L), name=f"a_lane_{r}") for r in range(R)]
        m.d.sync += a_waddr.eq(t_waddr)
        for r in range(R):
            e = step_rd.data[r]
            ok = e.en & (e.dy >= t_ylo) & (e.dy < t_yhi) & (e.dx >= t_xlo) & (e.dx < t_xhi)
            if line:
                # ring address of the tap: (input row mod line_rows, block·W + input column);
                # xlo = −ix0, ylo = −iy0 of the pixel; in_base holds the first block·W of the
                # output block's group and delta the tap's block·W within the group
                ix, iy = Signal(signed(max(A, 14) + 3)), Signal(signed(15))
                m.d.comb += [ix.eq(in_base + e.delta + e.dx - t_xlo), iy.eq(e.dy - t_ylo)]
                ring = Cat(ix[:feeder.xb], iy[:feeder.yb])
                m.d.sync += a_addr[r].eq(ring)
            else:
                m.d.sync += a_addr[r].eq(in_base + e.delta + t_pix)
            m.d.sync += [a_ok[r].eq(ok), a_lane[r].eq(e.lane)]

        # ---- line mode: fill the ring ahead of the array, release rows behind it ----------
        if line:
            # the map memory's port: the loader (sel 0) while idle, the feeder while busy
            tq, fq = in_tgt.bus.req, feeder.bus.req
            m.d.comb += [
                tq.valid.eq(Mux(busy_r, fq.valid, self.ld_en & (self.ld_sel == 0))),
                tq.payload.addr.eq(Mux(busy_r, fq.payload.addr, self.ld_addr)),
                tq.payload.write.eq(~busy_r),
                tq.payload.data.eq(self.ld_data[:L * 8]),
                fq.ready.eq(tq.ready & busy_r),
            ]
            wiring.connect(m, in_tgt.bus.resp, feeder.bus.resp)
            # the feeder fetches every row of the map once (all channel blocks side by side);
            # rel_iy0 is the first input row the array may still read, so rows below
            # rel_iy0 + line_rows may overwrite their line
            f_started = Signal()
            rel_iy0 = Signal(signed(14))
            m.d.comb += [feeder.base.eq(0), feeder.n_rows.eq(d.h_feed), feeder.w.eq(d.w),
                         feeder.plane.eq(d.plane), feeder.nb.eq(d.nb),
                         feeder.limit.eq(rel_iy0 + cfg.line_rows)]
            with m.If(run & ~f_started & feeder.idle):
                m.d.comb += feeder.go.eq(1)
                m.d.sync += f_started.eq(1)
            need = Signal(signed(15))            # rows the current output row needs: iy0 + kh
            m.d.comb += need.eq(d.kh - ylo)
            m.d.comb += stall.eq(~f_started |
                                 (feeder.rows.as_signed() < Mux(need > d.h_feed, d.h_feed, need)))
            # an output row's last read leaves row R−1's skew 2 + (R−1)·hop cycles after its
            # issue (stages T and A, the skew); the release follows it (cfg.release_delay)
            rel = [run & ~stall & wrap & last_it & last_x & last_ob]
            for k in range(cfg.release_delay):
                e1 = Signal(name=f"rel_row_{k}")
                m.d.sync += e1.eq(rel[-1])
                rel.append(e1)
            with m.If(self.start & ~busy_r):
                m.d.sync += [f_started.eq(0), rel_iy0.eq(-d.pad_t)]
            with m.Elif(rel[-1]):
                m.d.sync += rel_iy0.eq(rel_iy0 + d.stride_h)
        else:
            m.d.comb += stall.eq(0)

        # ---- skew: row r reads r·hop cycles after row 0 -----------------------------------
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
            addr, ok, wa, ln = a_addr[r], a_ok[r], a_waddr, a_lane[r]
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
            if line:
                xrp = line_mem.read_port()
                m.d.comb += xrp.addr.eq(addr)
                x_q = Signal(L * 8, name=f"x_q_{r}")
                m.d.sync += x_q.eq(xrp.data)
            else:
                m.d.comb += in_mem.r_addr[r].eq(addr)
                x_q = in_mem.r_data[r]
            m.d.comb += w_mems[r].r_addr[0].eq(wa)
            w_q = w_mems[r].r_data[0]
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

        # ---- beat flags follow the data down the array -------------------------------------
        # stage T → stage A (1) → row 0's memory read and output register (MEM_LATENCY) →
        # array (sum_latency) → column sums
        flags = [(t_go, t_last, t_final, t_ob)]
        for k in range(1 + MEM_LATENCY + array.sum_latency):
            g, l, fin, o = flags[-1]
            n = (Signal(name=f"b_go_{k}"), Signal(name=f"b_last_{k}"),
                 Signal(name=f"b_final_{k}"), Signal(12, name=f"b_ob_{k}"))
            m.d.sync += [n[0].eq(g), n[1].eq(l), n[2].eq(fin), n[3].eq(o)]
            flags.append(n)
        b_go, b_last, b_final, b_ob = flags[-1]

        # ---- column accumulators ----------------------------------------------------------------------------------------
        cap = b_go & b_last                       # the pixel's sums are complete this cycle
        # acc_c: the sum including this beat (what the drain takes); open_c: the sum of the
        # pixel still open, 0 after a pixel's last beat. The "pixel ends" flag thus picks
        # open_c's next value behind the adder instead of zeroing its input in front of it:
        # its net reaches all cols × 32 bits across the die and no longer runs through a
        # carry chain on the way
        accs, totals = [], []
        for c in range(C):
            acc = Signal(signed(32), name=f"acc_{c}")
            open_sum = Signal(signed(32), name=f"open_{c}")
            total = Signal(signed(32), name=f"total_{c}")
            m.d.comb += total.eq(open_sum + array.psum[c])
            with m.If(b_go):
                m.d.sync += [acc.eq(total), open_sum.eq(Mux(b_last, 0, total))]
            accs.append(acc)
            totals.append(total)

        # ---- drain: P requant lanes take the C sums in D cycles ---------------------------
        # with D = 1 the accumulators themselves hold the sums while the lanes take them;
        # otherwise shadow registers free the accumulators for the next pixel
        # (serial lanes: one group every II cycles)
        d_act, dk = Signal(), Signal(range(max(D, 2)))
        dii = Signal(range(max(II, 2)))
        d_ob, sh_fin = Signal(12), Signal()
        # the group counter and block in next-state form: the parameter read address below is
        # registered from them
        dk_nx, d_ob_nx = Signal(range(max(D, 2))), Signal(12)
        m.d.comb += [dk_nx.eq(dk), d_ob_nx.eq(d_ob)]
        m.d.sync += [dk.eq(dk_nx), d_ob.eq(d_ob_nx)]
        with m.If(cap):
            m.d.comb += [dk_nx.eq(0), d_ob_nx.eq(b_ob)]
            m.d.sync += [d_act.eq(1), dii.eq(0), sh_fin.eq(b_final)]
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
        prm_rd = prm_mem.read_port()
        prm_addr = Signal.like(prm_rd.addr, name="prm_addr")
        g2, l2, _, o2 = flags[-2]
        if KB:
            m.d.sync += prm_addr.eq(Mux(g2 & l2, o2 << KB, Cat((dk_nx + 1)[:KB], d_ob_nx)))
        else:
            m.d.sync += prm_addr.eq(Mux(g2 & l2, o2, d_ob_nx))
        m.d.comb += prm_rd.addr.eq(prm_addr)
        # the output zero point and clamp bounds reach lane group g (4 groups at most) through
        # stage g of one chain (hw.engine.static_chain; one merged chain driving all 16 lanes was the
        # routed 85F critical path, 15 ns of routing); the first pixel reaches the lanes
        # ≥ rows + 6 cycles after start, later than stage 3
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

        # group index and final marker travel beside the requant pipeline
        o_k, fin = dk, beat & (dk == D - 1) & sh_fin
        for k in range(latency):
            k2, f2 = Signal(range(max(D, 2)), name=f"ok_{k}"), Signal(name=f"fin_{k}")
            m.d.sync += [k2.eq(o_k), f2.eq(fin)]
            o_k, fin = k2, f2
        o_valid = lanes_out[0].valid
        held = Signal(data.ArrayLayout(data.ArrayLayout(signed(8), P), D), name="out_held")
        if D > 1:
            with m.If(o_valid):
                for p in range(P):
                    m.d.sync += held[o_k][p].eq(lanes_out[p].payload)

        wp_addr, wp_data, wp_en = write_port(out_mem)
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
        with m.If(self.start & ~busy_r):
            m.d.sync += out_addr.eq(0)
        with m.Elif(store):
            m.d.sync += out_addr.eq(out_addr + 1)
        with m.If(fin & busy_r):
            m.d.sync += [busy_r.eq(0), self.done.eq(1)]
        return m
