"""The activation buffer: on-chip block RAM in the controller's address space, where a fused
group keeps its intermediate blocks so that they never travel off chip.

The controller (its DMA and its vector unit) addresses one byte space.  Addresses from
:data:`hw.soc.isa.ACT_BASE` up are this buffer; all others are the SoC's memory port
(off-chip).  So every instruction that moves a map — LOAD, STORE, POOL — works unchanged on a
map the compiler placed in the buffer, without off-chip traffic.

:class:`ActivationBuffer` sits between the controller and the SoC's memory port:

* ``bus`` (the controller's side) carries word addresses of the whole byte space; the top bit
  selects the buffer;
* read responses come back in request order: a read to the other side waits until the reads
  in flight on this side have answered (the DMA's patterns stay on one side, so this costs
  a round trip only where a transfer changes side); writes never wait;
* ``offchip_read``/``offchip_write``/``onchip_read``/``onchip_write`` pulse once per word taken
  on each side, for the controller's traffic counters.

With ``wide`` > 1 the buffer is built as ``wide`` banks of ``bus``-word width side by side, and
a second port reaches a whole row of them at once: a map word of the engine (16 bytes on the
ulx3s-85f) in one cycle, where ``bus`` takes four.  The DMA moves maps between the buffer and
the engine's memories through it (``wide_addr`` a row, ``wide_re`` reads it — ``wide_rdata``
holds it two cycles later, :attr:`ActivationBuffer.WIDE_LATENCY` — ``wide_we`` writes
``wide_wdata``).  ``bus`` word ``a`` is bank ``a mod wide`` of row ``a // wide``, so both
ports see the same bytes.  The controller uses one port at a time (an instruction's transfer
finishes before the next begins).
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature

__all__ = ["ActivationBuffer"]


class ActivationBuffer(wiring.Component):
    """``depth`` words of ``width`` bits on chip in front of a memory port of
    ``mem_addr_width``-bit word addresses; ``bus`` has ``addr_width``-bit word addresses whose
    top bit selects the buffer; ``wide``: words per row of the wide port (1: none)."""

    #: cycles from ``wide_re`` to its row on ``wide_rdata`` (the banks' read data is registered)
    WIDE_LATENCY = 2

    def __init__(self, depth: int, addr_width: int, mem_addr_width: int, width: int,
                 wide: int = 1):
        if mem_addr_width >= addr_width:
            raise ValueError("the controller's addresses must be wider than the memory's")
        if wide < 1 or wide & (wide - 1) or depth % wide:
            raise ValueError(f"{wide} words per wide row do not divide {depth} words in banks")
        self.depth, self.width, self.wide = depth, width, wide
        self.rows = depth // wide
        self.addr_width, self.mem_addr_width = addr_width, mem_addr_width
        ports = {
            "bus": In(MemPortSignature(addr_width, width)),
            "mem": Out(MemPortSignature(mem_addr_width, width)),
            "offchip_read": Out(1), "offchip_write": Out(1),
            "onchip_read": Out(1), "onchip_write": Out(1),
        }
        if wide > 1:
            ports |= {"wide_addr": In(range(self.rows)), "wide_re": In(1), "wide_we": In(1),
                      "wide_wdata": In(width * wide), "wide_rdata": Out(width * wide)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        W, n = self.width, self.wide
        req, resp = self.bus.req, self.bus.resp
        on = req.payload.addr[-1]
        lane_bits = (n - 1).bit_length()
        lane = req.payload.addr[:lane_bits] if lane_bits else 0
        row = req.payload.addr[lane_bits:lane_bits + max(1, (self.rows - 1).bit_length())]

        # reads in flight, and on which side
        pending = Signal(range(64))
        pending_on = Signal()
        # writes have no response to keep in order: they never wait
        free = (pending == 0) | (pending_on == on) | req.payload.write

        # the buffer's side of ``bus``: each bank's read data is registered beside it (the
        # banks' block RAMs spread over the die; on the placed 85F SoC their data reached the
        # response register unregistered), and a read answers three cycles later from a small
        # FIFO; a read is issued only when the FIFO will have room for it, so ``ready`` never
        # waits combinationally on the controller
        m.submodules.resp_fifo = fifo = SyncFIFO(width=W, depth=4)
        in_flight = Signal(range(3))                   # reads issued, not yet in the FIFO
        wide_busy = Signal()                           # the wide port has the banks
        if n > 1:
            m.d.comb += wide_busy.eq(self.wide_re | self.wide_we)
        buf_ready = (fifo.level + in_flight < fifo.depth) & ~wide_busy
        buf_take = req.valid & on & buf_ready & free
        buf_read = buf_take & ~req.payload.write
        # a narrow read's data: at the bank (v1), registered beside it (v2)
        v1, v2 = Signal(), Signal()
        lane1, lane2 = Signal(range(n)), Signal(range(n))
        m.d.sync += [v1.eq(buf_read), v2.eq(v1), lane1.eq(lane), lane2.eq(lane1),
                     in_flight.eq(in_flight + buf_read - v2)]
        rdata = []
        for b in range(n):
            mem = Memory(shape=W, depth=self.rows, init=[])
            m.submodules[f"bank{b}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            mine = lane == b if n > 1 else 1
            m.d.comb += [rd.addr.eq(row), wr.addr.eq(row), wr.data.eq(req.payload.data),
                         rd.en.eq(buf_read),
                         wr.en.eq(buf_take & req.payload.write & mine)]
            q = Signal(W, name=f"bank{b}_q")
            m.d.sync += q.eq(rd.data)
            if n > 1:
                with m.If(self.wide_re | self.wide_we):
                    m.d.comb += [rd.addr.eq(self.wide_addr), wr.addr.eq(self.wide_addr),
                                 wr.data.eq(self.wide_wdata[b * W:(b + 1) * W]),
                                 rd.en.eq(self.wide_re), wr.en.eq(self.wide_we)]
                m.d.comb += self.wide_rdata[b * W:(b + 1) * W].eq(q)
            rdata.append(q)
        m.d.comb += fifo.w_en.eq(v2)
        with m.Switch(lane2):
            for b in range(n):
                with m.Case(b):
                    m.d.comb += fifo.w_data.eq(rdata[b])

        m.d.comb += [self.mem.req.payload.addr.eq(req.payload.addr),
                     self.mem.req.payload.write.eq(req.payload.write),
                     self.mem.req.payload.data.eq(req.payload.data),
                     self.mem.req.valid.eq(req.valid & ~on & free),
                     self.mem.resp.ready.eq(resp.ready), fifo.r_en.eq(resp.ready)]
        m.d.comb += req.ready.eq(free & ((on & buf_ready) | (~on & self.mem.req.ready)))
        # only the side with reads in flight can answer
        with m.If(fifo.r_rdy):
            m.d.comb += [resp.valid.eq(1), resp.payload.eq(fifo.r_data)]
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
