"""Frame layer of the host link: COBS decoder/encoder and CRC-32 (see ``host/runtime/protocol.py``).

* :class:`COBSDecoder`: wire bytes in; decoded frame contents out as beats ``{data, end, error}``.
  A zero byte ends a frame: it becomes one ``end`` beat (``error`` set if the last COBS block was
  cut short).  Empty frames (zeros in a row) produce nothing, so a receiver that lost sync is
  back in step at the next zero.
* :class:`COBSEncoder`: frame contents in as ``{data, last}``; wire bytes out, each frame
  terminated by ``0x00``.  It holds one COBS block (≤ 254 bytes) in a small memory.
* :class:`CRCAppender`: ``{data, last}`` in, the same bytes followed by their CRC-32 out.
* :class:`SerialCRC32`: the CRC-32 register (reflected, polynomial 0xEDB88320, no final
  inversion, as ``host.runtime.protocol.crc32_update``), a bit per cycle.
"""
from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from host.runtime.protocol import CRC32_POLY
from hw.memory.read_reg_ram import NO_RW_CHECK
from hw.stream_slice import StreamSlice

#: decoded beat: a data byte, or (``end`` = 1) the end of a frame with its COBS ``error`` flag
decoded_layout = data.StructLayout({"data": 8, "end": 1, "error": 1})
#: frame content byte with ``last`` marking the final byte of a frame
frame_byte_layout = data.StructLayout({"data": 8, "last": 1})


class SerialCRC32(wiring.Component):
    """CRC-32 one bit per cycle (reflected, polynomial 0xEDB88320, no final inversion, as
    ``host.runtime.protocol.crc32_update``): a byte taken on ``i`` is folded in over the next
    8 cycles, ``i.ready`` low meanwhile.  At the link's baud rates a byte takes ten bit times
    of at least four clocks each, so this keeps up, in ~40 logic cells where a byte-wide XOR
    network took ~200 (the UP5K's budget).

    ``value``: the register; ``reset``: back to all ones; ``drop``: shift it right by a byte
    (to send it out least significant byte first).  ``reset`` and ``drop`` must not come while
    a byte is being folded in."""

    i: In(stream.Signature(8))
    value: Out(32, init=0xFFFFFFFF)
    reset: In(1)
    drop: In(1)

    def elaborate(self, platform):
        m = Module()
        reg = self.value
        byte = Signal(8)
        left = Signal(range(9))              # bits of ``byte`` still to fold in
        m.d.comb += self.i.ready.eq(left == 0)
        with m.If(self.reset):
            m.d.sync += reg.eq(0xFFFFFFFF)
        with m.Elif(self.drop):
            m.d.sync += reg.eq(reg >> 8)
        with m.Elif(left != 0):
            m.d.sync += [reg.eq((reg >> 1) ^ Mux(reg[0] ^ byte[0], CRC32_POLY, 0)),
                         byte.eq(byte >> 1), left.eq(left - 1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [byte.eq(self.i.payload), left.eq(8)]
        return m


class COBSDecoder(wiring.Component):
    """Streaming COBS decoder; one input byte gives at most one output beat.  The output is
    registered and so is its input (:class:`StreamSlice` on both sides): no combinational path
    runs through it from its producer to its consumer."""

    i: In(stream.Signature(8))
    o: Out(stream.Signature(decoded_layout))
    idle: Out(1)

    def elaborate(self, platform):
        m = Module()
        # the input stage also decodes "byte is 0" and "byte is 1", so the ready logic below
        # starts from flip-flops instead of 8-bit compares (UP5K timing)
        in_layout = data.StructLayout({"byte": 8, "zero": 1, "one": 1})
        m.submodules.in_pipe = in_pipe = StreamSlice(in_layout, full_rate=False)
        m.d.comb += [
            in_pipe.i.valid.eq(self.i.valid), self.i.ready.eq(in_pipe.i.ready),
            in_pipe.i.payload.byte.eq(self.i.payload),
            in_pipe.i.payload.zero.eq(self.i.payload == 0),
            in_pipe.i.payload.one.eq(self.i.payload == 1),
        ]
        i = in_pipe.o
        m.submodules.pipe = pipe = StreamSlice(decoded_layout, full_rate=False)
        wiring.connect(m, pipe.o, wiring.flipped(self.o))
        o = pipe.i
        count = Signal(8)        # data bytes still to come in the current block
        count_zero = Signal(init=1)   # count == 0, kept as a register
        pending_zero = Signal()  # the block just finished implies a zero if another block follows
        started = Signal()       # at least one byte of the current frame seen

        b = i.payload.byte
        m.d.comb += self.idle.eq(~started & ~pipe.o.valid & ~in_pipe.o.valid)
        with m.If(i.payload.zero):
            m.d.comb += [
                o.payload.end.eq(1),
                o.payload.error.eq(~count_zero),
                o.valid.eq(i.valid & started),
                i.ready.eq(o.ready | ~started),
            ]
            with m.If(i.valid & i.ready):
                m.d.sync += [count.eq(0), count_zero.eq(1), pending_zero.eq(0), started.eq(0)]
        with m.Elif(count_zero):
            # code byte: emits the implied zero of the previous block, if any
            m.d.comb += [
                o.payload.data.eq(0),
                o.valid.eq(i.valid & pending_zero),
                i.ready.eq(o.ready | ~pending_zero),
            ]
            with m.If(i.valid & i.ready):
                m.d.sync += [count.eq(b - 1), count_zero.eq(i.payload.one),
                             pending_zero.eq(b != 0xFF), started.eq(1)]
        with m.Else():
            m.d.comb += [
                o.payload.data.eq(b),
                o.valid.eq(i.valid),
                i.ready.eq(o.ready),
            ]
            with m.If(i.valid & i.ready):
                m.d.sync += [count.eq(count - 1), count_zero.eq(count == 1), started.eq(1)]
        return m


class COBSEncoder(wiring.Component):
    """Streaming COBS encoder producing exactly ``host.runtime.protocol.cobs_encode(frame) + b"\\0"``.

    Bytes of a block are collected in a 254-byte memory, then the block's code byte and the
    bytes are sent.  ``idle``: no frame in progress.
    """

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(8))
    idle: Out(1)

    def elaborate(self, platform):
        m = Module()
        # the block is read out only after it is complete: a read beside a write is unused
        m.submodules.buf = buf = Memory(shape=8, depth=254, init=[], attrs={NO_RW_CHECK: 1})
        wr = buf.write_port()
        rd = buf.read_port(transparent_for=())

        n = Signal(range(255))       # bytes in the block buffer
        idx = Signal(range(255))     # next byte to send from it
        final = Signal()             # this block ends the frame
        closed = Signal()            # block closed by a zero or by being full (not by `last`)
        left = Signal(range(255))    # bytes of the block still to send
        at_last = Signal()           # left == 1, registered in PREP (UP5K timing)

        m.d.comb += [rd.addr.eq(idx), wr.addr.eq(n), wr.data.eq(self.i.payload.data)]

        with m.FSM():
            with m.State("FILL"):
                m.d.comb += [self.idle.eq(n == 0), self.i.ready.eq(1)]
                with m.If(self.i.valid):
                    byte, last = self.i.payload.data, self.i.payload.last
                    is_zero = byte == 0
                    full = ~is_zero & (n == 253)
                    with m.If(~is_zero):
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += n.eq(n + 1)
                    m.d.sync += [final.eq(last), closed.eq(is_zero | full)]
                    with m.If(is_zero | full | last):
                        m.next = "CODE"
            with m.State("CODE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(closed & (n == 254),
                                                                       0xFF, n + 1))]
                with m.If(self.o.ready):
                    m.d.sync += [idx.eq(0), left.eq(n)]
                    with m.If(n == 0):
                        m.next = "AFTER"
                    with m.Else():
                        m.next = "PREP"
            with m.State("PREP"):          # memory read latency; the end test registered here
                m.d.sync += at_last.eq(left == 1)
                m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(rd.data)]
                with m.If(self.o.ready):
                    m.d.sync += [idx.eq(idx + 1), left.eq(left - 1)]
                    with m.If(at_last):
                        m.next = "AFTER"
                    with m.Else():
                        m.next = "PREP"
            with m.State("AFTER"):
                m.d.sync += n.eq(0)
                with m.If(~final):
                    m.next = "FILL"
                with m.Elif(closed):
                    m.next = "TRAIL"     # a zero/full block at the end needs an empty block
                with m.Else():
                    m.next = "DELIM"
            with m.State("TRAIL"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(0x01)]
                with m.If(self.o.ready):
                    m.next = "DELIM"
            with m.State("DELIM"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(0x00)]
                with m.If(self.o.ready):
                    m.next = "FILL"
        return m


class CRCAppender(wiring.Component):
    """Passes frame bytes through and appends their CRC-32 (little-endian) before ``last``.
    The CRC is folded in a bit per cycle (:class:`SerialCRC32`), so a byte is taken at most
    every 9 cycles.  The output is registered (:class:`StreamSlice`), so no combinational path
    crosses it."""

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(frame_byte_layout))

    def elaborate(self, platform):
        m = Module()
        m.submodules.pipe = pipe = StreamSlice(frame_byte_layout, full_rate=False)
        m.submodules.crc = crc = SerialCRC32()
        wiring.connect(m, pipe.o, wiring.flipped(self.o))
        o = pipe.i
        k = Signal(2)
        with m.FSM():
            with m.State("DATA"):
                m.d.comb += [o.valid.eq(self.i.valid & crc.i.ready),
                             self.i.ready.eq(o.ready & crc.i.ready),
                             o.payload.data.eq(self.i.payload.data),
                             crc.i.valid.eq(self.i.valid & o.ready),
                             crc.i.payload.eq(self.i.payload.data)]
                with m.If(self.i.valid & self.i.ready & self.i.payload.last):
                    m.d.sync += k.eq(0)
                    m.next = "FOLD"
            with m.State("FOLD"):          # the last byte is folded in
                with m.If(crc.i.ready):
                    m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += [o.valid.eq(1), o.payload.data.eq(~crc.value[:8]),
                             o.payload.last.eq(k == 3)]
                with m.If(o.ready):
                    m.d.comb += crc.drop.eq(1)
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 3):
                        m.d.comb += [crc.drop.eq(0), crc.reset.eq(1)]
                        m.next = "DATA"
        return m
