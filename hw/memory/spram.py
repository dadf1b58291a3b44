"""iCE40 UltraPlus SPRAM as a memory-port target (the iCEBreaker's 128 KB).

The UP5K has four ``SB_SPRAM256KA`` blocks of 16 K × 16 bit.  :class:`SPRAMMemory` arranges them
``data_width // 16`` wide and ``4 // (data_width // 16)`` deep (16-bit words: 64 K words; 32-bit:
32 K words; 64-bit: 16 K words) behind a :class:`hw.memory.memport.MemPortSignature` target.

On an iCE40 platform the blocks are instantiated directly (yosys infers SPRAM only under narrow
conditions, see `docs/toolchain.md`).  Elaborated for simulation (``platform`` None or not iCE40, or
``behavioural=True``) the same interface uses an ``amaranth.lib.memory.Memory`` with the same
one-cycle read latency, so tests exercise the same control logic.  ``primitives=True``
instantiates the blocks on any platform: under Verilator with yosys's own ``SB_SPRAM256KA``
simulation model (``sim.ice40_cells``), as the whole-SoC simulation of the iCEBreaker does.

Reads return one beat each, in order, three cycles after the request (input register, RAM, output register); the
response may stall: read data wait in a 6-entry output FIFO, and reads continue at one per cycle
while the response is consumed.  Writes are always accepted.
"""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In
from amaranth.vendor import LatticeICE40Platform

from hw.memory.fifo import BufferedFIFO
from hw.memory.memport import MemPortSignature

__all__ = ["SPRAMMemory"]

SPRAM_BLOCKS = 4
SPRAM_DEPTH = 16 * 1024
SPRAM_WIDTH = 16


class SPRAMMemory(wiring.Component):
    """Memory-port target on the four UP5K SPRAM blocks.

    Ports: ``bus: In(MemPortSignature(addr_width, data_width))`` with
    ``addr_width = log2(depth)``; see :attr:`depth`.
    """

    def __init__(self, data_width: int = 32, *, behavioural: bool = False,
                 primitives: bool = False):
        if data_width not in (16, 32, 64):
            raise ValueError("SPRAM data width must be 16, 32 or 64")
        self.data_width = data_width
        self.lanes = data_width // SPRAM_WIDTH
        self.rows = SPRAM_BLOCKS // self.lanes
        self.depth = SPRAM_DEPTH * self.rows
        self.behavioural = behavioural
        self.primitives = primitives
        self.addr_width = (self.depth - 1).bit_length()
        super().__init__({"bus": In(MemPortSignature(self.addr_width, data_width))})

    def elaborate(self, platform):
        m = Module()
        req, resp = self.bus.req, self.bus.resp

        # Requests are registered before the RAM (the SPRAM sits far from the fabric logic),
        # read data land in a small output FIFO (registered output: the RAM's slow
        # clock-to-out does not reach the consumer).  A read is accepted only if the FIFO will
        # have room for it (a credit counter, so the decision is one register compare).
        depth = 6
        m.submodules.rbuf = rbuf = BufferedFIFO(width=self.data_width, depth=depth)
        rdata = Signal(self.data_width)
        s_read = Signal()
        s_write = Signal()
        s_addr = Signal(self.addr_width)
        s_data = Signal(self.data_width)
        pending = Signal()
        credits = Signal(range(depth + 1), init=depth)
        m.d.comb += [
            rbuf.w_en.eq(pending),
            rbuf.w_data.eq(rdata),
            resp.valid.eq(rbuf.r_rdy),
            resp.payload.eq(rbuf.r_data),
            rbuf.r_en.eq(resp.ready),
            req.ready.eq(req.payload.write | (credits != 0)),
        ]
        accept = req.valid & req.ready
        # credits = free FIFO entries not yet promised to a read in flight
        m.d.sync += credits.eq(credits - (accept & ~req.payload.write) + (resp.valid & resp.ready))
        m.d.sync += [
            s_read.eq(accept & ~req.payload.write),
            s_write.eq(accept & req.payload.write),
            pending.eq(s_read),
        ]
        # loaded every cycle (no clock enable: keeps the request path short); used only when
        # s_read / s_write say so
        m.d.sync += [s_addr.eq(req.payload.addr), s_data.eq(req.payload.data)]

        use_blocks = self.primitives or (not self.behavioural
                                         and isinstance(platform, LatticeICE40Platform))
        if use_blocks:
            self._blocks(m, s_addr, s_data, s_read, s_write, rdata)
        else:
            m.submodules.mem = mem = memory.Memory(shape=self.data_width, depth=self.depth,
                                                   init=[])
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(s_addr), wp.data.eq(s_data), wp.en.eq(s_write),
                rp.addr.eq(s_addr), rp.en.eq(s_read), rdata.eq(rp.data),
            ]
        return m

    def _blocks(self, m, addr, wdata, do_read, do_write, rdata):
        block_addr = addr[:14]
        row_sel = addr[14:]
        row_q = Signal.like(row_sel) if len(row_sel) else None
        if row_q is not None:
            with m.If(do_read):
                m.d.sync += row_q.eq(row_sel)
        outs = []
        for r in range(self.rows):
            selected = (row_sel == r) if row_q is not None else 1
            lane_outs = []
            for lane in range(self.lanes):
                dout = Signal(16, name=f"spram_r{r}_l{lane}_do")
                m.submodules[f"spram_r{r}_l{lane}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=block_addr,
                    i_DATAIN=wdata[16 * lane:16 * (lane + 1)],
                    i_MASKWREN=0b1111,
                    i_WREN=do_write & selected,
                    i_CHIPSELECT=(do_read | do_write) & selected,
                    i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=0,
                    i_SLEEP=0,
                    i_POWEROFF=1,
                    o_DATAOUT=dout,
                )
                lane_outs.append(dout)
            outs.append(Cat(*lane_outs))
        if row_q is None:
            m.d.comb += rdata.eq(outs[0])
        else:
            with m.Switch(row_q):
                for r in range(self.rows):
                    with m.Case(r):
                        m.d.comb += rdata.eq(outs[r])

