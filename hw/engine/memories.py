"""The engine's memories and the load port that writes them (the memory map is in
``hw.engine.engine``).

:class:`EngineMemories` adds the memories to the engine's module; the stages that read them take
their read ports where they need them, so each read is placed in its own stage.
"""
from amaranth.hdl import Signal, Value, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.memory.bram import BRAMTarget
from hw.memory.read_reg_ram import NO_RW_CHECK, ReadRegRAM
from hw.engine.row_feeder import RowFeeder

__all__ = ["EngineMemories", "write_port"]


def write_port(mem):
    """(address, data, enable) of ``mem``'s write port."""
    if isinstance(mem, ReadRegRAM):
        return mem.w_addr, mem.w_data, mem.w_en
    wp = mem.write_port()
    return wp.addr, wp.data, wp.en


class EngineMemories:
    """Adds the engine's memories to module ``m``:

    * ``in_mem``: the input map, ``read_ports`` read ports (``ReadRegRAM``); in line mode
      instead ``in_tgt``, a ``BRAMTarget`` behind a memory port, the ``feeder``
      (``RowFeeder``) that alone reads it and the ring of line memories ``line_mem`` it fills;
    * ``w_mems``: one weight memory per array row;
    * ``step_mem``: the step table (one word per step: an entry per read port, one per row);
    * the block table (sel 3) kept in two memories: ``base_mem`` holds ``in_base`` per block (read
      at issue), ``prm_mem`` the bias/multiplier/shift of each group of ``post_lanes`` columns
      (read the cycle before that group's drain beat);
    * ``out_mem``: the output map, read back by the host.

    Memories the mode does not use are None. ``fetched`` (line mode): the engine's port that
    counts the map words the feeder read."""

    def __init__(self, m, cfg, step_layout, block_layout, fetched=None):
        self.cfg = cfg
        self.step_layout, self.block_layout = step_layout, block_layout
        R, C, L, P, A = cfg.rows, cfg.cols, cfg.lanes, cfg.post_lanes, cfg.addr_width
        self.line = bool(cfg.line_rows)
        self.in_mem = self.in_tgt = self.feeder = self.line_mem = None
        if self.line:
            # the map sits behind a memory port (a board's SDRAM; here block RAM) and only the
            # row feeder reads it; the array reads the ring of line memories
            m.submodules.in_mem = self.in_tgt = BRAMTarget(cfg.in_depth, L * 8)
            m.submodules.feeder = self.feeder = RowFeeder(self.in_tgt.addr_width, L * 8,
                                                          cfg.line_rows, cfg.line_words)
            feeder = self.feeder
            m.submodules.line_mem = self.line_mem = Memory(shape=L * 8,
                                                           depth=1 << feeder.ring_bits, init=[])
            lwp = self.line_mem.write_port()
            m.d.comb += [lwp.addr.eq(feeder.wr_addr), lwp.data.eq(feeder.wr_data),
                         lwp.en.eq(feeder.wr_en), fetched.eq(feeder.fetched)]
        else:
            # ``read_ports`` read ports (one per array row, or fewer shared by the rows), each
            # followed by an output register (on ECP5, block-RAM tiles without yosys's
            # read-during-write emulation: hw.memory.read_reg_ram)
            m.submodules.in_mem = self.in_mem = ReadRegRAM(L * 8, cfg.in_depth,
                                                           read_ports=cfg.read_ports,
                                                           name="in_mem",
                                                           registered=cfg.fabric_regs)
        # read back by the host one cycle after rd_addr; tiles on ECP5 (hw.memory.read_reg_ram),
        # for the same reason as the map and weight memories
        m.submodules.out_mem = self.out_mem = ReadRegRAM(C * 8, cfg.out_depth, name="out_mem",
                                                         registered=False)
        NB = cfg.table_banks
        # the engine never reads a table word the load port is writing (a run reads one bank
        # while the controller loads the other): no read-during-write logic in the block RAMs
        undefined = {NO_RW_CHECK: 1}
        # with two banks the step table and the block bases stay in LUT RAM (yosys put the
        # 85F's 64-entry step table in block RAM, which is full; hw.budget counts them so)
        lutram = {"ram_style": "distributed"} | undefined if NB > 1 else undefined
        m.submodules.step_mem = self.step_mem = Memory(
            shape=step_layout, depth=cfg.step_depth * NB, init=[], attrs=lutram)
        self.prm_layout = data.ArrayLayout(data.StructLayout(
            {"bias": signed(32), "mult": unsigned(31), "shift": signed(6)}), P)
        m.submodules.base_mem = self.base_mem = Memory(shape=A, depth=cfg.ob_depth * NB, init=[],
                                                       attrs=lutram)
        m.submodules.prm_mem = self.prm_mem = Memory(shape=self.prm_layout,
                                                     depth=cfg.block_words * NB, init=[],
                                                     attrs=undefined)
        self.w_mems = []
        for r in range(R):
            wm = ReadRegRAM(C * 8, cfg.w_depth, name=f"w_mem_{r}", registered=cfg.fabric_regs)
            m.submodules[f"w_mem_{r}"] = wm
            self.w_mems.append(wm)

    def load(self, m, ld_en, ld_sel, ld_addr, ld_data):
        """Write the memories from the load port: ``ld_sel`` picks the memory (the memory map
        of ``hw.engine.engine``), ``ld_en`` writes ``ld_data`` at ``ld_addr``. In line mode the
        map (sel 0) is written through its memory port instead (``hw.engine.line_feed``)."""
        cfg = self.cfg
        R, C, L, P, KB = cfg.rows, cfg.cols, cfg.lanes, cfg.post_lanes, cfg.group_bits

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
            hit = ld_en & (ld_sel == sel) & extra
            addr_in = ld_addr if addr_value is None else addr_value
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

        if not self.line:
            loader(self.in_mem, 0, ld_data[:L * 8])
        for r, wm in enumerate(self.w_mems):
            loader(wm, 1, ld_data[r * C * 8:(r + 1) * C * 8], name=f"ld1_{r}")
        loader(self.step_mem, 2, ld_data[:self.step_layout.size])
        # block table (sel 3): address ob·2^KB + group; in_base is taken from group 0's word
        bl = self.block_layout
        blk_word = data.View(bl, ld_data[:bl.size])
        loader(self.base_mem, 3, blk_word.in_base, addr_value=ld_addr[KB:],
               extra=(ld_addr[:KB] == 0) if KB else 1, name="ld3_base")
        prm_word = Signal(self.prm_layout)
        for p in range(P):
            m.d.comb += [prm_word[p].bias.eq(blk_word.bias[p]),
                         prm_word[p].mult.eq(blk_word.mult[p]),
                         prm_word[p].shift.eq(blk_word.shift[p])]
        loader(self.prm_mem, 3, prm_word)

    def read_back(self, m, rd_addr, rd_data):
        """The host's read port of the output memory (data one cycle after the address)."""
        m.d.comb += [self.out_mem.r_addr[0].eq(rd_addr), rd_data.eq(self.out_mem.r_data[0])]
