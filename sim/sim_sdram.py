"""The ULX3S's SDRAM inside the simulated SoC: the board's SDRAM controller driving a
timing-checking SDRAM chip model written in Verilog, so the whole-SoC simulation runs the real
memory system at Verilator speed (no Python per cycle).

:data:`VERILOG` is the chip (``blockfuse_sdram``): 4 banks × 2^ROW_BITS rows × 2^COL_BITS
columns of 16 bits, with storage and the rules of the Python model ``sim.sdram_model`` (the
reference its tests compare it with), evaluated in picoseconds from the clock period and the
fitted part's datasheet times, never from the controller's cycle counts:

* power-up: no command before ``INIT_PS``; PRECHARGE ALL, ≥ 2 AUTO REFRESH, LOAD MODE REGISTER
  before any ACTIVE/READ/WRITE; CKE high; mode register (burst 1/2/4/8, sequential, CL 2/3
  allowed at this clock);
* tMRD, tRFC (only NOP after LMR / AUTO REFRESH), tRP, tRC, tRRD, tRCD, tRAS, tRAS(max), tWR;
* column commands to an open row, no auto-precharge, bursts never interrupted or truncated,
  every write beat driven, one idle DQ cycle between read data and a WRITE, no DQ contention;
* refresh rate: at every edge at least ``floor(t / tREFI) - POSTPONE`` AUTO REFRESH since the
  end of initialisation.

A violation sets ``error`` to the rule's number (:data:`RULES` names them), prints the rule
with the cycle and, with ``FATAL`` set (the SoC), stops the simulation.  The array starts from
the back door's ``$readmemh`` image (plusarg ``+blockfuse_mem=FILE``, 16-bit words in the
controller's address order ``{row, bank, column}``: the byte image read as little-endian 16-bit
words, see :data:`BACKDOOR_WORD_BYTES`).

:class:`SimSDRAM` is the memory-port target the simulated SoC uses: the board's
:class:`hw.memory.sdram.SDRAMController` (built as the board top builds it, for the worst case of
the ULX3S's fitted parts, with its CAS latency and burst), one register stage on the way out
and ``read_latency - 1`` on the way back (the ECP5 pads' flip-flops and the PHY's capture delay
line, so reads take as many cycles as on the board), and the chip model configured from the
fitted part.
"""
from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature
from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMChip, SDRAMController
from sim.sdram_model import PINS
from sim.sim_ram import PLUSARG

__all__ = ["RULES", "VERILOG", "BACKDOOR_WORD_BYTES", "SimSDRAM", "model_parameters"]

#: the rules the chip model checks; ``error`` = index + 1
RULES = ("CKE", "DQ contention", "write burst", "power-up", "tMRD", "tRFC", "bank state", "tRP",
         "tRAS", "tWR", "read burst", "mode register", "CAS latency", "tRC", "tRRD", "tRCD",
         "auto precharge", "burst", "DQ turnaround", "command", "tRAS(max)", "refresh interval")

#: bytes per line of the back door's image for this memory
BACKDOOR_WORD_BYTES = 2

_R = {name: i + 1 for i, name in enumerate(RULES)}

_NAMES = "\n".join(f'      {code}: rule_name = "{name}";' for name, code in _R.items())

VERILOG = r"""
module blockfuse_sdram #(
  parameter BANK_BITS = 2, parameter ROW_BITS = 13, parameter COL_BITS = 9, parameter A_BITS = 13,
  parameter TCK_PS = 10000, parameter TCK_CL2_PS = 10000, parameter TCK_CL3_PS = 6000,
  parameter TRCD_PS = 18000, parameter TRP_PS = 18000, parameter TRAS_PS = 42000,
  parameter TRAS_MAX_PS = 120000000, parameter TRC_PS = 60000, parameter TRFC_PS = 60000,
  parameter TWR_PS = 12000, parameter TRRD_PS = 12000, parameter TMRD_CK = 2,
  parameter TMRD_PS = 0, parameter TREFI_PS = 7812500, parameter INIT_PS = 100000000,
  parameter POSTPONE = 8, parameter FATAL = 1
) (
  input clk, input cke, input cs_n, input ras_n, input cas_n, input we_n,
  input [BANK_BITS-1:0] ba, input [A_BITS-1:0] a,
  input [15:0] dq_o, input dq_oe, input [1:0] dqm,
  output reg [15:0] dq_i,
  output reg [7:0] error, output reg [31:0] reads, output reg [31:0] writes,
  output reg [31:0] refreshes
);
  localparam NB = 1 << BANK_BITS;
  localparam WORDS = 1 << (BANK_BITS + ROW_BITS + COL_BITS);
  localparam signed [63:0] NEG = -64'sd1000000000000;
  localparam DEPTH = 16;

  reg [15:0] mem [0:WORDS-1];
  reg [8*256-1:0] image;

  reg signed [63:0] cycle;
  reg signed [63:0] t_act [0:NB-1];
  reg signed [63:0] t_pre [0:NB-1];
  reg signed [63:0] t_wr [0:NB-1];
  reg signed [63:0] t_rd [0:NB-1];
  reg [ROW_BITS-1:0] row [0:NB-1];
  reg [NB-1:0] open_;
  reg signed [63:0] t_col, t_ref, t_lmr, t_read, t_ready;
  reg [1:0] phase;            // 0 power-up, 1 precharged, 2 refreshed, 3 ready
  integer init_refs, cl, bl, due;
  reg signed [63:0] next_due_ps;
  reg wb_active;
  reg [BANK_BITS-1:0] wb_bank;
  reg [ROW_BITS-1:0] wb_row;
  reg [COL_BITS-1:0] wb_base;
  integer wb_beat;
  reg [DEPTH-1:0] slot_v;
  reg [15:0] slot_d [0:DEPTH-1];
  reg [31:0] lfsr;
  integer i;


  function [8*24-1:0] rule_name(input integer code);
    case (code)
""" + _NAMES + r"""
      default: rule_name = "?";
    endcase
  endfunction

  task fail(input integer code);
    if (error == 0) begin
      error = code;
      $display("blockfuse_sdram: SDRAM rule broken at cycle %0d (%0d ns): %0s", cycle,
               cycle * TCK_PS / 1000, rule_name(code));
      if (FATAL != 0) $fatal(1, "SDRAM timing violation: %0s", rule_name(code));
    end
  endtask

  // at least t_ps since cycle ``since``
  function ok(input signed [63:0] since, input integer t_ps);
    ok = (cycle - since) * TCK_PS >= t_ps;
  endfunction

  function [BANK_BITS+ROW_BITS+COL_BITS-1:0] index(input [BANK_BITS-1:0] b,
                                                   input [ROW_BITS-1:0] r,
                                                   input [COL_BITS-1:0] c);
    index = {r, b, c};
  endfunction

  function [COL_BITS-1:0] burst_col(input [COL_BITS-1:0] base, input integer beat);
    burst_col = (base & ~(bl - 1)) | ((base + beat) & (bl - 1));
  endfunction

  task store(input [BANK_BITS-1:0] b, input [ROW_BITS-1:0] r, input [COL_BITS-1:0] base,
             input integer beat, input [15:0] d, input [1:0] m);
    reg [BANK_BITS+ROW_BITS+COL_BITS-1:0] k;
    begin
      k = index(b, r, burst_col(base, beat));
      if (!m[0]) mem[k][7:0] = d[7:0];
      if (!m[1]) mem[k][15:8] = d[15:8];
    end
  endtask

  task all_idle;
    for (i = 0; i < NB; i = i + 1) begin
      if (open_[i]) fail(7);
      if (!ok(t_pre[i], TRP_PS)) fail(8);
    end
  endtask

  task column;
    begin
      if (phase != 3) fail(4);
      if (!open_[ba]) fail(7);
      if (!ok(t_act[ba], TRCD_PS)) fail(16);
      if (a[10]) fail(17);
      if (cycle - t_col < bl || wb_active) fail(18);
      t_col = cycle;
    end
  endtask

  initial begin
    cycle = -1; open_ = 0; phase = 0; init_refs = 0; cl = 2; bl = 1; due = 0;
    t_col = NEG; t_ref = NEG; t_lmr = NEG; t_read = NEG; t_ready = NEG; next_due_ps = 0;
    wb_active = 0; wb_beat = 0; slot_v = 0; lfsr = 32'h1234_5678;
    error = 0; reads = 0; writes = 0; refreshes = 0;
    for (i = 0; i < NB; i = i + 1) begin
      t_act[i] = NEG; t_pre[i] = NEG; t_wr[i] = NEG; t_rd[i] = NEG; row[i] = 0;
    end
    for (i = 0; i < DEPTH; i = i + 1) slot_d[i] = 0;
    dq_i = 0;
    if ($value$plusargs("%%PLUSARG%%=%s", image)) $readmemh(image, mem);
  end

  always @(posedge clk) begin
    cycle = cycle + 1;
    lfsr = {lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]};
    if (!cke) fail(1);
    if (dq_oe && slot_v[0]) fail(2);
    for (i = 0; i < NB; i = i + 1)
      if (open_[i] && (cycle - t_act[i]) * TCK_PS > TRAS_MAX_PS) fail(21);
    if (phase == 3) begin
      if ((cycle - t_ready) * TCK_PS >= next_due_ps) begin
        due = due + 1;
        next_due_ps = next_due_ps + TREFI_PS;
      end
      if (refreshes + POSTPONE < due) fail(22);
    end
    // read data: slot k holds what the chip drives for edge cycle + 1 + k
    slot_v = slot_v >> 1;
    for (i = 0; i < DEPTH - 1; i = i + 1) slot_d[i] = slot_d[i + 1];
    if (wb_active) begin
      if (!dq_oe) fail(3);
      store(wb_bank, wb_row, wb_base, wb_beat, dq_o, dqm);
      t_wr[wb_bank] = cycle;
      wb_beat = wb_beat + 1;
      if (wb_beat == bl) wb_active = 0;
    end
    if (!cs_n && !(ras_n && cas_n && we_n)) begin
      if (cycle * TCK_PS < INIT_PS) fail(4);
      if (cycle - t_lmr < TMRD_CK) fail(5);
      if (!ok(t_lmr, TMRD_PS)) fail(5);
      if (!ok(t_ref, TRFC_PS)) fail(6);
      case ({ras_n, cas_n, we_n})
        3'b010: begin                                   // PRECHARGE
          if (phase == 0) begin
            if (!a[10]) fail(4);
            phase = 1;
          end
          for (i = 0; i < NB; i = i + 1)
            if (a[10] || ba == i) begin
              if (open_[i]) begin
                if (!ok(t_act[i], TRAS_PS)) fail(9);
                if (!ok(t_wr[i], TWR_PS)) fail(10);
                if (wb_active && wb_bank == i) fail(3);
                if (cycle - t_rd[i] < bl) fail(11);
              end
              open_[i] = 0;
              t_pre[i] = cycle;
            end
        end
        3'b001: begin                                   // AUTO REFRESH
          if (phase == 0) fail(4);
          all_idle;
          t_ref = cycle;
          if (phase == 3) refreshes = refreshes + 1;
          else begin
            init_refs = init_refs + 1;
            if (init_refs >= 2) phase = 2;
          end
        end
        3'b000: begin                                   // LOAD MODE REGISTER
          if (phase < 2) fail(4);
          all_idle;
          if (a[2:0] > 3 || a[3] || a[8:7] != 0 || a[9]) fail(12);
          if (a[6:4] != 2 && a[6:4] != 3) fail(12);
          else if (TCK_PS < (a[6:4] == 2 ? TCK_CL2_PS : TCK_CL3_PS)) fail(13);
          cl = a[6:4];
          bl = 1 << a[2:0];
          t_lmr = cycle;
          if (phase == 2) begin
            phase = 3;
            t_ready = cycle;
            next_due_ps = TREFI_PS;
          end
        end
        3'b011: begin                                   // ACTIVE
          if (phase != 3) fail(4);
          if (open_[ba]) fail(7);
          if (!ok(t_pre[ba], TRP_PS)) fail(8);
          if (!ok(t_act[ba], TRC_PS)) fail(14);
          for (i = 0; i < NB; i = i + 1)
            if (i != ba && !ok(t_act[i], TRRD_PS)) fail(15);
          open_[ba] = 1;
          row[ba] = a[ROW_BITS-1:0];
          t_act[ba] = cycle;
        end
        3'b101: begin                                   // READ
          column;
          for (i = 0; i < bl; i = i + 1) begin
            slot_d[cl + i - 1] = mem[index(ba, row[ba], burst_col(a[COL_BITS-1:0], i))];
            slot_v[cl + i - 1] = 1;
          end
          t_read = cycle;
          t_rd[ba] = cycle;
          reads = reads + 1;
        end
        3'b100: begin                                   // WRITE
          column;
          if (cycle - t_read < cl + bl + 1) fail(19);
          store(ba, row[ba], a[COL_BITS-1:0], 0, dq_o, dqm);
          t_wr[ba] = cycle;
          if (bl > 1) begin
            wb_active = 1; wb_bank = ba; wb_row = row[ba]; wb_base = a[COL_BITS-1:0];
            wb_beat = 1;
          end
          writes = writes + 1;
        end
        default: fail(20);                              // BURST TERMINATE
      endcase
    end
    // what the chip drives for the next edge; a non-blocking output, so that every register
    // sampling DQ at this edge still sees the value for this edge, whatever the order in which
    // the simulator runs the always blocks
    dq_i <= slot_v[0] ? slot_d[0] : lfsr[15:0];
  end
endmodule
""".replace("%%PLUSARG%%", PLUSARG)


def _ps(ns: float) -> int:
    return round(ns * 1000)


def model_parameters(chip: SDRAMChip, clk_freq: float, *, fatal: bool = True,
                     postpone: int = 8) -> dict:
    """``blockfuse_sdram``'s parameters for the fitted part ``chip`` at ``clk_freq``."""
    return dict(
        BANK_BITS=chip.bank_bits, ROW_BITS=chip.row_bits, COL_BITS=chip.col_bits,
        A_BITS=max(chip.row_bits, 11), TCK_PS=round(1e12 / clk_freq),
        TCK_CL2_PS=_ps(chip.tCK_cl2), TCK_CL3_PS=_ps(chip.tCK_cl3), TRCD_PS=_ps(chip.tRCD),
        TRP_PS=_ps(chip.tRP), TRAS_PS=_ps(chip.tRAS), TRAS_MAX_PS=_ps(chip.tRAS_max),
        TRC_PS=_ps(chip.tRC), TRFC_PS=_ps(chip.tRFC), TWR_PS=_ps(chip.tWR),
        TRRD_PS=_ps(chip.tRRD), TMRD_CK=chip.tMRD_ck, TMRD_PS=_ps(chip.tMRD),
        TREFI_PS=_ps(chip.tREFI), INIT_PS=_ps(chip.init_us * 1000), POSTPONE=postpone,
        FATAL=int(fatal))


class SimSDRAM(wiring.Component):
    """The board's SDRAM controller and the chip model, as one memory-port target (simulation
    only: add :data:`VERILOG` to the design's Verilog).

    ``controller_chip``: the timings the controller is built for (the board top's worst case of
    the fitted parts by default); ``chip``: the fitted part the model checks against.
    ``fatal``: stop the simulation at a violation (else only ``error`` is set).
    """

    def __init__(self, clk_freq: float, *, controller_chip: SDRAMChip | None = None,
                 chip: SDRAMChip = MT48LC16M16A2_6A, cas_latency: int | None = None,
                 burst_length: int = 2, read_latency: int = 3, fatal: bool = True):
        from hw.memory.sdram_parts import WORST_CASE
        from hw.memory.sdram_timing import plan
        controller_chip = controller_chip or WORST_CASE
        if cas_latency is None:
            cas_latency = plan(clk_freq, controller_chip).cas_latency
        self.clk_freq, self.chip, self.fatal = clk_freq, chip, fatal
        # one output register (the pads' flip-flops); the rest of the PHY's latency on the way in
        self.out_delay, self.in_delay = 1, read_latency - 1
        self.ctrl = SDRAMController(clk_freq, chip=controller_chip, cas_latency=cas_latency,
                                    extra_read_latency=read_latency,
                                    burst_length=burst_length)
        super().__init__({
            "bus": In(MemPortSignature(self.ctrl.addr_width, self.ctrl.data_width)),
            "init_done": Out(1),
            "error": Out(8),
            "reads": Out(32),
            "writes": Out(32),
            "refreshes": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctrl = ctrl = self.ctrl
        wiring.connect(m, wiring.flipped(self.bus), ctrl.bus)
        m.d.comb += self.init_done.eq(ctrl.init_done)
        pins = ctrl.pins
        out = {n: getattr(pins, n) for n in PINS}
        for k in range(self.out_delay):
            nxt = {}
            for n, s in out.items():
                r = Signal.like(s, name=f"pad_{n}_{k}")
                m.d.sync += r.eq(s)
                nxt[n] = r
            out = nxt
        dq = chip_dq = Signal(16, name="chip_dq")
        for k in range(self.in_delay):
            r = Signal(16, name=f"dq_in_{k}")
            m.d.sync += r.eq(dq)
            dq = r
        m.d.comb += pins.dq_i.eq(dq)
        params = {f"p_{k}": v for k, v in model_parameters(self.chip, self.clk_freq,
                                                           fatal=self.fatal).items()}
        m.submodules.chip = Instance(
            "blockfuse_sdram", **params,
            i_clk=ClockSignal(), i_cke=out["clk_en"], i_cs_n=out["cs_n"], i_ras_n=out["ras_n"],
            i_cas_n=out["cas_n"], i_we_n=out["we_n"], i_ba=out["ba"], i_a=out["a"],
            i_dq_o=out["dq_o"], i_dq_oe=out["dq_oe"], i_dqm=out["dqm"],
            o_dq_i=chip_dq, o_error=self.error, o_reads=self.reads,
            o_writes=self.writes, o_refreshes=self.refreshes)
        return m
