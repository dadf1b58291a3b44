"""Power-up memory self-test: a memory-port *initiator* that writes a pattern and reads it back.

:class:`MemTest` writes ``pattern(addr, pass)`` to ``words`` consecutive words from address 0,
reads them back (reads are pipelined: requests run ahead of the responses), counts mismatching
words and then stops with ``done`` high (``passes`` and ``errors`` stay for status LEDs and the
link's status registers).  With ``repeat=True`` it loops forever with a new pattern each pass
(a soak test).

The pattern mixes the address with a per-pass seed (xor/rotate only, no multipliers) so address
aliasing, stuck data bits and stale read data all show up as errors.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from hw.memory.memport import MemPortSignature

__all__ = ["MemTest", "memtest_pattern"]


def memtest_pattern(addr: int, seed: int, width: int) -> int:
    """Python twin of the pattern the gateware writes."""
    mask = (1 << width) - 1
    a = addr & mask
    hi = (addr >> width) & mask
    rot = ((a << 5) | (a >> (width - 5))) & mask
    return (a ^ rot ^ hi ^ seed) & mask


class MemTest(wiring.Component):
    """Write-then-verify traffic generator on a memory port.

    Ports: ``bus: Out(MemPortSignature(addr_width, data_width))``, ``done``, ``busy``,
    ``passes`` (completed passes), ``errors`` (mismatching words, saturating).
    """

    def __init__(self, addr_width: int, data_width: int, words: int, *, repeat: bool = False):
        assert words <= 1 << addr_width and data_width >= 8
        self.addr_width = addr_width
        self.data_width = data_width
        self.words = words
        self.repeat = repeat
        super().__init__({
            "bus": Out(MemPortSignature(addr_width, data_width)),
            "start": wiring.In(1, init=1),
            "done": Out(1),
            "busy": Out(1),
            "passes": Out(16),
            "errors": Out(16),
        })

    def _pattern(self, m, addr, seed):
        w = self.data_width
        a = Signal(w)
        hi = Signal(w)
        m.d.comb += [a.eq(addr[:w]), hi.eq(addr[w:])]
        out = Signal(w)
        m.d.comb += out.eq(a ^ Cat(a[w - 5:], a[:w - 5]) ^ hi ^ seed)
        return out

    def elaborate(self, platform):
        m = Module()
        req, resp = self.bus.req, self.bus.resp
        last = self.words - 1
        seed = Signal(self.data_width, init=0x5A5A & ((1 << self.data_width) - 1))
        req_addr = Signal(self.addr_width + 1)
        chk_addr = Signal(self.addr_width + 1)

        m.d.comb += [
            req.payload.addr.eq(req_addr),
            req.payload.data.eq(self._pattern(m, req_addr, seed)),
        ]
        expected = self._pattern(m, chk_addr, seed)

        # compare one cycle after the response (keeps the memory's output path short)
        got_q = Signal(self.data_width)
        exp_q = Signal(self.data_width)
        chk_q = Signal()
        m.d.sync += [got_q.eq(resp.payload), exp_q.eq(expected),
                     chk_q.eq(resp.valid & resp.ready)]
        miss_q = Signal()
        m.d.sync += miss_q.eq(chk_q & (got_q != exp_q))
        with m.If(miss_q & ~self.errors.all()):
            m.d.sync += self.errors.eq(self.errors + 1)

        # responses only exist in READ: always ready (no FSM logic on the ready path)
        m.d.comb += resp.ready.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [req_addr.eq(0), chk_addr.eq(0)]
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [self.busy.eq(1), req.valid.eq(1), req.payload.write.eq(1)]
                with m.If(req.ready):
                    m.d.sync += req_addr.eq(req_addr + 1)
                    with m.If(req_addr == last):
                        m.d.sync += req_addr.eq(0)
                        m.next = "READ"
            with m.State("READ"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += req.valid.eq(req_addr <= last)
                with m.If(req.valid & req.ready):
                    m.d.sync += req_addr.eq(req_addr + 1)
                with m.If(resp.valid):
                    m.d.sync += chk_addr.eq(chk_addr + 1)
                    with m.If(chk_addr == last):
                        m.d.sync += [
                            self.passes.eq(self.passes + 1),
                            seed.eq(Cat(seed[1:], seed[0] ^ seed[3])),
                        ]
                        m.next = "IDLE" if self.repeat else "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(~chk_q & ~miss_q)
        return m
