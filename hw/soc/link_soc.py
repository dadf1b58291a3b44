"""The host-link SoC: UART + COBS framing + command processor + block RAM, with an engine port.

Layers (each a small component with stream interfaces)::

    rx pin → UARTRx → RX FIFO → COBSDecoder → CommandProcessor → CRCAppender → COBSEncoder
           → TX FIFO → UARTTx → tx pin
                                   CommandProcessor.mem ──► memory (BRAMTarget here)
                                   CommandProcessor.engine ◄─► engine (EngineStub until the
                                                                       real engine plugs in)

* :class:`LinkCore`: everything between the two byte streams (no UART), reusable by board tops.
* :class:`LinkSoC`: the link with its UART, FIFOs, the block-RAM memory and an engine.  Parameters:
  clock, baud divisor, memory size, word size, max payload.  ``engine`` is any component with an
  ``ctrl`` member of ``EngineControlSignature(n).flip()``; it defaults to :class:`EngineStub`.
  An engine that also has a ``mem`` member (a ``MemPortSignature`` initiator) shares the memory
  with the command processor through a :class:`hw.memory.memarb.MemPortArbiter` (link first).
* :class:`SimLinkTop` (simulation only): a ``LinkSoC`` plus a *host-side* UART pair joined to its
  pins, so that a cocotb bench exchanges plain bytes with the host side while every byte still
  crosses the SoC's real UART at the line level.
"""
from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect
from amaranth.utils import ceil_log2

from host.runtime.protocol import DeviceInfo

from hw.memory.bram import BRAMTarget
from hw.memory.fifo import BufferedFIFO
from hw.link.command import CommandProcessor, EngineControlSignature, perf_inc_bits
from hw.link.framing import COBSDecoder, COBSEncoder, CRCAppender
from hw.memory.memarb import MemPortArbiter
from hw.memory.memport import MemPortSignature
from hw.link.uart import UARTRx, UARTTx


class StreamFIFO(wiring.Component):
    """A buffered FIFO (:class:`hw.memory.fifo.BufferedFIFO`) with stream ports; ``empty`` when it
    holds nothing."""

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width)),
                          "empty": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = BufferedFIFO(width=self.width, depth=self.depth)
        m.d.comb += [
            f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid), self.i.ready.eq(f.w_rdy),
            self.o.payload.eq(f.r_data), self.o.valid.eq(f.r_rdy), f.r_en.eq(self.o.ready),
            self.empty.eq(f.level == 0),
        ]
        return m


class LinkCore(wiring.Component):
    """Wire bytes in (``rx``), wire bytes out (``tx``); memory and engine ports to the SoC."""

    def __init__(self, info: DeviceInfo, addr_width: int | None = None,
                 perf_inc_bits: int = 1):
        self.info = info
        self.cp = CommandProcessor(info, addr_width, perf_inc_bits)
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "mem": Out(self.cp.mem.signature),
            "engine": Out(self.cp.engine.signature),
            "rx_error": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec = dec = COBSDecoder()
        m.submodules.cp = cp = self.cp
        m.submodules.crc = crc = CRCAppender()
        m.submodules.enc = enc = COBSEncoder()
        connect(m, wiring.flipped(self.rx), dec.i)
        connect(m, dec.o, cp.rx)
        connect(m, cp.tx, crc.i)
        connect(m, crc.o, enc.i)
        connect(m, enc.o, wiring.flipped(self.tx))
        connect(m, cp.mem, wiring.flipped(self.mem))
        connect(m, cp.engine, wiring.flipped(self.engine))
        m.d.comb += [cp.rx_error.eq(self.rx_error),
                     self.idle.eq(dec.idle & cp.idle & enc.idle & ~crc.o.valid)]
        return m


class EngineStub(wiring.Component):
    """Stand-in for the compute engine, to exercise the engine port end to end.

    START with program address ``a``:

    * bit 30 clear: busy for ``(a & 0xFFFF) + 1`` cycles, then ``done``;
    * bit 30 set and a memory port present (``mem_addr_width`` given): a "sum" program at byte
      address ``p = a & 0x3FFFFFFF``: reads word ``n`` at ``p``, adds the ``n`` words after it
      (modulo 2**32) and writes the sum into the word after those;
    * bit 31 set: also reports error code ``0xEE``.

    Its counters: ``perf[0]`` counts starts, ``perf[1]`` the busy cycles of the last run.
    """

    def __init__(self, n_perf: int = 2, mem_addr_width: int | None = None, word_bytes: int = 4):
        assert n_perf >= 2
        self.word_bytes = word_bytes
        members = {"ctrl": In(EngineControlSignature(n_perf))}
        if mem_addr_width is not None:
            members["mem"] = Out(MemPortSignature(mem_addr_width, 8 * word_bytes))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        c = self.ctrl
        left = Signal(16)
        m.d.comb += c.start.ready.eq(~c.busy)
        started = c.start.valid & c.start.ready
        m.d.comb += [c.perf_inc[0].eq(started), c.perf_inc[1].eq(c.busy),
                     c.perf_clear.eq(started << 1)]
        with m.If(started):
            m.d.sync += [left.eq(c.start.payload[:16]), c.busy.eq(1), c.done.eq(0),
                         c.error.eq(Mux(c.start.payload[31], 0xEE, 0))]
        has_mem = hasattr(self, "mem")
        if has_mem:
            mem = self.mem
            aw = len(mem.req.payload.addr)
            wshift = (self.word_bytes - 1).bit_length()
            ptr = Signal(aw)
            count = Signal(32)
            count_zero = Signal()      # registered count == 0 (keeps the compare off paths)
            total = Signal(32)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(started):
                    if has_mem:
                        m.d.sync += ptr.eq(c.start.payload[:30] >> wshift)
                        with m.If(c.start.payload[30]):
                            m.next = "N_REQ"
                        with m.Else():
                            m.next = "COUNT"
                    else:
                        m.next = "COUNT"
            with m.State("COUNT"):
                with m.If(left == 0):
                    m.d.sync += [c.busy.eq(0), c.done.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += left.eq(left - 1)
            if has_mem:
                with m.State("N_REQ"):
                    m.d.comb += [mem.req.valid.eq(1), mem.req.payload.addr.eq(ptr)]
                    with m.If(mem.req.ready):
                        m.d.sync += ptr.eq(ptr + 1)
                        m.next = "N_RESP"
                with m.State("N_RESP"):
                    m.d.comb += mem.resp.ready.eq(1)
                    with m.If(mem.resp.valid):
                        m.d.sync += [count.eq(mem.resp.payload), total.eq(0),
                                     count_zero.eq(mem.resp.payload == 0)]
                        m.next = "SUM_REQ"
                with m.State("SUM_REQ"):
                    with m.If(count_zero):
                        m.next = "WRITE"
                    with m.Else():
                        m.d.comb += [mem.req.valid.eq(1), mem.req.payload.addr.eq(ptr)]
                        with m.If(mem.req.ready):
                            m.d.sync += [ptr.eq(ptr + 1), count.eq(count - 1),
                                         count_zero.eq(count == 1)]
                            m.next = "SUM_RESP"
                with m.State("SUM_RESP"):
                    m.d.comb += mem.resp.ready.eq(1)
                    with m.If(mem.resp.valid):
                        m.d.sync += total.eq(total + mem.resp.payload)
                        m.next = "SUM_REQ"
                with m.State("WRITE"):
                    m.d.comb += [mem.req.valid.eq(1), mem.req.payload.write.eq(1),
                                 mem.req.payload.addr.eq(ptr), mem.req.payload.data.eq(total)]
                    with m.If(mem.req.ready):
                        m.d.sync += [c.busy.eq(0), c.done.eq(1)]
                        m.next = "IDLE"
        return m


class LinkSoC(wiring.Component):
    """UART pins ``rx``/``tx``; ``idle`` when no byte or frame is anywhere in the link.

    ``mem_bytes`` of block RAM in ``word_bytes``-byte words; ``divisor`` clocks per bit.
    """

    def __init__(self, *, divisor: int, mem_bytes: int = 16384, word_bytes: int = 4,
                 max_payload: int = 1024, clock_hz: int = 0, board: str = "sim",
                 rx_fifo: int = 64, tx_fifo: int = 16, engine=None, n_perf: int = 2,
                 pe_rows: int = 0, pe_cols: int = 0, buffer_bytes: int = 0,
                 version_hash: int | None = None, memory=None, max_reads: int = 4):
        self.divisor = divisor
        #: the memory behind the link and the engine: a component with a ``bus`` memory-port
        #: target; None = block RAM of ``mem_bytes``
        self.memory = memory
        #: reads the arbiter between link and engine lets be in flight: enough to cover the
        #: memory's round trip (the board top gives the SDRAM 16)
        self.max_reads = max_reads
        self.info = self.make_info(
            divisor=divisor, board=board, clock_hz=clock_hz, mem_bytes=mem_bytes,
            word_bytes=word_bytes, max_payload=max_payload, pe_rows=pe_rows, pe_cols=pe_cols,
            buffer_bytes=buffer_bytes, n_perf=n_perf, version_hash=version_hash)
        self.rx_fifo, self.tx_fifo = rx_fifo, tx_fifo
        self.addr_width = max(1, ceil_log2(mem_bytes // word_bytes))
        self.engine = engine if engine is not None else EngineStub(
            n_perf, mem_addr_width=self.addr_width, word_bytes=word_bytes)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "idle": Out(1),
                          "engine_busy": Out(1)})

    @staticmethod
    def make_info(*, divisor, board="sim", clock_hz=0, mem_bytes=16384, word_bytes=4,
                  max_payload=1024, pe_rows=0, pe_cols=0, buffer_bytes=0, n_perf=2,
                  version_hash=None) -> DeviceInfo:
        """The INFO record of a ``LinkSoC`` built with these parameters."""
        from host.runtime.protocol import gateware_version_hash
        return DeviceInfo(
            board=board, clock_hz=clock_hz, baud=(clock_hz // divisor) if clock_hz else 0,
            mem_bytes=mem_bytes, word_bytes=word_bytes, max_payload=max_payload,
            pe_rows=pe_rows, pe_cols=pe_cols, buffer_bytes=buffer_bytes, n_perf=n_perf,
            version_hash=gateware_version_hash() if version_hash is None else version_hash)

    def elaborate(self, platform):
        m = Module()
        info = self.info
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.submodules.rx_fifo = rxf = StreamFIFO(8, self.rx_fifo)
        m.submodules.tx_fifo = txf = StreamFIFO(8, self.tx_fifo)
        m.submodules.core = core = LinkCore(info, self.addr_width, perf_inc_bits(self.engine))
        m.submodules.ram = ram = self.memory or BRAMTarget(info.mem_bytes // info.word_bytes,
                                                           8 * info.word_bytes)
        m.submodules.engine = eng = self.engine

        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        connect(m, urx.data, rxf.i)
        connect(m, rxf.o, core.rx)
        connect(m, core.tx, txf.i)
        connect(m, txf.o, utx.data)
        connect(m, core.engine, eng.ctrl)
        if "mem" in eng.signature.members:
            # the link has priority; the engine gets every cycle the link leaves
            m.submodules.arbiter = arb = MemPortArbiter(2, self.addr_width, 8 * info.word_bytes,
                                                        max_reads=self.max_reads)
            connect(m, core.mem, arb.bus0)
            connect(m, eng.mem, arb.bus1)
            connect(m, arb.out, ram.bus)
        else:
            connect(m, core.mem, ram.bus)
        m.d.comb += [
            core.rx_error.eq(urx.overrun | urx.frame_error),
            self.idle.eq(urx.idle & rxf.empty & core.idle & txf.empty & utx.idle),
            self.engine_busy.eq(core.engine.busy),
        ]
        return m


class SimLinkTop(wiring.Component):
    """Simulation top: the SoC and a host-side UART pair at the same divisor.

    ``h_in``: bytes the host sends (into a ``host_fifo``-deep FIFO, then the host UART TX, then
    the SoC's rx pin).  ``h_out``: bytes the SoC sent, as the host UART RX received them.
    ``quiet``: nothing in flight anywhere and the engine not busy — a bench may then stop
    simulated time until the host sends something.

    ``clk`` and ``rst`` are ports of their own: the reset input is registered before it resets
    the ``sync`` domain.  Amaranth's reset is combinational in every register's next value, so
    a reset port straight from the top made Verilator evaluate the whole design's next-state
    logic whenever an input might have changed, on both clock edges (a sixth of the simulated
    SoC's time); behind a register it is evaluated once a cycle.
    """

    def __init__(self, soc: LinkSoC, host_fifo: int = 256):
        self.soc = soc
        self.host_fifo = host_fifo
        super().__init__({"clk": In(1), "rst": In(1),
                          "h_in": In(stream.Signature(8)), "h_out": Out(stream.Signature(8)),
                          "quiet": Out(1), "line_rx": Out(1), "line_tx": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain()
        m.domains.rst_reg = rst_reg = ClockDomain(reset_less=True)
        rst_q = Signal(init=1)
        m.d.rst_reg += rst_q.eq(self.rst)
        m.d.comb += [sync.clk.eq(self.clk), rst_reg.clk.eq(self.clk), sync.rst.eq(rst_q)]
        d = self.soc.divisor
        m.submodules.soc = soc = self.soc
        m.submodules.h_fifo = hf = StreamFIFO(8, self.host_fifo)
        m.submodules.h_tx = htx = UARTTx(d)
        m.submodules.h_rx = hrx = UARTRx(d)
        m.submodules.h_out_fifo = hof = StreamFIFO(8, self.host_fifo)
        connect(m, wiring.flipped(self.h_in), hf.i)
        connect(m, hf.o, htx.data)
        connect(m, hrx.data, hof.i)
        connect(m, hof.o, wiring.flipped(self.h_out))
        m.d.comb += [soc.rx.eq(htx.tx), hrx.rx.eq(soc.tx),
                     self.line_rx.eq(htx.tx), self.line_tx.eq(soc.tx),
                     self.quiet.eq(hf.empty & htx.idle & soc.idle & hrx.idle & hof.empty
                                   & ~soc.engine_busy)]
        return m
