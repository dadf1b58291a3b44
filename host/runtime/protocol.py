"""The blockfuse host link protocol: framing, CRC, commands and a reference model of the device.

This module is the single source of truth shared by the gateware (``hw/link/command.py`` takes its
constants and the device-information record from here), the host driver (``host/runtime/driver.py``) and
the tests (which run :class:`DeviceModel` beside the RTL).  ``docs/link.md`` describes the same
protocol for humans.

Wire format
-----------
Every frame, in both directions, is ``COBS(body || CRC32(body)) || 0x00``:

* COBS (Consistent Overhead Byte Stuffing) removes every zero byte from the frame, so ``0x00``
  is an unambiguous frame delimiter: a receiver that lost sync simply waits for the next zero.
  Overhead is one byte per 254 bytes plus the delimiter.  Empty frames (two zeros in a row) are
  ignored and never answered.
* ``CRC32`` is the IEEE 802.3 / zlib CRC-32, appended little-endian.

Request body: ``cmd u8, tag u8, args…``.  Reply body: ``cmd u8, tag u8, status u8, payload…``
(``cmd`` and ``tag`` echo the request so that the host can match replies to requests and drop
stale ones).  Multi-byte fields are little-endian.  Every non-empty frame gets exactly one reply.
"""
from __future__ import annotations

import enum
import hashlib
import struct
import zlib
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1

#: Running CRC-32 register value (no final inversion) after a message followed by its own CRC.
CRC32_RESIDUE = 0xDEBB20E3


class Cmd(enum.IntEnum):
    INFO = 0x01    # -> DeviceInfo record
    WRITE = 0x02   # addr u32, length u16, data[length]
    READ = 0x03    # addr u32, length u16 -> data[length]
    START = 0x04   # program address u32 -> engine start
    STATUS = 0x05  # -> status words (see STATUS_FIELDS)


class Status(enum.IntEnum):
    OK = 0x00
    BAD_FRAME = 0x01     # COBS error or frame shorter than cmd+tag+CRC
    TOO_LONG = 0x02      # frame longer than the device's frame buffer
    BAD_CRC = 0x03
    UNKNOWN_CMD = 0x04
    BAD_LENGTH = 0x05    # frame length does not match the command's arguments
    BAD_ADDRESS = 0x06   # address/length zero, unaligned, over max_payload or outside memory
    BUSY = 0x07          # START while the engine runs


#: Bytes of request arguments after cmd+tag, for the fixed-size requests.
REQUEST_ARGS = {Cmd.INFO: 0, Cmd.READ: 6, Cmd.START: 4, Cmd.STATUS: 0}
#: WRITE has 6 bytes of address/length then the data.
WRITE_HEADER = 6

#: STATUS reply payload: these 32-bit little-endian words in this order, then ``n_perf`` engine
#: performance counters.
STATUS_FIELDS = ("flags", "uptime_lo", "uptime_hi", "engine_cycles", "frames_ok", "frames_bad",
                 "rx_errors")
#: Bits of the STATUS ``flags`` word.
FLAG_BUSY, FLAG_DONE = 1 << 0, 1 << 1
#: bits 8..15 of ``flags``: the engine's error code (0 = none).
#: bits 16..31 of ``flags``: the memory's status (``mem_status``), on the ULX3S the SDRAM read
#: calibration (``hw.memory.sdram_cal.cal_result_layout``): bits 16..19 capture position in use,
#: bits 20..27 one bit per position that read the pattern back, bit 28 ``ok``, bit 29 ``done``.
MEM_STATUS_SHIFT = 16

BOARD_NAME_LEN = 16


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


#: the CRC-32's reflected polynomial (zlib's, IEEE 802.3)
CRC32_POLY = 0xEDB88320


def crc32_update(reg: int, byte: int) -> int:
    """Bit-serial reference of the hardware's per-byte CRC step (reflected, :data:`CRC32_POLY`)."""
    reg ^= byte
    for _ in range(8):
        reg = (reg >> 1) ^ (CRC32_POLY if reg & 1 else 0)
    return reg


# ---------------------------------------------------------------- COBS

def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (without the trailing delimiter)."""
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


class CobsError(ValueError):
    pass


def cobs_decode(enc: bytes) -> bytes:
    """Decode one COBS-encoded frame (no zero bytes, no delimiter); raise CobsError if malformed."""
    out = bytearray()
    i = 0
    n = len(enc)
    while i < n:
        code = enc[i]
        if code == 0:
            raise CobsError("zero byte inside frame")
        i += 1
        if i + code - 1 > n:
            raise CobsError("block runs past end of frame")
        block = enc[i:i + code - 1]
        if 0 in block:
            raise CobsError("zero byte inside frame")
        out += block
        i += code - 1
        if code != 255 and i < n:
            out.append(0)
    return bytes(out)


def frame(body: bytes) -> bytes:
    """Wire bytes of one frame: COBS(body || CRC32) and the 0x00 delimiter."""
    return cobs_encode(body + struct.pack("<I", crc32(body))) + b"\x00"


def frame_overhead(body_len: int) -> int:
    """Wire bytes added to a body of ``body_len`` bytes (CRC, worst-case COBS, delimiter)."""
    n = body_len + 4
    return 4 + (n // 254 + 1) + 1


class Deframer:
    """Incremental receiver: feed wire bytes, get decoded frame contents.

    Yields ``(body, error)`` per non-empty frame, where ``error`` is ``None`` or a
    :class:`Status` (BAD_FRAME for COBS errors and runts, BAD_CRC).
    """

    def __init__(self, max_frame: int = 1 << 20):
        self.buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes):
        out = []
        for b in data:
            if b != 0:
                if len(self.buf) <= self.max_frame:
                    self.buf.append(b)
                continue
            if not self.buf:
                continue
            enc, self.buf = bytes(self.buf), bytearray()
            out.append(check_frame(enc))
        return out


def check_frame(enc: bytes):
    """Decode the COBS bytes of one frame: ``(body, None)`` or ``(partial_or_empty, Status)``."""
    try:
        raw = cobs_decode(enc)
    except CobsError:
        return b"", Status.BAD_FRAME
    if len(raw) < 4:
        return raw, Status.BAD_FRAME
    body, crc = raw[:-4], raw[-4:]
    if struct.unpack("<I", crc)[0] != crc32(body):
        return body, Status.BAD_CRC
    return body, None


# ---------------------------------------------------------------- requests and replies

def req_info(tag: int) -> bytes:
    return bytes([Cmd.INFO, tag & 0xFF])


def req_status(tag: int) -> bytes:
    return bytes([Cmd.STATUS, tag & 0xFF])


def req_write(tag: int, addr: int, data: bytes) -> bytes:
    return bytes([Cmd.WRITE, tag & 0xFF]) + struct.pack("<IH", addr, len(data)) + bytes(data)


def req_read(tag: int, addr: int, length: int) -> bytes:
    return bytes([Cmd.READ, tag & 0xFF]) + struct.pack("<IH", addr, length)


def req_start(tag: int, prog_addr: int) -> bytes:
    return bytes([Cmd.START, tag & 0xFF]) + struct.pack("<I", prog_addr)


@dataclass
class Reply:
    cmd: int
    tag: int
    status: int
    payload: bytes = b""

    @classmethod
    def parse(cls, body: bytes) -> "Reply":
        if len(body) < 3:
            raise ValueError(f"reply too short ({len(body)} bytes)")
        return cls(body[0], body[1], body[2], bytes(body[3:]))

    def body(self) -> bytes:
        return bytes([self.cmd, self.tag, self.status]) + self.payload


# ---------------------------------------------------------------- device information

@dataclass
class DeviceInfo:
    """What ``INFO`` returns.  Packed as ``INFO_FORMAT`` (little-endian)."""
    board: str = "sim"
    clock_hz: int = 0
    baud: int = 0
    mem_bytes: int = 0
    word_bytes: int = 4
    max_payload: int = 1024
    pe_rows: int = 0
    pe_cols: int = 0
    buffer_bytes: int = 0
    n_perf: int = 0
    version_hash: int = 0
    protocol: int = PROTOCOL_VERSION

    FORMAT = "<4sBB16sIIIHHBBIBQ"
    MAGIC = b"BFUS"

    def pack(self) -> bytes:
        name = self.board.encode()[:BOARD_NAME_LEN].ljust(BOARD_NAME_LEN, b"\0")
        return struct.pack(self.FORMAT, self.MAGIC, self.protocol, 0, name, self.clock_hz,
                           self.baud, self.mem_bytes, self.word_bytes, self.max_payload,
                           self.pe_rows, self.pe_cols, self.buffer_bytes, self.n_perf,
                           self.version_hash)

    @classmethod
    def unpack(cls, data: bytes) -> "DeviceInfo":
        size = struct.calcsize(cls.FORMAT)
        if len(data) != size:
            raise ValueError(f"device info is {len(data)} bytes, expected {size}")
        (magic, proto, _, name, clock, baud, mem, wb, maxp, rows, cols, buf, nperf,
         vh) = struct.unpack(cls.FORMAT, data)
        if magic != cls.MAGIC:
            raise ValueError(f"bad device info magic {magic!r}")
        return cls(board=name.rstrip(b"\0").decode(errors="replace"), clock_hz=clock, baud=baud,
                   mem_bytes=mem, word_bytes=wb, max_payload=maxp, pe_rows=rows, pe_cols=cols,
                   buffer_bytes=buf, n_perf=nperf, version_hash=vh, protocol=proto)


def gateware_version_hash(paths=None) -> int:
    """64-bit hash of the gateware sources (``hw/**/*.py``), stamped into the INFO record."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / "hw"
    files = sorted(paths or root.rglob("*.py"))
    h = hashlib.sha256()
    for p in files:
        p = pathlib.Path(p).resolve()
        name = p.relative_to(root) if root in p.parents else p.name
        h.update(str(name).encode() + b"\0" + p.read_bytes())
    return int.from_bytes(h.digest()[:8], "little")


# ---------------------------------------------------------------- reference model

@dataclass
class DeviceModel:
    """Python reference of the device's command semantics (what ``hw/link/command.py`` implements).

    ``handle(enc)`` takes the COBS bytes of one frame (no delimiter) and returns the reply body,
    or ``None`` for an empty frame.  ``max_frame`` is the device's frame buffer in decoded bytes
    (``8 + max_payload + 4``): longer frames are answered ``TOO_LONG``.
    """
    info: DeviceInfo
    mem: bytearray = None
    busy: bool = False
    counters: dict = field(default_factory=lambda: {"frames_ok": 0, "frames_bad": 0})

    def __post_init__(self):
        if self.mem is None:
            self.mem = bytearray(self.info.mem_bytes)

    @property
    def max_frame(self) -> int:
        return 2 + WRITE_HEADER + self.info.max_payload + 4

    def handle(self, enc: bytes):
        if not enc:
            return None
        st, cmd, tag, payload = self._handle(enc)
        if st == Status.OK:
            self.counters["frames_ok"] += 1
        else:
            self.counters["frames_bad"] += 1
        if payload is None:     # STATUS: counters include this request itself
            payload = self.status_payload()
        return bytes([cmd, tag, st]) + payload

    def status_payload(self) -> bytes:
        """STATUS words the model can know: flags, frame counters; timing words are zero."""
        words = dict.fromkeys(STATUS_FIELDS, 0)
        words["flags"] = FLAG_BUSY if self.busy else 0
        words.update(self.counters)
        return struct.pack(f"<{len(STATUS_FIELDS) + self.info.n_perf}I",
                           *[words[k] for k in STATUS_FIELDS], *([0] * self.info.n_perf))

    def _handle(self, enc):
        try:
            raw = cobs_decode(enc)
            cobs_ok = True
        except CobsError:
            raw, cobs_ok = _cobs_decode_lenient(enc), False
        cmd = raw[0] if len(raw) > 0 else 0
        tag = raw[1] if len(raw) > 1 else 0
        if not cobs_ok or len(raw) < 6:
            return Status.BAD_FRAME, cmd, tag, b""
        if len(raw) > self.max_frame:
            return Status.TOO_LONG, cmd, tag, b""
        body, crc = raw[:-4], raw[-4:]
        if struct.unpack("<I", crc)[0] != crc32(body):
            return Status.BAD_CRC, cmd, tag, b""
        if cmd not in {c.value for c in Cmd}:
            return Status.UNKNOWN_CMD, cmd, tag, b""
        args = body[2:]
        wb = self.info.word_bytes
        if cmd == Cmd.WRITE:
            if len(args) < WRITE_HEADER:
                return Status.BAD_LENGTH, cmd, tag, b""
            addr, length = struct.unpack("<IH", args[:6])
            if len(args) != WRITE_HEADER + length:
                return Status.BAD_LENGTH, cmd, tag, b""
        elif len(args) != REQUEST_ARGS[Cmd(cmd)]:
            return Status.BAD_LENGTH, cmd, tag, b""
        if cmd in (Cmd.WRITE, Cmd.READ):
            addr, length = struct.unpack("<IH", args[:6])
            if (length == 0 or length > self.info.max_payload or addr % wb or length % wb
                    or addr + length > self.info.mem_bytes):
                return Status.BAD_ADDRESS, cmd, tag, b""
            if cmd == Cmd.WRITE:
                self.mem[addr:addr + length] = args[6:]
                return Status.OK, cmd, tag, b""
            return Status.OK, cmd, tag, bytes(self.mem[addr:addr + length])
        if cmd == Cmd.INFO:
            return Status.OK, cmd, tag, self.info.pack()
        if cmd == Cmd.START:
            if self.busy:
                return Status.BUSY, cmd, tag, b""
            return Status.OK, cmd, tag, b""
        return Status.OK, cmd, tag, None    # STATUS, filled in by handle()


def _cobs_decode_lenient(enc: bytes) -> bytes:
    """What the hardware decoder has seen when a COBS error hits: enough to recover cmd/tag."""
    out = bytearray()
    i = 0
    while i < len(enc):
        code = enc[i]
        i += 1
        block = enc[i:i + code - 1]
        out += block
        i += code - 1
        if code != 255 and i < len(enc):
            out.append(0)
    return bytes(out)


def status_len(n_perf: int) -> int:
    return 4 * (len(STATUS_FIELDS) + n_perf)


def parse_status(payload: bytes, n_perf: int) -> dict:
    words = struct.unpack(f"<{len(STATUS_FIELDS) + n_perf}I", payload)
    d = dict(zip(STATUS_FIELDS, words))
    d["uptime"] = d.pop("uptime_lo") | (d.pop("uptime_hi") << 32)
    d["busy"] = bool(d["flags"] & FLAG_BUSY)
    d["done"] = bool(d["flags"] & FLAG_DONE)
    d["engine_error"] = (d["flags"] >> 8) & 0xFF
    mem = d["flags"] >> MEM_STATUS_SHIFT
    d["sdram_cal"] = {"done": bool(mem >> 13 & 1), "ok": bool(mem >> 12 & 1),
                      "position": mem & 0xF, "passed": [p for p in range(8) if mem >> (4 + p) & 1]}
    d["perf"] = list(words[len(STATUS_FIELDS):])
    return d
