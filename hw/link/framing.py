"""Frame layer of the host link: COBS decoder/encoder and CRC-32 (see ``host/runtime/protocol.py``).

* :class:`COBSDecoder`: wire bytes in; decoded frame contents out as beats ``{data, end, error}``.
  A zero byte ends a frame: it becomes one ``end`` beat (``error`` set if the last COBS block was
  cut short).  Empty frames (zeros in a row) produce nothing, so a receiver that lost sync is
  back in step at the next zero.
* :class:`COBSEncoder`: frame contents in as ``{data, last}``; wire bytes out, each frame
  terminated by ``0x00``.  It holds one COBS block (≤ 254 bytes) in a small memory.
* :class:`CRCAppender`: ``{data, last}`` in, the same bytes followed by their CRC-32 out.
* :func:`crc32_byte`: combinational CRC-32 step (reflected, polynomial 0xEDB88320, no final
  inversion), matching ``host.runtime.protocol.crc32_update``.
"""
from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.memory.read_reg_ram import NO_RW_CHECK
from hw.stream_slice import StreamSlice

CRC32_POLY = 0xEDB88320

#: decoded beat: a data byte, or (``end`` = 1) the end of a frame with its COBS ``error`` flag
decoded_layout = data.StructLayout({"data": 8, "end": 1, "error": 1})
#: frame content byte with ``last`` marking the final byte of a frame
frame_byte_layout = data.StructLayout({"data": 8, "last": 1})


def _crc32_matrix():
    """For each bit of the next CRC register: the register bits and byte bits it XORs together.

    The byte step is linear over GF(2), so it is found by stepping each unit vector through the
    bit-serial reference (``host.runtime.protocol.crc32_update``).
    """
    from host.runtime.protocol import crc32_update
    taps = [([], []) for _ in range(32)]
    for i in range(32):
        out = crc32_update(1 << i, 0)
        for j in range(32):
            if out >> j & 1:
                taps[j][0].append(i)
    for i in range(8):
        out = crc32_update(0, 1 << i)
        for j in range(32):
            if out >> j & 1:
                taps[j][1].append(i)
    return taps


_CRC32_TAPS = _crc32_matrix()


def crc32_byte(reg, byte):
    """Value expression: CRC-32 register ``reg`` after shifting in ``byte`` (LSB first).

    Built as one flat XOR per output bit (a naive unrolled loop of ``Mux``es duplicates the
    register expression 3**8 times in the netlist).
    """
    bits = []
    for reg_taps, byte_taps in _CRC32_TAPS:
        terms = [reg[i] for i in reg_taps] + [byte[i] for i in byte_taps]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc ^ t
        bits.append(acc)
    return Cat(*bits)


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
        m.submodules.in_pipe = in_pipe = StreamSlice(in_layout)
        m.d.comb += [
            in_pipe.i.valid.eq(self.i.valid), self.i.ready.eq(in_pipe.i.ready),
            in_pipe.i.payload.byte.eq(self.i.payload),
            in_pipe.i.payload.zero.eq(self.i.payload == 0),
            in_pipe.i.payload.one.eq(self.i.payload == 1),
        ]
        i = in_pipe.o
        m.submodules.pipe = pipe = StreamSlice(decoded_layout)
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
    The output is registered (:class:`StreamSlice`), so no combinational path crosses it."""

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(frame_byte_layout))

    def elaborate(self, platform):
        m = Module()
        m.submodules.pipe = pipe = StreamSlice(frame_byte_layout)
        wiring.connect(m, pipe.o, wiring.flipped(self.o))
        o = pipe.i
        crc = Signal(32, init=0xFFFFFFFF)
        out_crc = Signal(32)
        k = Signal(2)
        with m.FSM():
            with m.State("DATA"):
                m.d.comb += [o.valid.eq(self.i.valid), self.i.ready.eq(o.ready),
                             o.payload.data.eq(self.i.payload.data)]
                with m.If(self.i.valid & o.ready):
                    nxt = crc32_byte(crc, self.i.payload.data)
                    m.d.sync += crc.eq(nxt)
                    with m.If(self.i.payload.last):
                        m.d.sync += [out_crc.eq(~nxt), k.eq(0), crc.eq(0xFFFFFFFF)]
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += [o.valid.eq(1), o.payload.data.eq(out_crc.word_select(k, 8)),
                             o.payload.last.eq(k == 3)]
                with m.If(o.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 3):
                        m.next = "DATA"
        return m
