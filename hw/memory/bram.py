"""Block-RAM memory target on the memory port (``hw/memory/memport.py``).

One ``amaranth.lib.memory.Memory`` of ``depth`` words of ``data_width`` bits behind a
``MemPortSignature(addr_width, data_width).flip()``.  A request is taken on any cycle where the
one-entry read register is free or being emptied, so reads stream at one per cycle when the
initiator keeps ``resp.ready`` high; writes never produce a response.  Responses leave through a
register stage (:class:`hw.stream_slice.StreamSlice`), so ``req.ready`` does not depend
combinationally on the initiator's ``resp.ready`` (read latency 2 cycles).  Addresses at or beyond
``depth`` wrap (the command processor refuses them before they get here).
"""
from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

from hw.stream_slice import StreamSlice
from hw.memory.memport import MemPortSignature


class BRAMTarget(wiring.Component):
    def __init__(self, depth: int, data_width: int, init=()):
        self.depth = depth
        self.data_width = data_width
        self.addr_width = max(1, ceil_log2(depth))
        self._init = list(init)
        super().__init__({"bus": In(MemPortSignature(self.addr_width, data_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = self.mem = mem = Memory(shape=self.data_width, depth=self.depth,
                                                   init=self._init)
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,))
        req = self.bus.req
        m.submodules.resp_pipe = pipe = StreamSlice(self.data_width)
        wiring.connect(m, pipe.o, wiring.flipped(self.bus.resp))
        resp = pipe.i

        m.d.comb += req.ready.eq(~resp.valid | resp.ready)
        take = req.valid & req.ready
        m.d.comb += [
            wr.addr.eq(req.payload.addr),
            wr.data.eq(req.payload.data),
            wr.en.eq(take & req.payload.write),
            rd.addr.eq(req.payload.addr),
            rd.en.eq(take & ~req.payload.write),
            resp.payload.eq(rd.data),
        ]
        with m.If(take & ~req.payload.write):
            m.d.sync += resp.valid.eq(1)
        with m.Elif(resp.ready):
            m.d.sync += resp.valid.eq(0)
        return m
