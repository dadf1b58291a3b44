"""Command processor of the host link: decoded frames in, memory accesses and replies out.

Semantics are those of ``host.runtime.protocol.DeviceModel`` (the tests run it beside this RTL):

* Frame bytes arrive from the :class:`hw.link.framing.COBSDecoder` as ``{data, end, error}`` beats.
  The header (``cmd, tag, addr u32, length u16``) is caught in registers; bytes from offset 8 on
  (WRITE data and the CRC) go into a frame buffer memory one word wide; the CRC-32 is checked on
  the fly (residue).  Nothing touches the memory port before the whole frame has been checked:
  a bad frame cannot change memory.
* At the end of a frame its status is decided in this order: BAD_FRAME (COBS error, runt),
  TOO_LONG, BAD_CRC, UNKNOWN_CMD, BAD_LENGTH, BAD_ADDRESS, BUSY, OK.  Then the command runs and
  one reply ``cmd, tag, status, payload`` leaves on ``tx`` (``{data, last}``, to the CRC appender).
* WRITE copies the buffered words to the memory port; READ issues one read per word and sends
  the words out little-endian; INFO sends a constant record (``host.runtime.protocol.DeviceInfo``);
  START hands the program address to the engine's ``start`` stream; STATUS sends the status
  words (``host.runtime.protocol.STATUS_FIELDS``) and the engine's performance counters.

The engine plugs into ``engine`` (:class:`EngineControlSignature`): a ``start`` stream carrying
the program address, and ``busy``, ``done``, ``error`` and the increments of its performance
counters coming back.  Those counters and the link's own (``engine_cycles``, ``frames_ok``,
``frames_bad``, ``rx_errors``) are one :class:`hw.link.counter_bank.CounterBank` in a block
RAM, read a word at a time as STATUS goes out.
``mem_status`` (16 bits, e.g. the SDRAM read calibration result) is sent as bits 16…31 of the
STATUS ``flags`` word.
"""
from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from host.runtime.protocol import (CRC32_RESIDUE, REQUEST_ARGS, STATUS_FIELDS, WRITE_HEADER, Cmd,
                           DeviceInfo, Status)

from hw.memory.read_reg_ram import NO_RW_CHECK
from hw.link.counter_bank import CounterBank
from hw.link.framing import SerialCRC32, decoded_layout, frame_byte_layout
from hw.memory.memport import MemPortSignature
from hw.stream_slice import StreamSlice


class EngineControlSignature(wiring.Signature):
    """Control port from the command processor to the compute engine (initiator view).

    * ``start`` (out stream, 32 bits): the program's byte address; transferred once per START.
    * ``busy`` (in): the engine is running a program (START is refused while high).
    * ``done`` (in): the last program finished (the engine clears it on the next start).
    * ``error`` (in, 8 bits): the engine's error code, 0 when none.
    * ``perf_inc`` (in): this cycle's increments of the ``n_perf`` performance counters STATUS
      reports (``inc_bits`` each); the counters themselves live in the command processor
      (:class:`hw.link.counter_bank.CounterBank`);
    * ``perf_clear`` (in, ``n_perf`` bits): those counters restart from zero.
    """

    def __init__(self, n_perf: int, inc_bits: int = 1):
        self.n_perf, self.inc_bits = n_perf, inc_bits
        super().__init__({
            "start": Out(stream.Signature(32)),
            "busy": In(1),
            "done": In(1),
            "error": In(8),
            "perf_inc": In(data.ArrayLayout(inc_bits, n_perf)),
            "perf_clear": In(n_perf),
        })


def perf_inc_bits(engine) -> int:
    """The counter increment width of ``engine``'s control port (its ``ctrl`` member)."""
    return engine.signature.members["ctrl"].signature.inc_bits


class CommandProcessor(wiring.Component):
    """Executes link frames against a memory port; see the module docstring.

    ``info`` fixes the memory size, word size, maximum payload and number of perf counters, and
    is the record INFO returns.  The memory port is ``8 * info.word_bytes`` bits wide with word
    addresses of ``addr_width`` bits.
    """

    def __init__(self, info: DeviceInfo, addr_width: int | None = None,
                 perf_inc_bits: int = 1):
        wb = info.word_bytes
        if wb not in (1, 2, 4, 8):
            raise ValueError("word_bytes must be 1, 2, 4 or 8")
        if info.mem_bytes % wb or info.max_payload % wb or not 0 < info.max_payload < 65536:
            raise ValueError("memory size and max payload must be whole words, payload < 64 KiB")
        self.info = info
        self.wb = wb
        self.addr_width = addr_width or max(1, ceil_log2(info.mem_bytes // wb))
        super().__init__({
            "rx": In(stream.Signature(decoded_layout)),
            "tx": Out(stream.Signature(frame_byte_layout)),
            "mem": Out(MemPortSignature(self.addr_width, 8 * wb)),
            "engine": Out(EngineControlSignature(info.n_perf, perf_inc_bits)),
            "rx_error": In(1),
            "mem_status": In(16),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        info, wb = self.info, self.wb
        wshift = ceil_log2(wb)
        max_frame = 2 + WRITE_HEADER + info.max_payload + 4

        # ---------------------------------------------------------------- receive
        buf_words = info.max_payload // wb      # WRITE data only; the CRC is checked on the fly
        # read only once the frame has ended and the receiver has stopped (no collisions)
        m.submodules.fbuf = fbuf = Memory(shape=8 * wb, depth=buf_words, init=[],
                                          attrs={NO_RW_CHECK: 1})
        fwr = fbuf.write_port()
        frd = fbuf.read_port(transparent_for=())

        n = Signal(range(max_frame + 2))      # decoded bytes in this frame, saturating
        # the CRC folds each byte in over 8 cycles; the receiver waits for it
        m.submodules.crc = crc_unit = SerialCRC32()
        crc = crc_unit.value
        cobs_err = Signal()
        cmd = Signal(8)
        tag = Signal(8)
        addr = Signal(32)
        length = Signal(16)
        word = Signal(8 * wb)                  # bytes being gathered for the frame buffer

        rxp = self.rx.payload
        byte = rxp.data
        bidx = n - 8                            # index into the frame buffer region
        gathered = Signal(8 * wb)
        m.d.comb += gathered.eq(Cat(word[8:], byte) if wb > 1 else byte)
        m.d.comb += [fwr.addr.eq(bidx >> wshift), fwr.data.eq(gathered)]

        # ---------------------------------------------------------------- counters
        uptime = Signal(64)
        uptime_hi = Signal(32)      # the high half, taken with the low half as STATUS sends it
        # the link's counters (STATUS_FIELDS after flags and uptime), then the engine's
        own = ("engine_cycles", "frames_ok", "frames_bad", "rx_errors")
        assert STATUS_FIELDS[3:] == own
        eng = self.engine
        m.submodules.counters = counters = CounterBank(len(own) + info.n_perf,
                                                       eng.signature.inc_bits)
        frame_ok, frame_bad = Signal(), Signal()
        m.d.comb += [counters.inc[0].eq(eng.busy), counters.inc[1].eq(frame_ok),
                     counters.inc[2].eq(frame_bad), counters.inc[3].eq(self.rx_error),
                     counters.clear.eq(eng.perf_clear << len(own))]
        for i in range(info.n_perf):
            m.d.comb += counters.inc[len(own) + i].eq(eng.perf_inc[i])
        # 64-bit uptime as two 32-bit halves (a 64-bit carry chain is slow on iCE40); the high
        # half steps one cycle after the low half wraps
        lo_wrap = Signal()
        m.d.sync += [uptime[:32].eq(uptime[:32] + 1), lo_wrap.eq(uptime[:32] == 0xFFFFFFFE)]
        with m.If(lo_wrap):
            m.d.sync += uptime[32:].eq(uptime[32:] + 1)

        # ---------------------------------------------------------------- decide
        status = Signal(8)
        known = Signal()
        m.d.comb += known.eq(cmd.matches(*[c.value for c in Cmd]))
        len_ok = Signal()
        write_frame_len = Signal(17)    # registered: the adder stays out of the check
        m.d.sync += write_frame_len.eq(2 + WRITE_HEADER + 4 + length)
        with m.Switch(cmd):
            with m.Case(Cmd.WRITE):
                m.d.comb += len_ok.eq(n == write_frame_len)
            for c, nargs in REQUEST_ARGS.items():
                with m.Case(c):
                    m.d.comb += len_ok.eq(n == 2 + nargs + 4)
        # The checks are registered over two cycles (CHECK, CHECK2) before DECIDE: the address
        # range carry chains and the status priority must not share one clock period.  They
        # are computed on every cycle (their inputs are stable from the end of the frame on),
        # so no state decoding reaches these registers (UP5K timing).
        is_mem = Signal()
        end_addr = Signal(33)
        f_short, f_long, f_crc, f_known, f_len, f_small, f_range = (Signal(name=f"f_{x}") for x in
            ("short", "long", "crc", "known", "len", "small", "range"))
        check = [
            is_mem.eq((cmd == Cmd.WRITE) | (cmd == Cmd.READ)),
            end_addr.eq(addr + length),
            f_short.eq(cobs_err | (n < 6)),
            f_long.eq(n > max_frame),
            f_crc.eq(crc == CRC32_RESIDUE),
            f_known.eq(known),
            f_len.eq(len_ok),
            f_small.eq((length == 0) | (length > info.max_payload)
                       | ((addr[:wshift] != 0) | (length[:wshift] != 0) if wshift else 0)),
        ]
        check2 = [f_range.eq(f_small | (end_addr > info.mem_bytes))]
        m.d.sync += check + check2
        decided = Signal(8)
        with m.If(f_short):
            m.d.comb += decided.eq(Status.BAD_FRAME)
        with m.Elif(f_long):
            m.d.comb += decided.eq(Status.TOO_LONG)
        with m.Elif(~f_crc):
            m.d.comb += decided.eq(Status.BAD_CRC)
        with m.Elif(~f_known):
            m.d.comb += decided.eq(Status.UNKNOWN_CMD)
        with m.Elif(~f_len):
            m.d.comb += decided.eq(Status.BAD_LENGTH)
        with m.Elif(is_mem & f_range):
            m.d.comb += decided.eq(Status.BAD_ADDRESS)
        with m.Elif((cmd == Cmd.START) & self.engine.busy):
            m.d.comb += decided.eq(Status.BUSY)
        with m.Else():
            m.d.comb += decided.eq(Status.OK)

        # ---------------------------------------------------------------- payload sources
        info_bytes = info.pack()
        m.submodules.rom = rom = Memory(shape=8, depth=len(info_bytes), init=list(info_bytes))
        rom_rd = rom.read_port(domain="comb")
        # STATUS: three words from registers, then the counters from the bank
        status_regs = Array([
            Cat(self.engine.busy, self.engine.done, C(0, 6), self.engine.error,
                self.mem_status),
            uptime[:32], uptime_hi])
        status_len = 4 * (len(STATUS_FIELDS) + info.n_perf)

        k = Signal(range(max(4, wb, len(info_bytes), status_len)))  # byte counter in a reply part
        word_idx = k >> 2           # STATUS: the word whose bytes are being sent
        words_left = Signal(range(info.max_payload // wb + 1))
        last_word = Signal()        # registered words_left == 1 (timing)
        waddr = Signal(self.addr_width)
        ridx = Signal(range(buf_words + 1))
        reply_byte = Signal(8)      # INFO byte, registered before it is sent
        # the READ word or STATUS word being sent, shifted out a byte at a time
        out_word = Signal(max(32, 8 * wb))
        part_end = Signal()         # the byte being sent is the last of the INFO/STATUS payload
        m.d.comb += [frd.addr.eq(ridx), rom_rd.addr.eq(k)]

        req, resp = self.mem.req, self.mem.resp
        # replies leave through a register stage: the payload multiplexers below do not reach
        # into the CRC appender's logic (this path limited the UP5K to ~22 MHz)
        m.submodules.tx_pipe = tx_pipe = StreamSlice(frame_byte_layout, full_rate=False)
        wiring.connect(m, tx_pipe.o, wiring.flipped(self.tx))
        tx = tx_pipe.i
        has_payload = Signal()      # decoded once per frame in DECIDE (timing)
        is_read = Signal()
        is_info = Signal()
        is_write = Signal()
        is_start = Signal()
        is_reply_cmd = Signal()
        ok_r = Signal()
        frame_reset = [n.eq(0), cmd.eq(0), tag.eq(0)]

        # The receiver runs outside the state machine, from a handful of registers (``receiving``,
        # the one-hot header position ``hdr``, ``in_buf``), so no state decoding reaches the
        # capture registers' enables (UP5K timing).  It stops at the end beat and is re-armed by
        # ``rearm`` once the reply has left.
        receiving = Signal(init=1)
        frame_end = Signal()        # pulse: the end beat was taken
        rearm = Signal()            # pulse from FINISH: reset the frame registers, receive again
        hdr = Signal(8, init=1)     # one-hot position within the 8 header bytes
        in_buf = Signal()           # registered (n >= 8) & (n < 8 + max_payload)
        take = self.rx.valid & self.rx.ready
        m.d.comb += [crc_unit.i.valid.eq(self.rx.valid & receiving & ~rxp.end),
                     crc_unit.i.payload.eq(byte), crc_unit.reset.eq(rearm),
                     self.rx.ready.eq(receiving & crc_unit.i.ready),
                     self.idle.eq(receiving & (n == 0) & ~tx_pipe.o.valid)]
        m.d.sync += [frame_end.eq(0), rearm.eq(0)]
        with m.If(rearm):
            m.d.sync += [receiving.eq(1), hdr.eq(1), in_buf.eq(0), *frame_reset]
        with m.Elif(take & rxp.end):
            m.d.sync += [cobs_err.eq(rxp.error), receiving.eq(0), frame_end.eq(1)]
        with m.Elif(take):
            with m.If(n <= max_frame):
                m.d.sync += n.eq(n + 1)
            m.d.sync += [hdr.eq(hdr << 1),
                         in_buf.eq((n >= 7) & (n < 7 + info.max_payload))]
            with m.If(hdr[0]):
                m.d.sync += cmd.eq(byte)
            with m.If(hdr[1]):
                m.d.sync += tag.eq(byte)
            for i in range(4):
                with m.If(hdr[2 + i]):
                    m.d.sync += addr.word_select(i, 8).eq(byte)
            for i in range(2):
                with m.If(hdr[6 + i]):
                    m.d.sync += length.word_select(i, 8).eq(byte)
            with m.If(in_buf):
                m.d.sync += word.eq(gathered)
                with m.If(n[:wshift] == wb - 1 if wshift else 1):
                    m.d.comb += fwr.en.eq(1)

        with m.FSM() as fsm:
            with m.State("RECV"):
                with m.If(frame_end):
                    m.next = "CHECK"
            with m.State("CHECK"):      # the check registers settle (see above)
                m.next = "CHECK2"
            with m.State("CHECK2"):
                m.next = "DECIDE"
            with m.State("DECIDE"):
                m.d.sync += [status.eq(decided), k.eq(0),
                             words_left.eq(length >> wshift), waddr.eq(addr >> wshift),
                             last_word.eq((length >> wshift) == 1),
                             ridx.eq(0), ok_r.eq(decided == Status.OK),
                             is_read.eq(cmd == Cmd.READ), is_info.eq(cmd == Cmd.INFO),
                             is_write.eq(cmd == Cmd.WRITE), is_start.eq(cmd == Cmd.START),
                             is_reply_cmd.eq(cmd.matches(Cmd.READ, Cmd.INFO, Cmd.STATUS))]
                m.next = "DISPATCH"
            with m.State("DISPATCH"):      # acts on the registered decision (timing)
                m.d.sync += has_payload.eq(ok_r & is_reply_cmd)
                with m.If(ok_r):
                    m.d.comb += frame_ok.eq(1)
                    with m.If(is_write):
                        m.next = "W_FETCH"
                    with m.Elif(is_start):
                        m.next = "START"
                    with m.Else():
                        m.next = "HEADER"
                with m.Else():
                    m.d.comb += frame_bad.eq(1)
                    m.next = "HEADER"

            with m.State("FINISH"):     # the receiver resets the frame registers (timing)
                m.d.sync += rearm.eq(1)
                m.next = "RECV"

            # WRITE: buffered words to memory, two cycles per word (buffer read latency)
            with m.State("W_FETCH"):
                m.next = "W_ISSUE"
            with m.State("W_ISSUE"):
                m.d.comb += [req.valid.eq(1), req.payload.write.eq(1),
                             req.payload.addr.eq(waddr), req.payload.data.eq(frd.data)]
                with m.If(req.ready):
                    m.d.sync += [waddr.eq(waddr + 1), ridx.eq(ridx + 1),
                                 words_left.eq(words_left - 1), last_word.eq(words_left == 2)]
                    with m.If(last_word):
                        m.next = "HEADER"
                    with m.Else():
                        m.next = "W_FETCH"

            with m.State("START"):
                m.d.comb += [self.engine.start.valid.eq(1), self.engine.start.payload.eq(addr)]
                with m.If(self.engine.start.ready):
                    m.next = "HEADER"

            # reply header: cmd, tag, status
            with m.State("HEADER"):
                m.d.comb += [tx.valid.eq(1),
                             tx.payload.data.eq(Array([cmd, tag, status])[k[:2]]),
                             tx.payload.last.eq((k == 2) & ~has_payload)]
                with m.If(tx.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 2):
                        m.d.sync += k.eq(0)
                        with m.If(~has_payload):
                            m.next = "FINISH"
                        with m.Elif(is_read):
                            m.next = "R_REQ"
                        with m.Elif(is_info):
                            m.next = "I_FETCH"
                        with m.Else():
                            m.next = "S_FETCH"

            # READ: one word at a time, sent little-endian
            with m.State("R_REQ"):
                m.d.comb += [req.valid.eq(1), req.payload.write.eq(0), req.payload.addr.eq(waddr)]
                with m.If(req.ready):
                    m.d.sync += waddr.eq(waddr + 1)
                    m.next = "R_RESP"
            with m.State("R_RESP"):
                m.d.comb += resp.ready.eq(1)
                with m.If(resp.valid):
                    m.d.sync += [out_word.eq(resp.payload), k.eq(0)]
                    m.next = "R_EMIT"
            with m.State("R_EMIT"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(out_word[:8]),
                             tx.payload.last.eq((k == wb - 1) & last_word)]
                with m.If(tx.ready):
                    m.d.sync += [out_word.eq(out_word >> 8), k.eq(k + 1)]
                    with m.If(k == wb - 1):
                        m.d.sync += [words_left.eq(words_left - 1),
                                     last_word.eq(words_left == 2)]
                        with m.If(last_word):
                            m.next = "FINISH"
                        with m.Else():
                            m.next = "R_REQ"

            # INFO: the constant record from a small ROM
            # (the ROM and status multiplexers end in registers so that they do not chain
            # into the reply's register stage: UP5K timing)
            with m.State("I_FETCH"):
                m.d.sync += [reply_byte.eq(rom_rd.data), part_end.eq(k == len(info_bytes) - 1)]
                m.next = "I_EMIT"
            with m.State("I_EMIT"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(reply_byte),
                             tx.payload.last.eq(part_end)]
                with m.If(tx.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(part_end):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "I_FETCH"

            # STATUS: status words, little-endian
            with m.State("S_FETCH"):   # a word is loaded at its first byte, then shifted out
                m.d.sync += part_end.eq(k == status_len - 1)
                with m.If(k[:2] != 0):
                    m.next = "S_EMIT"
                with m.Elif(word_idx < len(status_regs)):
                    m.d.sync += out_word.eq(status_regs[word_idx[:2]])
                    with m.If(word_idx == 1):
                        m.d.sync += uptime_hi.eq(uptime[32:])
                    m.next = "S_EMIT"
                with m.Else():
                    m.next = "S_COUNT"
            with m.State("S_COUNT"):   # the bank answers at its sweep's next visit
                m.d.comb += [counters.req.valid.eq(1),
                             counters.req.payload.eq(word_idx - len(status_regs))]
                with m.If(counters.rd_lo):
                    m.d.sync += out_word[:16].eq(counters.rd_data)
                with m.If(counters.rd_hi):
                    m.d.sync += out_word[16:32].eq(counters.rd_data)
                    m.next = "S_EMIT"
            with m.State("S_EMIT"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(out_word[:8]),
                             tx.payload.last.eq(part_end)]
                with m.If(tx.ready):
                    m.d.sync += [k.eq(k + 1), out_word.eq(out_word >> 8)]
                    with m.If(part_end):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "S_FETCH"
        # let yosys re-encode the state one-hot: the next-state and output decoding then take
        # one LUT level per condition instead of a 5-bit compare (UP5K timing)
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m
