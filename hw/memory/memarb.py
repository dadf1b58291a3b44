"""Memory-port arbiter: several initiators share one memory-port target.

:class:`MemPortArbiter` has ``n`` target-side ports ``bus0 … bus{n-1}`` (initiators connect
there) and one initiator-side port ``out`` (to the memory).  Requests are granted with fixed
priority (``bus0`` first); a grant is held until that request is transferred, so the target sees
a stable request as the stream rules require.  For every read passed on, the initiator's index
goes into a FIFO; responses are routed back in order from its head.  At most ``max_reads`` reads
may be outstanding (requests wait when the FIFO is full).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.memory.fifo import BufferedFIFO
from hw.memory.memport import MemPortSignature

__all__ = ["MemPortArbiter"]


class MemPortArbiter(wiring.Component):
    def __init__(self, n: int, addr_width: int, data_width: int, *, max_reads: int = 16):
        self.n = n
        self.max_reads = max_reads
        sig = MemPortSignature(addr_width, data_width)
        members = {f"bus{i}": In(sig) for i in range(n)}
        members["out"] = Out(sig)
        super().__init__(members)

    def bus(self, i):
        return getattr(self, f"bus{i}")

    def elaborate(self, platform):
        m = Module()
        n = self.n
        buses = [self.bus(i) for i in range(n)]
        m.submodules.ids = ids = BufferedFIFO(width=max(1, (n - 1).bit_length()),
                                                       depth=self.max_reads)

        held = Signal()
        owner = Signal(range(max(n, 2)))
        grant = Signal.like(owner)
        # fixed priority unless a grant is held
        with m.If(held):
            m.d.comb += grant.eq(owner)
        with m.Else():
            for i in reversed(range(n)):
                with m.If(buses[i].req.valid):
                    m.d.comb += grant.eq(i)

        out = self.out
        with m.Switch(grant):
            for i in range(n):
                with m.Case(i):
                    is_read = ~buses[i].req.payload.write
                    m.d.comb += [
                        out.req.valid.eq(buses[i].req.valid & (ids.w_rdy | ~is_read)),
                        out.req.payload.eq(buses[i].req.payload),
                        buses[i].req.ready.eq(out.req.ready & (ids.w_rdy | ~is_read)),
                    ]
        transfer = out.req.valid & out.req.ready
        m.d.comb += [
            ids.w_en.eq(transfer & ~out.req.payload.write),
            ids.w_data.eq(grant),
        ]
        with m.If(out.req.valid & ~out.req.ready):
            m.d.sync += [held.eq(1), owner.eq(grant)]
        with m.Elif(transfer):
            m.d.sync += held.eq(0)

        # responses, in request order
        with m.Switch(ids.r_data):
            for i in range(n):
                with m.Case(i):
                    m.d.comb += [
                        buses[i].resp.valid.eq(out.resp.valid & ids.r_rdy),
                        buses[i].resp.payload.eq(out.resp.payload),
                        out.resp.ready.eq(buses[i].resp.ready & ids.r_rdy),
                    ]
        m.d.comb += ids.r_en.eq(out.resp.valid & out.resp.ready)
        return m
