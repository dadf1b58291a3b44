"""Fixed-priority arbiter sharing one memory port (``hw/memport.py``) among several initiators.

Initiator ``i0`` has the highest priority.  A grant is held while the request it let through
waits for ``ready``, so the shared request stream keeps the valid/ready rule (payload unchanged
until taken).  Read responses come back in request order on the shared port; a small FIFO
remembers which initiator issued each outstanding read and routes each response to it.
"""
from amaranth.hdl import *
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .memport import MemPortSignature


class MemPortArbiter(wiring.Component):
    """``n`` target-side ports ``i0 … i{n-1}`` (connect initiators there), one initiator ``o``.

    ``max_reads``: reads in flight on ``o`` at most (depth of the routing FIFO).
    """

    def __init__(self, n: int, addr_width: int, data_width: int, max_reads: int = 4):
        if n < 1:
            raise ValueError("need at least one initiator")
        self.n = n
        self.max_reads = max_reads
        sig = MemPortSignature(addr_width, data_width)
        super().__init__({**{f"i{k}": In(sig) for k in range(n)}, "o": Out(sig)})

    def port(self, k):
        return getattr(self, f"i{k}")

    def elaborate(self, platform):
        m = Module()
        n = self.n
        ports = [self.port(k) for k in range(n)]
        o = self.o
        idw = max(1, ceil_log2(n))
        m.submodules.order = order = fifo.SyncFIFO(width=idw, depth=self.max_reads)

        held = Signal()            # a request was offered on `o` and not yet taken
        held_id = Signal(idw)
        grant = Signal(idw)
        any_valid = Signal()
        with m.If(held):
            m.d.comb += grant.eq(held_id)
        with m.Else():
            for k in reversed(range(n)):       # lowest index wins
                with m.If(ports[k].req.valid):
                    m.d.comb += grant.eq(k)
        m.d.comb += any_valid.eq(Cat(p.req.valid for p in ports).any())

        sel = Array(p.req for p in ports)[grant]
        m.d.comb += [
            o.req.payload.eq(sel.payload),
            o.req.valid.eq(sel.valid & order.w_rdy),
        ]
        for k, p in enumerate(ports):
            m.d.comb += p.req.ready.eq((grant == k) & o.req.ready & order.w_rdy)
        took = o.req.valid & o.req.ready
        m.d.comb += [order.w_data.eq(grant), order.w_en.eq(took & ~o.req.payload.write)]
        with m.If(o.req.valid & ~o.req.ready):
            m.d.sync += [held.eq(1), held_id.eq(grant)]
        with m.Else():
            m.d.sync += held.eq(0)

        # responses, in order, to whoever asked
        for k, p in enumerate(ports):
            m.d.comb += [p.resp.payload.eq(o.resp.payload),
                         p.resp.valid.eq(o.resp.valid & order.r_rdy & (order.r_data == k))]
        m.d.comb += o.resp.ready.eq(order.r_rdy & Array(p.resp.ready for p in ports)[order.r_data])
        m.d.comb += order.r_en.eq(o.resp.valid & o.resp.ready)
        return m
