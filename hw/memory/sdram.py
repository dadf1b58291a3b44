"""SDR SDRAM controller: a memory-port *target* for the ULX3S's 32 MB 16-bit SDRAM.

The controller turns the word-addressed request/response streams of :mod:`hw.memory.memport` into SDRAM
commands for one x16 SDR chip of the MT48LC16M16A2-6A class (4 banks × 8192 rows × 512 columns).

What it does
------------
* **Initialisation** (datasheet power-up sequence): ``init_wait_us`` (200 µs by default, the
  datasheet asks for ≥ 100 µs) of NOPs with CKE high, PRECHARGE ALL, ``init_refreshes`` AUTO
  REFRESH commands (≥ 2), LOAD MODE REGISTER (burst length 1, sequential, CAS latency 2 or 3),
  then ``init_done`` rises.
* **Periodic refresh**: one AUTO REFRESH every ``tREF / rows`` (64 ms / 8192 = 7.8 µs), preceded
  by PRECHARGE ALL; requests wait meanwhile.
* **Open-row policy**: each bank keeps its row open.  A request to the open row of its bank is a
  single READ/WRITE (one word per cycle for streams that stay in a row); a request to another row
  precharges the bank and activates the new row.  Address mapping ``{row, bank, column}`` from the
  top bit down, so a linear stream walks through a row, then moves to the next bank.
* **Pipelined reads**: READs are issued back to back; read data come back through a response FIFO
  whose free space is reserved before each READ is issued (the response stream may stall freely).
* **Timing from the clock**: every datasheet time (ns) becomes a cycle count ``ceil(t / tCK)``
  at elaboration; per-bank counters enforce tRCD, tRP, tRAS, tRC, tWR, and global ones tRRD, tMRD,
  tRFC and the read→write bus turnaround.

Pins
----
All command, address and data outputs are registered (``pins``, see :class:`SDRAMPinsSignature`)
and ``dq_i`` is registered on entry.  A board top may add I/O registers (e.g. the ECP5's IOB flops)
between the controller and the chip; ``extra_read_latency`` tells the controller how many cycles
those add to the round trip of read data (output registers + input registers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature

__all__ = ["SDRAMChip", "MT48LC16M16A2_6A", "SDRAMPinsSignature", "SDRAMController",
           "sdram_cycles"]


@dataclass(frozen=True)
class SDRAMChip:
    """Geometry and datasheet timing (ns unless noted) of an SDR SDRAM chip."""
    name: str
    bank_bits: int
    row_bits: int
    col_bits: int
    dq_bits: int
    tCK_cl2: float          # minimum clock period at CAS latency 2
    tCK_cl3: float          # minimum clock period at CAS latency 3
    tRCD: float             # ACTIVE → READ/WRITE, same bank
    tRP: float              # PRECHARGE → ACTIVE/REFRESH, same bank
    tRAS: float             # ACTIVE → PRECHARGE, same bank (minimum)
    tRAS_max: float         # ACTIVE → PRECHARGE, same bank (maximum)
    tRC: float              # ACTIVE → ACTIVE, same bank
    tRFC: float             # AUTO REFRESH → any command
    tWR: float              # last write data → PRECHARGE (manual precharge)
    tRRD: float             # ACTIVE → ACTIVE, different banks
    tMRD_ck: int            # LOAD MODE REGISTER → any command (clock cycles)
    tREF_ms: float          # every row refreshed within this time
    refresh_rows: int       # AUTO REFRESH commands per tREF
    init_us: float          # power-up wait before the first command (µs)
    tAC_cl2: float = 0.0    # access time from CLK (max) at CAS latency 2: read data valid after
    tAC_cl3: float = 0.0    # ... at CAS latency 3
    tOH: float = 0.0        # output data hold after the next CLK edge (min)
    tIS: float = 1.5        # address/command/data input setup before CLK
    tIH: float = 0.8        # address/command/data input hold after CLK
    tMRD: float = 0.0       # LOAD MODE REGISTER → any command (ns; some parts give ns, not cycles)

    def tAC(self, cas_latency: int) -> float:
        """Access time from CLK (ns) at ``cas_latency``."""
        return self.tAC_cl2 if cas_latency == 2 else self.tAC_cl3

    @property
    def addr_width(self) -> int:
        """Width of a word address covering the whole chip."""
        return self.bank_bits + self.row_bits + self.col_bits

    @property
    def tREFI(self) -> float:
        """Average interval between AUTO REFRESH commands (ns)."""
        return self.tREF_ms * 1e6 / self.refresh_rows


#: Micron MT48LC16M16A2-6A (4 M × 16 × 4 banks, 32 MB), one of the ULX3S's SDRAMs; the other
#: fitted parts and their worst case are in :mod:`hw.memory.sdram_parts`.
MT48LC16M16A2_6A = SDRAMChip(
    name="MT48LC16M16A2-6A", bank_bits=2, row_bits=13, col_bits=9, dq_bits=16,
    tCK_cl2=10.0, tCK_cl3=6.0, tRCD=18, tRP=18, tRAS=42, tRAS_max=120_000, tRC=60, tRFC=60,
    tWR=12, tRRD=12, tMRD_ck=2, tREF_ms=64, refresh_rows=8192, init_us=100,
    tAC_cl2=7.5, tAC_cl3=5.4, tOH=3.0, tIS=1.5, tIH=0.8)


def sdram_cycles(t_ns: float, clk_freq: float) -> int:
    """Smallest number of clock cycles (≥ 1) lasting at least ``t_ns``."""
    return max(1, math.ceil(t_ns * 1e-9 * clk_freq - 1e-6))


class SDRAMPinsSignature(wiring.Signature):
    """The SDRAM's pins as seen from the controller (active-low strobes as on the chip).

    ``dq_o``/``dq_oe``/``dq_i`` are the split tristate data bus; ``dqm`` are the byte masks
    (high = masked)."""

    def __init__(self, chip: SDRAMChip = MT48LC16M16A2_6A):
        self.chip = chip
        super().__init__({
            "clk_en": Out(1, init=1),
            "cs_n": Out(1, init=1),
            "ras_n": Out(1, init=1),
            "cas_n": Out(1, init=1),
            "we_n": Out(1, init=1),
            "ba": Out(chip.bank_bits),
            "a": Out(max(chip.row_bits, 11)),
            "dq_o": Out(chip.dq_bits),
            "dq_oe": Out(1),
            "dq_i": In(chip.dq_bits),
            "dqm": Out(chip.dq_bits // 8, init=(1 << (chip.dq_bits // 8)) - 1),
        })


# (ras_n, cas_n, we_n) of each command, with cs_n low.
_CMD = {
    "NOP":       (1, 1, 1),
    "ACTIVE":    (0, 1, 1),
    "READ":      (1, 0, 1),
    "WRITE":     (1, 0, 0),
    "PRECHARGE": (0, 1, 0),
    "REFRESH":   (0, 0, 1),
    "LMR":       (0, 0, 0),
}


class _Counter:
    """A down-counter that blocks a command until it reaches zero.  ``load(cond, n)`` makes the
    command allowed again ``n`` cycles after the cycle where ``cond`` holds (never shortening an
    already longer wait)."""

    def __init__(self, m: Module, maximum: int, name: str):
        self.m = m
        self.value = Signal(range(maximum + 1), name=name)
        self._dec = Signal.like(self.value, name=f"{name}_dec")
        m.d.comb += self._dec.eq(Mux(self.value != 0, self.value - 1, 0))
        m.d.sync += self.value.eq(self._dec)
        self.ready = self.value == 0

    def load(self, cond, cycles: int, *, keep_longer: bool = False):
        """``keep_longer``: the counter may hold a longer wait at this point (compare first);
        otherwise the sequencing guarantees it does not and the load is unconditional."""
        if cycles <= 1:
            return
        if keep_longer:
            cond = cond & (self._dec < cycles - 1)
        with self.m.If(cond):
            self.m.d.sync += self.value.eq(cycles - 1)


class SDRAMController(wiring.Component):
    """Memory-port target driving one SDR SDRAM chip.

    Parameters
    ----------
    clk_freq : float
        Controller (and SDRAM) clock in Hz; all timings are derived from it.
    chip : SDRAMChip
        Geometry and datasheet timing.
    cas_latency : int or None
        2 or 3; by default the lowest the chip allows at ``clk_freq``.
    extra_read_latency : int
        Cycles added to the read round trip by I/O registers outside the controller.
    fifo_depth : int
        Read-response buffer; bounds the number of reads in flight.
    init_wait_us : float
        Power-up wait (the datasheet minimum is ``chip.init_us``).
    init_refreshes : int
        AUTO REFRESH commands during initialisation (≥ 2).

    Ports
    -----
    bus : ``In(MemPortSignature(chip.addr_width, chip.dq_bits))``
        Word-addressed requests; one response per read, in order.
    pins : ``Out(SDRAMPinsSignature(chip))``
    init_done : Out(1)
        High once the power-up sequence is complete.
    refresh_count : Out(32)
        AUTO REFRESH commands issued since reset (for tests and status).
    """

    def __init__(self, clk_freq: float, *, chip: SDRAMChip = MT48LC16M16A2_6A,
                 cas_latency: int | None = None, extra_read_latency: int = 0,
                 fifo_depth: int = 16, init_wait_us: float = 200.0, init_refreshes: int = 2,
                 burst_length: int = 1):
        tck = 1e9 / clk_freq
        if tck < chip.tCK_cl3:
            raise ValueError(f"{chip.name}: {clk_freq / 1e6:.1f} MHz exceeds the chip's maximum "
                             f"{1e3 / chip.tCK_cl3:.0f} MHz")
        if cas_latency is None:
            cas_latency = 2 if tck >= chip.tCK_cl2 else 3
        if cas_latency not in (2, 3):
            raise ValueError("CAS latency must be 2 or 3")
        if cas_latency == 2 and tck < chip.tCK_cl2:
            raise ValueError(f"CAS latency 2 needs tCK ≥ {chip.tCK_cl2} ns")
        if init_wait_us < chip.init_us:
            raise ValueError(f"init_wait_us must be ≥ {chip.init_us} µs")
        if burst_length not in (1, 2, 4, 8):
            raise ValueError("burst length must be 1, 2, 4 or 8")
        if init_refreshes < 2:
            raise ValueError("the power-up sequence needs at least 2 AUTO REFRESH commands")
        self.clk_freq = clk_freq
        self.chip = chip
        self.cas_latency = cas_latency
        self.extra_read_latency = extra_read_latency
        self.fifo_depth = fifo_depth
        self.init_wait_us = init_wait_us
        self.init_refreshes = init_refreshes
        self.burst_length = burst_length
        self.data_width = chip.dq_bits * burst_length
        self.addr_width = chip.addr_width - (burst_length.bit_length() - 1)

        c = lambda t: sdram_cycles(t, clk_freq)  # noqa: E731
        self.t = dict(
            RCD=c(chip.tRCD), RP=c(chip.tRP), RAS=c(chip.tRAS), RC=c(chip.tRC),
            RFC=c(chip.tRFC), WR=c(chip.tWR), RRD=c(chip.tRRD),
            MRD=max(chip.tMRD_ck, c(chip.tMRD) if chip.tMRD else 1),
            INIT=math.ceil(init_wait_us * 1e-6 * clk_freq),
            # Issue refreshes a little more often than required (margin for closing rows).
            REFI=int(chip.tREFI * 1e-9 * clk_freq) - 32,
            RAS_MAX=int(chip.tRAS_max * 1e-9 * clk_freq),
        )
        super().__init__({
            "bus": In(MemPortSignature(self.addr_width, self.data_width)),
            "pins": Out(SDRAMPinsSignature(chip)),
            "init_done": Out(1),
            "refresh_count": Out(32),
        })

    @property
    def read_latency(self) -> int:
        """Cycles from the decision to READ to the data entering the response FIFO."""
        # decision → output register (1) → chip CL → input register (1) → FIFO write.
        return self._beat_latency + (self.burst_length if self.burst_length > 1 else 0)

    @property
    def _beat_latency(self) -> int:
        return 1 + self.cas_latency + 1 + self.extra_read_latency

    def mode_register(self) -> int:
        """Mode register value: burst length, sequential, CAS latency, programmed burst."""
        return (self.cas_latency << 4) | (self.burst_length.bit_length() - 1)

    def elaborate(self, platform):
        m = Module()
        chip, t = self.chip, self.t
        nbanks = 1 << chip.bank_bits
        pins = self.pins

        # ---- registered outputs ---------------------------------------------------------
        cmd = Signal(3, init=0b111)          # (ras_n, cas_n, we_n) decided this cycle, as Cat
        cmd_ba = Signal(chip.bank_bits)
        cmd_a = Signal(len(pins.a))
        cmd_wdata = Signal(chip.dq_bits)
        cmd_write = Signal()
        m.d.comb += cmd.eq(0b111)            # NOP unless a branch below issues something

        # one flag per command, set by the branch that issues it (the counters and the bank
        # state use the flags directly, not a decode of the command bits)
        do = {name: Signal(name=f"do_{name.lower()}") for name in _CMD if name != "NOP"}
        for name, flag in do.items():
            ras, cas, we = _CMD[name]
            with m.If(flag):
                m.d.comb += cmd.eq(Cat(Const(we, 1), Const(cas, 1), Const(ras, 1)))

        def issue(name, ba=None, a=None):
            m.d.comb += do[name].eq(1)
            if ba is not None:
                m.d.comb += cmd_ba.eq(ba)
            if a is not None:
                m.d.comb += cmd_a.eq(a)

        def is_cmd(name):
            return do[name]

        m.d.sync += [
            pins.clk_en.eq(1),
            pins.cs_n.eq(0),
            pins.we_n.eq(cmd[0]),
            pins.cas_n.eq(cmd[1]),
            pins.ras_n.eq(cmd[2]),
            pins.ba.eq(cmd_ba),
            pins.a.eq(cmd_a),
            pins.dq_o.eq(cmd_wdata),
            pins.dq_oe.eq(cmd_write),
            pins.dqm.eq(Mux(self.init_done, 0, (1 << len(pins.dqm)) - 1)),
        ]
        # write bursts: beat 0 goes out with the WRITE, the others in the next BL-1 cycles
        bl = self.burst_length
        w_left = Signal(range(bl))
        w_rest = Signal(chip.dq_bits * max(bl - 1, 1))
        m.d.comb += cmd_write.eq(is_cmd("WRITE") | (w_left != 0))

        # ---- request decode (from a registered skid buffer: short paths into the FSM) ----
        req_valid = Signal()
        req = Signal.like(self.bus.req.payload)
        req_ready = Signal()               # comb: the FSM takes ``req`` this cycle
        skid_valid = Signal()
        skid = Signal.like(self.bus.req.payload)
        m.d.comb += self.bus.req.ready.eq(~skid_valid)
        with m.If(~req_valid | req_ready):
            with m.If(skid_valid):
                m.d.sync += [req.eq(skid), req_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [req.eq(self.bus.req.payload), req_valid.eq(self.bus.req.valid)]
        with m.Elif(self.bus.req.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.bus.req.payload), skid_valid.eq(1)]

        lb = bl.bit_length() - 1
        col = Cat(Const(0, lb), req.addr[:chip.col_bits - lb]) if lb else req.addr[:chip.col_bits]
        bank = req.addr[chip.col_bits - lb:chip.col_bits - lb + chip.bank_bits]
        row = req.addr[chip.col_bits - lb + chip.bank_bits:]
        with m.If(w_left != 0):
            m.d.comb += cmd_wdata.eq(w_rest[:chip.dq_bits])
        with m.Else():
            m.d.comb += cmd_wdata.eq(req.data[:chip.dq_bits])
        if bl > 1:
            with m.If(is_cmd("WRITE")):
                m.d.sync += [w_left.eq(bl - 1), w_rest.eq(req.data[chip.dq_bits:])]
            with m.Elif(w_left != 0):
                m.d.sync += [w_left.eq(w_left - 1), w_rest.eq(w_rest >> chip.dq_bits)]

        open_ = Signal(nbanks)
        rows = Array(Signal(chip.row_bits, name=f"row{i}") for i in range(nbanks))
        bank_open = open_.bit_select(bank, 1)
        row_hit = Signal()
        # row_eq[i]: "bank i's row register holds the request's row", registered, so the
        # request → row hit → command decision → timing counters path (the controller's critical
        # path) starts at a flip-flop.  It is compared when a request is loaded (rows never
        # change in that cycle: ACTIVE does not take a request) and set for the bank an ACTIVE
        # opens (with the request's own row, the request staying).
        row_eq = Array(Signal(name=f"row_eq{i}") for i in range(nbanks))
        loading = ~req_valid | req_ready
        nxt = Mux(skid_valid, skid.addr, self.bus.req.payload.addr)
        nxt_row = nxt[chip.col_bits - lb + chip.bank_bits:]
        for i in range(nbanks):
            with m.If(loading):
                m.d.sync += row_eq[i].eq(rows[i] == nxt_row)
            with m.Elif(is_cmd("ACTIVE") & (bank == i)):
                m.d.sync += row_eq[i].eq(1)
        m.d.comb += row_hit.eq(bank_open & row_eq[bank])

        # ---- timing counters ------------------------------------------------------------
        act_wait = [_Counter(m, max(t["RP"], t["RC"], t["RFC"]), f"act_wait{i}")
                    for i in range(nbanks)]
        rw_wait = [_Counter(m, t["RCD"], f"rw_wait{i}") for i in range(nbanks)]
        pre_wait = [_Counter(m, max(t["RAS"], t["WR"] + bl, bl), f"pre_wait{i}")
                    for i in range(nbanks)]
        rrd_wait = _Counter(m, t["RRD"], "rrd_wait")
        turn_wait = _Counter(m, self.cas_latency + bl + 1, "turn_wait")
        col_wait = _Counter(m, bl, "col_wait")
        seq_wait = _Counter(m, max(t["RP"], t["RFC"], t["MRD"], 2), "seq_wait")

        act_ok = Array(c.ready for c in act_wait)[bank]
        rw_ok = Array(c.ready for c in rw_wait)[bank]
        pre_ok = Array(c.ready for c in pre_wait)[bank]
        all_pre_ok = Cat(*(c.ready for c in pre_wait)).all()

        is_act, is_rd, is_wr = is_cmd("ACTIVE"), is_cmd("READ"), is_cmd("WRITE")
        is_pre, is_ref, is_lmr = is_cmd("PRECHARGE"), is_cmd("REFRESH"), is_cmd("LMR")
        # Single-bank commands are only issued in RUN, for the request's bank; PRECHARGE ALL
        # only by the init/refresh sequencer.
        pre_all = Signal()
        pre_one = Signal()
        m.d.comb += [pre_all.eq(is_pre & cmd_a[10]), pre_one.eq(is_pre & ~cmd_a[10])]
        assert t["RC"] <= t["RAS"] + t["RP"]   # so an ACTIVE's tRC never outlasts PRE's tRP
        for i in range(nbanks):
            this = bank == i
            act_wait[i].load(is_act & this, t["RC"])
            act_wait[i].load((pre_one & this) | pre_all, t["RP"])
            act_wait[i].load(is_ref, t["RFC"])
            rw_wait[i].load(is_act & this, t["RCD"])
            pre_wait[i].load(is_act & this, t["RAS"])
            # tWR counts from the last beat of the write burst
            pre_wait[i].load(is_wr & this, t["WR"] + bl - 1, keep_longer=True)
            # a PRECHARGE must not cut a read burst short
            pre_wait[i].load(is_rd & this, bl, keep_longer=True)
            with m.If(is_act & this):
                m.d.sync += [open_[i].eq(1), rows[i].eq(row)]
            with m.If((pre_one & this) | pre_all):
                m.d.sync += open_[i].eq(0)
        rrd_wait.load(is_act, t["RRD"])
        # a WRITE drives DQ; leave the read data of the last READ one idle cycle of turnaround
        turn_wait.load(is_rd, self.cas_latency + bl + 1)
        col_wait.load(is_rd | is_wr, bl)      # bursts are never interrupted
        seq_wait.load(is_pre & pre_all, t["RP"])
        seq_wait.load(is_ref, t["RFC"])
        seq_wait.load(is_lmr, t["MRD"])

        # ---- read data path -------------------------------------------------------------
        m.submodules.rfifo = rfifo = fifo.SyncFIFOBuffered(width=self.data_width,
                                                           depth=self.fifo_depth)
        dq_in = Signal(chip.dq_bits)
        m.d.sync += dq_in.eq(pins.dq_i)
        # one pipe bit per beat; the beat that lands last completes a word
        pipe = Signal(self._beat_latency)
        r_left = Signal(range(bl))
        beat_in = Signal()
        last_in = Signal()
        m.d.comb += [beat_in.eq(is_rd | (r_left != 0)),
                     last_in.eq(Mux(is_rd, bl == 1, r_left == 1))]
        if bl > 1:
            with m.If(is_rd):
                m.d.sync += r_left.eq(bl - 1)
            with m.Elif(r_left != 0):
                m.d.sync += r_left.eq(r_left - 1)
        lastpipe = Signal(self._beat_latency)
        m.d.sync += [pipe.eq(Cat(beat_in, pipe[:-1])), lastpipe.eq(Cat(last_in, lastpipe[:-1]))]
        rword = Signal(self.data_width)
        if bl > 1:
            with m.If(pipe[-1]):
                m.d.sync += rword.eq(Cat(rword[chip.dq_bits:], dq_in))
            landing = Signal()
            m.d.sync += landing.eq(pipe[-1] & lastpipe[-1])
        else:
            m.d.comb += rword.eq(dq_in)
            landing = pipe[-1]
        m.d.comb += [
            rfifo.w_en.eq(landing),
            rfifo.w_data.eq(rword),
            self.bus.resp.valid.eq(rfifo.r_rdy),
            self.bus.resp.payload.eq(rfifo.r_data),
            rfifo.r_en.eq(self.bus.resp.ready),
        ]
        # read credits: FIFO entries not yet promised to a READ in flight (a register, so the
        # FSM's decision needs no adder)
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        # both sums are ready before the FSM decides; the decision only selects one (keeps the
        # adder's carry chain off the request → decision path, the ULX3S SoC's critical path)
        taken = self.bus.resp.valid & self.bus.resp.ready
        credits_rd = Signal.like(credits)
        credits_no_rd = Signal.like(credits)
        m.d.comb += [credits_rd.eq(credits - 1 + taken), credits_no_rd.eq(credits + taken)]
        m.d.sync += credits.eq(Mux(is_rd, credits_rd, credits_no_rd))
        room = credits != 0

        refi = Signal(range(t["REFI"] + 1), init=t["REFI"])
        refresh_due = Signal()

        # ---- sequencer ------------------------------------------------------------------
        init_cnt = Signal(range(t["INIT"] + 1), init=t["INIT"])
        ref_left = Signal(range(self.init_refreshes + 1))

        with m.FSM(name="sdram"):
            with m.State("INIT_WAIT"):
                with m.If(init_cnt == 0):
                    m.next = "INIT_PRECHARGE"
                with m.Else():
                    m.d.sync += init_cnt.eq(init_cnt - 1)
            with m.State("INIT_PRECHARGE"):
                issue("PRECHARGE", a=1 << 10)
                m.d.sync += ref_left.eq(self.init_refreshes)
                m.next = "INIT_REFRESH"
            with m.State("INIT_REFRESH"):
                with m.If(seq_wait.ready):
                    with m.If(ref_left == 0):
                        m.next = "INIT_LMR"
                    with m.Else():
                        issue("REFRESH")
                        m.d.sync += ref_left.eq(ref_left - 1)
            with m.State("INIT_LMR"):
                with m.If(seq_wait.ready):
                    issue("LMR", ba=0, a=self.mode_register())
                    m.next = "INIT_MRD"
            with m.State("INIT_MRD"):
                with m.If(seq_wait.ready):
                    m.d.sync += self.init_done.eq(1)
                    m.next = "RUN"

            with m.State("RUN"):
                with m.If(refresh_due):
                    m.next = "REF_PRECHARGE"
                with m.Elif(req_valid):
                    with m.If(row_hit):
                        with m.If(req.write):
                            with m.If(rw_ok & turn_wait.ready & col_wait.ready):
                                issue("WRITE", ba=bank, a=col)
                                m.d.comb += req_ready.eq(1)
                        with m.Else():
                            with m.If(rw_ok & room & col_wait.ready):
                                issue("READ", ba=bank, a=col)
                                m.d.comb += req_ready.eq(1)
                    with m.Elif(bank_open):
                        with m.If(pre_ok):
                            issue("PRECHARGE", ba=bank, a=0)
                    with m.Else():
                        with m.If(act_ok & rrd_wait.ready):
                            issue("ACTIVE", ba=bank, a=row)

            with m.State("REF_PRECHARGE"):
                with m.If(all_pre_ok):
                    issue("PRECHARGE", a=1 << 10)
                    m.d.sync += refresh_due.eq(0)
                    m.next = "REF_REFRESH"
            with m.State("REF_REFRESH"):
                with m.If(seq_wait.ready):
                    issue("REFRESH")
                    m.next = "REF_WAIT"
            with m.State("REF_WAIT"):
                with m.If(seq_wait.ready):
                    m.next = "RUN"

        # ---- refresh timer --------------------------------------------------------------
        with m.If(self.init_done):
            with m.If(refi == 0):
                m.d.sync += [refi.eq(t["REFI"]), refresh_due.eq(1)]
            with m.Else():
                m.d.sync += refi.eq(refi - 1)
        with m.If(is_ref):
            m.d.sync += self.refresh_count.eq(self.refresh_count + 1)

        # tRAS max (120 µs) needs no watchdog: every refresh (each ≤ tREFI = 7.8 µs) closes all rows.

        return m
