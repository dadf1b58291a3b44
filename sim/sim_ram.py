"""The simulated SoC's memory for whole-network programs: a behavioural Verilog RAM behind the
memory port (``hw.memory.memport``), instead of an Amaranth ``Memory``.

A board's 32 MB as an Amaranth memory would take gigabytes of elaboration (every word becomes an
initial value); as plain Verilog it is one array that Verilator allocates.  It answers a read
one cycle after the request, like the block-RAM target, and opens the simulation back door: it
starts from the ``$readmemh`` image named by the plusarg ``+blockfuse_mem=FILE`` (32-bit words,
one hexadecimal word per line, from address 0), so large programs (VGG16's 15 MB of weights)
are in memory at time zero; inputs, START, STATUS and outputs still cross the protocol.
"""
from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.memory.memport import MemPortSignature

__all__ = ["SimRAM", "VERILOG", "PLUSARG"]

PLUSARG = "blockfuse_mem"

VERILOG = """
module blockfuse_sim_ram #(parameter DEPTH = 1024, parameter AW = 10, parameter DW = 32) (
  input clk, input rst,
  input req_valid, output req_ready, input [AW-1:0] req_addr, input req_write,
  input [DW-1:0] req_data,
  output reg resp_valid, output reg [DW-1:0] resp_data, input resp_ready
);
  reg [DW-1:0] mem [0:DEPTH-1];
  reg [8*256-1:0] image;
  initial begin
    resp_valid = 1'b0;
    if ($value$plusargs("%s=%%s", image)) $readmemh(image, mem);
  end
  assign req_ready = !resp_valid || resp_ready;
  always @(posedge clk) begin
    if (rst) resp_valid <= 1'b0;
    else begin
      if (resp_valid && resp_ready) resp_valid <= 1'b0;
      if (req_valid && req_ready) begin
        if (req_write) mem[req_addr] <= req_data;
        else begin
          resp_data <= mem[req_addr];
          resp_valid <= 1'b1;
        end
      end
    end
  end
endmodule
""" % PLUSARG


class SimRAM(wiring.Component):
    """``depth`` words of ``width`` bits behind ``bus`` (simulation only: add :data:`VERILOG`
    to the design's Verilog)."""

    def __init__(self, depth: int, width: int):
        self.depth, self.width = depth, width
        self.addr_width = max(1, (depth - 1).bit_length())
        super().__init__({"bus": In(MemPortSignature(self.addr_width, width))})

    def elaborate(self, platform):
        m = Module()
        req, resp = self.bus.req, self.bus.resp
        m.submodules.ram = Instance(
            "blockfuse_sim_ram", p_DEPTH=self.depth, p_AW=self.addr_width, p_DW=self.width,
            i_clk=ClockSignal(), i_rst=ResetSignal(),
            i_req_valid=req.valid, o_req_ready=req.ready, i_req_addr=req.payload.addr,
            i_req_write=req.payload.write, i_req_data=req.payload.data,
            o_resp_valid=resp.valid, o_resp_data=resp.payload, i_resp_ready=resp.ready)
        return m
