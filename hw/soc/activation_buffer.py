"""The activation buffer: on-chip block RAM in the controller's address space, where a fused
group keeps its intermediate blocks so that they never travel off chip.

The controller (its DMA and its vector unit) addresses one byte space.  Addresses from
:data:`hw.soc.isa.ACT_BASE` up are this buffer; all others are the SoC's memory port
(off-chip).  So every instruction that moves a map — LOAD, STORE, POOL — works unchanged on a
map the compiler placed in the buffer, at block-RAM speed (a word per cycle) and without
off-chip traffic.

:class:`ActivationBuffer` sits between the controller and the SoC's memory port:

* ``bus`` (the controller's side) carries word addresses of the whole byte space; the top bit
  selects the buffer;
* read responses come back in request order: a read to the other side waits until the reads
  in flight on this side have answered (the DMA's patterns stay on one side, so this costs
  a round trip only where a transfer changes side); writes never wait;
* ``offchip_read``/``offchip_write``/``onchip_read``/``onchip_write`` pulse once per word taken
  on each side, for the controller's traffic counters.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.memory.bram import BRAMTarget
from hw.memory.memport import MemPortSignature

__all__ = ["ActivationBuffer"]


class ActivationBuffer(wiring.Component):
    """``depth`` words of ``width`` bits on chip in front of a memory port of
    ``mem_addr_width``-bit word addresses; ``bus`` has ``addr_width``-bit word addresses whose
    top bit selects the buffer."""

    def __init__(self, depth: int, addr_width: int, mem_addr_width: int, width: int):
        if mem_addr_width >= addr_width:
            raise ValueError("the controller's addresses must be wider than the memory's")
        self.depth, self.width = depth, width
        self.addr_width, self.mem_addr_width = addr_width, mem_addr_width
        super().__init__({
            "bus": In(MemPortSignature(addr_width, width)),
            "mem": Out(MemPortSignature(mem_addr_width, width)),
            "offchip_read": Out(1), "offchip_write": Out(1),
            "onchip_read": Out(1), "onchip_write": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = BRAMTarget(self.depth, self.width)
        req, resp = self.bus.req, self.bus.resp
        on = req.payload.addr[-1]
        # reads in flight, and on which side
        pending = Signal(range(64))
        pending_on = Signal()
        # writes have no response to keep in order: they never wait
        free = (pending == 0) | (pending_on == on) | req.payload.write
        sides = ((ram.bus, on), (self.mem, ~on))
        for port, sel in sides:
            m.d.comb += [port.req.payload.addr.eq(req.payload.addr),
                         port.req.payload.write.eq(req.payload.write),
                         port.req.payload.data.eq(req.payload.data),
                         port.req.valid.eq(req.valid & sel & free),
                         port.resp.ready.eq(resp.ready)]
        m.d.comb += req.ready.eq(free & ((on & ram.bus.req.ready) | (~on & self.mem.req.ready)))
        # only the side with reads in flight can answer
        with m.If(ram.bus.resp.valid):
            m.d.comb += [resp.valid.eq(1), resp.payload.eq(ram.bus.resp.payload)]
        with m.Else():
            m.d.comb += [resp.valid.eq(self.mem.resp.valid),
                         resp.payload.eq(self.mem.resp.payload)]
        take = req.valid & req.ready
        read = take & ~req.payload.write
        m.d.sync += pending.eq(pending + read - (resp.valid & resp.ready))
        with m.If(read):
            m.d.sync += pending_on.eq(on)
        m.d.comb += [self.onchip_read.eq(read & on), self.offchip_read.eq(read & ~on),
                     self.onchip_write.eq(take & req.payload.write & on),
                     self.offchip_write.eq(take & req.payload.write & ~on)]
        return m
