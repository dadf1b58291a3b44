"""A bank of 32-bit event counters kept in one block RAM and read one at a time.

Counters in flip-flops cost a logic cell per bit, and reading ``n`` of them back through one
32-bit port costs a multiplexer of about ``n`` LUT4s per bit on the iCE40, which has no wide
multiplexer cells (on the UP5K the command processor's STATUS words cost ~24 LUT4s each).
Here the counts live in a block RAM as 16-bit halves (low half at ``2c``, high half at
``2c + 1``).  A sweep visits one half per cycle: a low half gets what its counter's small
*pending* register gathered since the last visit, the high half the carry out of that sum on
the next cycle.  Every counter is brought up to date every ``2n`` cycles, so a pending register
needs only the bits of ``2n + 1`` cycles of increments.

* ``inc[c]``: counter ``c``'s increment this cycle (``inc_bits`` wide);
* ``clear[c]``: counter ``c`` restarts from zero; this cycle's increment is dropped, as with a
  register reset in the same cycle;
* ``req`` (a stream of counter indices): a read waits for the sweep's next visit of the
  counter (at most ``2n + 2`` cycles) and answers with the count of the increments of every
  cycle before that visit as it is written back: ``rd_data`` holds its low half while
  ``rd_lo`` is high, its high half on the next cycle, while ``rd_hi`` is.  The reader takes
  them as they come (they are not held: no 32-bit register here), one read at a time.

:class:`CounterBankModel` is the reference the tests run beside it.
"""
from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.memory.read_reg_ram import NO_RW_CHECK

__all__ = ["CounterBank", "CounterBankModel"]


class CounterBank(wiring.Component):
    """``n`` 32-bit counters with increments of up to ``inc_bits`` bits per cycle."""

    def __init__(self, n: int, inc_bits: int = 1):
        if n < 1 or inc_bits < 1:
            raise ValueError("a counter bank has at least one counter of 1-bit increments")
        self.n, self.inc_bits = n, inc_bits
        #: cycles between two visits of a counter's low half
        self.period = 2 * n
        #: width of a pending register: increments of up to ``period + 1`` cycles
        self.pend_bits = ((2 ** inc_bits - 1) * (self.period + 1)).bit_length()
        #: the counts, as 16-bit halves (power-up zero); read and write never meet: the sweep
        #: writes the half it read a cycle before
        self.mem = Memory(shape=16, depth=self.period, init=[], attrs={NO_RW_CHECK: 1})
        super().__init__({
            "inc": In(data.ArrayLayout(inc_bits, n)),
            "clear": In(n),
            "req": In(stream.Signature(range(n))),
            "rd_data": Out(16),
            "rd_lo": Out(1),
            "rd_hi": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, E = self.n, self.period
        m.submodules.mem = mem = self.mem
        rd = mem.read_port(transparent_for=())
        wr = mem.write_port()

        ptr = Signal(range(E))                      # the half read this cycle
        cidx = ptr >> 1
        lo = ~ptr[0]
        m.d.sync += ptr.eq(Mux(ptr == E - 1, 0, ptr + 1))
        m.d.comb += rd.addr.eq(ptr)

        pend = Array(Signal(self.pend_bits, name=f"pend_{c}") for c in range(n))
        for c in range(n):
            take = lo & (cidx == c)
            with m.If(self.clear[c]):
                m.d.sync += pend[c].eq(0)
            with m.Elif(take):
                m.d.sync += pend[c].eq(self.inc[c])
            with m.Else():
                m.d.sync += pend[c].eq(pend[c] + self.inc[c])

        # a cleared counter is stale until the sweep's next visit of its low half, which
        # starts from zero instead of the stored count, and so does the high half after it
        # (a visit already under way when the clear came is simply done again a sweep later)
        stale = Signal(n)
        for c in range(n):
            with m.If(self.clear[c]):
                m.d.sync += stale[c].eq(1)
            with m.Elif(lo & (cidx == c)):
                m.d.sync += stale[c].eq(0)

        # the half read last cycle: its address, kind, addend and whether it starts from zero
        r_ptr = Signal(range(E))
        r_lo, r_zero = Signal(), Signal()
        r_add = Signal(self.pend_bits)
        m.d.sync += [r_ptr.eq(ptr), r_lo.eq(lo), r_add.eq(pend[cidx]),
                     r_zero.eq(Mux(lo, Array(stale)[cidx], r_zero))]
        carry = Signal()
        total = Signal(17)
        m.d.comb += [total.eq(Mux(r_zero, 0, rd.data) + Mux(r_lo, r_add, carry)),
                     wr.addr.eq(r_ptr), wr.data.eq(total[:16]), wr.en.eq(1)]
        m.d.sync += carry.eq(total[16])

        # reads: the halves written at the counter's next visit, as they are written
        want, got_lo = Signal(), Signal()
        widx = Signal(range(n))
        m.d.comb += [self.req.ready.eq(~want), self.rd_data.eq(total[:16])]
        with m.If(self.req.valid & self.req.ready):
            m.d.sync += [want.eq(1), widx.eq(self.req.payload)]
        with m.If(want & r_lo & ((r_ptr >> 1) == widx)):
            m.d.comb += self.rd_lo.eq(1)
            m.d.sync += got_lo.eq(1)
        with m.Elif(got_lo):
            m.d.comb += self.rd_hi.eq(1)
            m.d.sync += [got_lo.eq(0), want.eq(0)]
        return m


class CounterBankModel:
    """Cycle-level reference of :class:`CounterBank`'s counts: ``step(inc, clear)`` once per
    cycle; ``history[t][c]`` is counter ``c``'s count before cycle ``t``'s increments, what a
    read whose visit falls on cycle ``t`` returns."""

    def __init__(self, n: int, counts=None):
        self.counts = list(counts or [0] * n)
        self.history = []

    def step(self, inc, clear):
        self.history.append(list(self.counts))
        for c, (i, z) in enumerate(zip(inc, clear)):
            self.counts[c] = 0 if z else (self.counts[c] + i) & 0xFFFF_FFFF
