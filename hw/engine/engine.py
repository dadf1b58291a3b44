"""Convolution engine top: memories, address generation, systolic array, requantisation.

Everything a layer needs is inside, so a simulation loads the memories once, pulses ``start``
and waits for ``done`` with no per-cycle host activity.

Memories (sizes are elaboration parameters; all written through the ``ld_*`` port):

====  ===========  ==========================================  ====================================
sel   name         word                                        address
====  ===========  ==========================================  ====================================
0     input map    ``lanes`` int8 (channels of one pixel)      ``(block·H + y)·W + x``
1     weights      ``rows × cols`` int8 (one per PE)           ``w_base + ob·w_ob + i·steps + step``
2     step table   per port: ``dy, dx, delta``;                ``step``
                   per row: ``en, port, lane``
3     block table  ``in_base`` + bias/mult/shift of one group  ``ob·2^group_bits + k`` (group k
                   of ``post_lanes`` columns)                  of columns ``k·P … k·P+P−1``)
====  ===========  ==========================================  ====================================

With ``EngineConfig(pool_width=N)`` and the descriptor's ``pool`` bit, a fused 2×2/2 max-pool
(``hw.engine.pool.MaxPool2x2``) sits before the output memory, which then holds the pooled map.

The output memory (``cols`` int8 per word, address ``out_base + ob·Ho·Wo + oy·Wo + ox``) is read back
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

``Engine.elaborate`` joins the parts, each of which adds its logic to the engine's module:
``hw.engine.memories`` (the memories and the load port), ``hw.engine.issue`` (the issue loop,
stage T's table reads, stage A's row addresses), ``hw.engine.line_feed`` (line mode's ring),
``hw.engine.array_feed`` (the skew, the reads and the array), ``hw.engine.drain`` (beat flags,
column accumulators, requant lanes) and ``hw.engine.writer`` (output words, pool, ``done``).
"""
from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.memory.read_reg_ram import LATENCY as RAM_LATENCY
from hw.engine.array_feed import feed_array
from hw.engine.drain import BeatFlags, Drain, column_accumulators
from hw.engine.issue import IssueLoop, RowAddresses, TableReads
from hw.engine.line_feed import feed_lines
from hw.engine.memories import EngineMemories
from hw.engine.requant import RequantSerial
from hw.engine.systolic import SystolicArray
from hw.engine.writer import write_output


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
        # where the run's weights and output words start in their memories, so the DMA can
        # fill or drain the other part of a memory while the engine runs (double buffering)
        "w_base": addr_width,
        "out_base": addr_width,
        # the bank of the step and block tables the run reads (EngineConfig.table_banks)
        "step_bank": 1,
        "ob_bank": 1,
    })


def table_bases(desc: dict, cfg) -> tuple:
    """(first step-table word, first block-table word) of the run ``desc`` describes: its
    ``step_bank`` and ``ob_bank`` with two table banks (``EngineConfig.table_banks``), else 0."""
    if cfg.table_banks == 1:
        return 0, 0
    return desc["step_bank"] * cfg.step_depth, desc["ob_bank"] * cfg.block_words


def port_entry_layout(addr_width: int) -> data.StructLayout:
    """One read port's part of a step: the tap ``(dy, dx)`` it reads and the word's offset
    ``delta`` from ``in_base + pix``."""
    return data.StructLayout({"dy": 4, "dx": 4, "delta": addr_width})


def row_entry_layout(lanes: int, ports: int) -> data.StructLayout:
    """One array row's part of a step: whether it takes an element, from which read port's
    word, and which lane of that word."""
    return data.StructLayout({"en": 1, "port": range(max(ports, 2)), "lane": range(lanes)})


def step_word_layout(cfg: "EngineConfig") -> data.StructLayout:
    """A step-table word: ``read_ports`` port entries, then ``rows`` row entries. With as many
    ports as rows (line mode, small arrays) row ``r`` reads through port ``r`` and its ``port``
    field is ignored."""
    return data.StructLayout({
        "ports": data.ArrayLayout(port_entry_layout(cfg.addr_width), cfg.read_ports),
        "rows": data.ArrayLayout(row_entry_layout(cfg.lanes, cfg.read_ports), cfg.rows)})


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
                 dsp_sites=None, load_regs=True, read_ports=None, table_banks=1,
                 fabric_regs=True):
        self.rows, self.cols = rows, cols
        #: the registers a big die's routes need between the memories and the multipliers: the
        #: map and weight memories' output registers, the array's row fan-out registers and the
        #: PEs' operand registers in the fabric.  False (small FPGAs short of logic cells, the
        #: UP5K) feeds the multipliers' own input registers straight from the block RAMs'
        #: registered outputs: 3 cycles less latency, ~400 flip-flops fewer on a 2×4 array
        self.fabric_regs = bool(fabric_regs)
        if line_rows and not self.fabric_regs:
            raise ValueError("line mode keeps the fabric registers (fabric_regs=True)")
        #: copies of the step and block tables (1 or 2): with 2 the DMA loads the next run's
        #: tables into the bank the current run does not read (the descriptor's ``step_bank``
        #: and ``ob_bank`` pick a run's), so a table change no longer waits for the engine
        self.table_banks = int(table_banks)
        if self.table_banks not in (1, 2):
            raise ValueError(f"table_banks={table_banks} must be 1 or 2")
        if self.table_banks == 2 and (step_depth & (step_depth - 1) or ob_depth & (ob_depth - 1)):
            raise ValueError("two table banks need power-of-two step_depth and ob_depth")
        #: read ports of the input memory (copies of it in block RAM). Fewer than ``rows``:
        #: the ports read at the step and the array's rows take their bytes from those words,
        #: skewed after the read (each step's elements must come from ``read_ports`` words,
        #: depthwise steps take ``read_ports`` taps); ``rows`` (default, and line mode): each
        #: row reads its own word, its address skewed before the read
        self.read_ports = int(read_ports or rows)
        if not 1 <= self.read_ports <= rows:
            raise ValueError(f"read_ports={read_ports} must lie in 1..rows")
        if line_rows and self.read_ports != rows:
            raise ValueError("line mode reads one ring word per row (read_ports = rows)")
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

    # Widths of the loop state: what the memories and tables bound (the compiler keeps every
    # run inside them, ``host.compiler.layer.check_capacity``), not the descriptor's 12 bits
    @property
    def ob_bits(self) -> int:
        """Output-channel block counters: a run has at most ``ob_depth`` blocks."""
        return _bits(self.ob_depth)

    @property
    def slot_bits(self) -> int:
        """Step counters: a pixel's slot is at most ``max(step_depth, drain)`` cycles."""
        return _bits(max(self.step_depth, self.drain))

    @property
    def it_bits(self) -> int:
        """Iteration counters: a block's ``n_it·steps`` weight words fit the weight memory."""
        return _bits(self.w_depth)

    @property
    def xy_bits(self) -> int:
        """Output row and column counters: the run's outputs fit the output memory (line mode
        streams whole maps: the descriptor's 12 bits)."""
        return 12 if self.line_rows else min(12, _bits(self.out_depth))

    @property
    def coord_bits(self) -> int:
        """Signed tap bounds (``ylo``…``xhi``): within a stored map's height or width and 15
        rows of padding (line mode: the descriptor's 12-bit map height)."""
        return 14 if self.line_rows else min(14, _bits(self.in_depth) + 2)

    @property
    def block_words(self) -> int:
        """Words of one bank of the block table: ``ob_depth`` blocks of 2^group_bits."""
        return self.ob_depth << self.group_bits

    @property
    def mem_latency(self) -> int:
        """Cycles from a row's read address to its data at the array: the block-RAM read and,
        with ``fabric_regs``, the output register behind it (``hw.memory.read_reg_ram``)."""
        return MEM_LATENCY if self.fabric_regs else MEM_LATENCY - 1

    @property
    def array_latency(self) -> int:
        """``SystolicArray.latency(fabric_regs)``: row operands to the row's partial sum."""
        return SystolicArray.latency(self.fabric_regs)

    @property
    def latency(self) -> int:
        """Pipeline fill and drain of one run: with ``slot = max(steps, drain)``,
        cycles = n_ob·Ho·Wo·slot − (slot − steps) + latency,
        latency = 2 + (rows − 1)·hop + M_lat + A_lat + 1 + R_lat + drain − II:
        stages T and A (2: the table reads, then the addresses), the skew over the rows
        ((rows − 1)·hop), the memory read and its output register (``M_lat = mem_latency``:
        2, 1 without ``fabric_regs``), the array (``A_lat = array_latency``: 5 = row fan-out
        register, the PE's operand registers in the fabric and in the multiplier, product,
        partial sum; 3 without ``fabric_regs``), the requant lane
        (R_lat = 11, 12 with ``lut_requant``, 53 serial; bias add included), and with the
        accumulator, the last pixel's drain (groups of ``post_lanes`` columns, one every ``II``
        cycles) and ``done``, ``1 + drain − II``."""
        return (2 + (self.rows - 1) * self.psum_hop + self.mem_latency + self.array_latency + 1
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
            dict(read_ports=self.read_ports) if self.read_ports != self.rows else {}) | (
            dict(line_rows=self.line_rows, line_words=self.line_words) if self.line_rows else {}) | (
            dict(dsp_sites=self.dsp_sites) if self.dsp_sites else {}) | (
            {} if self.load_regs else dict(load_regs=False)) | (
            dict(table_banks=self.table_banks) if self.table_banks != 1 else {}) | (
            {} if self.fabric_regs else dict(fabric_regs=False))

    def __repr__(self):
        return "EngineConfig(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


class Engine(wiring.Component):
    """One conv/FC layer per ``start``: ``done`` rises when the last output word is written;
    ``cycles`` counts the cycles from ``start`` to ``done``."""

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        A = cfg.addr_width
        self.desc_layout = layer_desc_layout(A)
        self.step_layout = step_word_layout(cfg)
        #: block table word: one per (output-channel block, group of post_lanes columns)
        self.block_layout = block_entry_layout(A, cfg.post_lanes)
        self.ld_width = max(cfg.lanes * 8, cfg.rows * cfg.cols * 8,
                            self.step_layout.size, self.block_layout.size)
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
        cfg, d = self.cfg, self.desc
        # the parts in pipeline order; each adds its logic to m (docs/engine.md)
        mems = EngineMemories(m, cfg, self.step_layout, self.block_layout,
                              fetched=self.fetched if cfg.line_rows else None)
        mems.load(m, self.ld_en, self.ld_sel, self.ld_addr, self.ld_data)
        mems.read_back(m, self.rd_addr, self.rd_data)
        loop = IssueLoop(m, cfg, d, self.start, self.busy, self.done, self.cycles)
        table = TableReads(m, cfg, d, mems, loop)
        addrs = RowAddresses(m, cfg, table, mems.feeder)
        feed_lines(m, cfg, d, mems, loop, self.ld_en, self.ld_sel, self.ld_addr, self.ld_data)
        array = feed_array(m, cfg, d, mems, addrs, platform)
        flags = BeatFlags(m, table, cfg.mem_latency, array.sum_latency)
        accs, totals = column_accumulators(m, array.psum, flags.go, flags.last)
        drain = Drain(m, cfg, d, mems, flags, accs, totals)
        write_output(m, cfg, d, mems, drain, loop, self.done)
        return m
