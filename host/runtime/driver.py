"""Host driver: one Python API over the blockfuse link, on a real board or the simulated one.

    from host.runtime.driver import Device
    with Device.open("sim") as dev:                   # or "serial:/dev/ttyUSB0[@BAUD|@BOARD]"
        print(dev.info())
        dev.write(0x100, data)                        # any length: split into frames
        assert dev.read(0x100, len(data)) == data
        dev.start(prog_addr); dev.wait_idle()
        print(dev.status())

Both transports carry exactly the same bytes (``host/runtime/protocol.py``): ``serial:PORT`` goes
through pyserial; ``sim`` starts the Verilated link SoC (``sim/link_sim.py``) whose real UART
receives and sends them.

Baud rate: ``serial:PORT@BAUD`` opens the port at BAUD, ``serial:PORT@BOARD`` at the baud rate of
that board's default bitstream (:data:`BOARD_BAUDS`: ULX3S 3 Mbaud on its FT231X, iCEBreaker
6 Mbaud on the FT2232H's second port, B), and a bare ``serial:PORT`` tries each board's rate in
turn until INFO answers (the INFO record then names the board and its exact rate).

Robustness: every request carries a tag and is resent when its reply does not come within
``timeout`` seconds or comes back damaged (bad CRC at either end); after ``retries`` resends the
call raises :class:`NoReply`, one line naming the target.  Large transfers are split into frames
of the device's ``max_payload`` and pipelined (``window`` frames in flight); WRITE and READ are
idempotent, so a resend after a lost reply is harmless.  A tqdm progress bar is shown for
transfers of ``progress_min`` bytes or more when stderr is a terminal (or ``progress=True``).
"""
from __future__ import annotations

import random
import sys
import time

from host.runtime import protocol as P
from host.errors import UserError


class DeviceError(UserError):
    """The device or the link failed; the message is one line for the user."""


class NoReply(DeviceError):
    pass


class CommandRefused(DeviceError):
    def __init__(self, msg, status):
        super().__init__(msg)
        self.status = status


#: statuses meaning "the request was damaged on the way": resend it
RETRYABLE = {P.Status.BAD_FRAME, P.Status.BAD_CRC, P.Status.TOO_LONG}


# ---------------------------------------------------------------- transports

def board_bauds() -> dict:
    """Link baud rate of each board's default bitstream, by board family (``ulx3s``,
    ``icebreaker``), from the board table the bitstreams are built from."""
    from hw.soc.top import BOARDS, pick_baud
    out = {}
    for spec in BOARDS.values():
        out.setdefault(spec.name.split("-")[0], pick_baud(spec.clk_hz, spec.baud))
    return out


#: ``{"ulx3s": 3000000, "icebreaker": 6000000}``
BOARD_BAUDS = board_bauds()


def parse_serial_spec(spec: str) -> tuple[str, list[int]]:
    """``PORT[@BAUD|@BOARD]`` → (port, baud rates to try in order)."""
    port, _, suffix = spec.partition("@")
    if not port:
        raise DeviceError("serial target needs a port, e.g. serial:/dev/ttyUSB0")
    if not suffix:
        return port, list(dict.fromkeys(BOARD_BAUDS.values()))
    family = suffix.split("-")[0]
    if family in BOARD_BAUDS:
        return port, [BOARD_BAUDS[family]]
    try:
        baud = int(suffix)
    except ValueError:
        raise DeviceError(f"serial:{spec}: after @ give a baud rate or a board "
                          f"({', '.join(BOARD_BAUDS)})") from None
    if baud <= 0:
        raise DeviceError(f"serial:{spec}: baud rate must be positive")
    return port, [baud]


class SerialTransport:
    """``serial:PORT`` at one baud rate (``PORT@BAUD``; a bare ``PORT`` opens at the first of
    :func:`parse_serial_spec`'s rates, :meth:`Device.open` tries the others)."""

    default_timeout = 1.0

    def __init__(self, spec: str):
        port, bauds = parse_serial_spec(spec)
        self.baud = bauds[0]
        try:
            import serial
        except ImportError:
            raise DeviceError("pyserial is not installed") from None
        try:
            self.ser = serial.Serial(port, self.baud, timeout=0.01)
        except (serial.SerialException, OSError, ValueError) as e:
            raise DeviceError(f"cannot open serial port {port}: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        self.name = f"serial:{port}"

    def write(self, data: bytes):
        import serial
        try:
            self.ser.write(data)
        except serial.SerialException as e:
            raise DeviceError(f"{self.name}: write failed: {e}") from None

    def read(self, timeout: float) -> bytes:
        import serial
        try:
            # the port keeps its short timeout (changing it reconfigures the port each time)
            deadline = time.monotonic() + timeout
            while True:
                data = self.ser.read(max(1, self.ser.in_waiting))
                if data or time.monotonic() >= deadline:
                    return data
        except serial.SerialException as e:
            raise DeviceError(f"{self.name}: read failed: {e}") from None

    def close(self):
        self.ser.close()


class SimTransport:
    """``sim``: the Verilated link SoC over a loopback socket (see ``sim/link_sim.py``)."""

    default_timeout = 20.0     # wall-clock seconds; the simulation runs ~10^5 bits/s

    def __init__(self, config=None, stop_after=None, image=None):
        try:
            from sim.link_sim import SimConfig, SimDevice
        except ImportError as e:
            raise DeviceError(f"simulation support missing: {e}") from None
        try:
            self.sim = SimDevice(config or SimConfig(), stop_after=stop_after, image=image)
        except Exception as e:      # build or start failure: one line, with the log to read
            raise DeviceError(f"cannot start the simulated device: {e}") from None
        self.sock = self.sim.sock
        self.name = "sim"

    def write(self, data: bytes):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise DeviceError(f"simulated device is gone ({e})") from None

    def read(self, timeout: float) -> bytes:
        import select
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return b""
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:                      # simulator exited: behaves like a silent device
            time.sleep(min(timeout, 0.05))
        return data

    def close(self):
        self.sim.close()


def open_transport(target: str, **kw):
    if target == "sim":
        return SimTransport(**kw)
    if target.startswith("serial:"):
        return SerialTransport(target[len("serial:"):])
    raise DeviceError(f"unknown target {target!r} (use sim or serial:PORT)")


# ---------------------------------------------------------------- device

class Device:
    """A blockfuse device behind ``transport`` (anything with write/read(timeout)/close)."""

    def __init__(self, transport, *, timeout: float | None = None, retries: int = 3,
                 window: int = 4, progress: bool | None = None, progress_min: int = 65536):
        self.t = transport
        self.name = getattr(transport, "name", "device")
        self.timeout = timeout if timeout is not None else getattr(transport, "default_timeout",
                                                                   1.0)
        self.retries = retries
        self.window = window
        self.progress = progress
        self.progress_min = progress_min
        self._tag = random.randrange(256)
        self._rx = P.Deframer()
        self._info = None
        self.stats = {"frames": 0, "resent": 0, "bad_replies": 0, "stale_replies": 0}

    @classmethod
    def open(cls, target: str, **kw) -> "Device":
        tkw = {k: kw.pop(k) for k in ("config", "stop_after") if k in kw}
        if target.startswith("serial:"):
            port, bauds = parse_serial_spec(target[len("serial:"):])
            if len(bauds) > 1:
                return cls._probe(port, bauds, **kw)
        return cls(open_transport(target, **tkw), **kw)

    @classmethod
    def _probe(cls, port: str, bauds: list[int], **kw) -> "Device":
        """Open ``port`` at each rate in turn until INFO answers (one short try per rate)."""
        probe_timeout = min(kw.get("timeout") or 0.3, 0.3)
        for baud in bauds:
            dev = cls(SerialTransport(f"{port}@{baud}"), timeout=probe_timeout, retries=1)
            try:
                dev.info()
            except DeviceError:
                dev.close()
                continue
            dev.close()
            return cls(SerialTransport(f"{port}@{baud}"), **kw)
        raise NoReply(f"no reply from serial:{port} at {' or '.join(f'{b:,}' for b in bauds)} "
                      f"baud (the boards' defaults): is the device connected, powered and "
                      f"running blockfuse gateware? (serial:{port}@BAUD for another rate)")

    def close(self):
        self.t.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ transactions

    def _next_tag(self):
        self._tag = (self._tag + 1) & 0xFF
        return self._tag

    def _transact(self, make_bodies, n, bar=None, sizes=None):
        """Send ``n`` requests (``make_bodies(i, tag)`` builds request i), up to ``window`` in
        flight; return the replies in order.  Resends on timeouts and damaged frames."""
        replies = [None] * n
        inflight = {}          # tag -> [index, body, tries, deadline]
        nxt = 0
        done = 0
        while done < n:
            while nxt < n and len(inflight) < self.window:
                tag = self._next_tag()
                body = make_bodies(nxt, tag)
                self.t.write(P.frame(body))
                self.stats["frames"] += 1
                inflight[tag] = [nxt, body, 0, time.monotonic() + self.timeout]
                nxt += 1
            soonest = min(v[3] for v in inflight.values())
            data = self.t.read(max(0.0, min(soonest - time.monotonic(), 0.5)))
            for body, err in self._rx.feed(data):
                if err is not None or len(body) < 3:
                    self.stats["bad_replies"] += 1   # damaged reply: its request times out
                    continue
                r = P.Reply.parse(body)
                ent = inflight.get(r.tag)
                if ent is None or ent[1][0] != r.cmd:
                    self.stats["stale_replies"] += 1
                    continue
                if r.status in RETRYABLE:
                    self._resend(r.tag, ent, why=P.Status(r.status).name)
                    continue
                del inflight[r.tag]
                replies[ent[0]] = r
                done += 1
                if bar is not None:
                    bar.update(sizes[ent[0]] if sizes else 1)
            now = time.monotonic()
            for tag, ent in list(inflight.items()):
                if ent[3] <= now:
                    self._resend(tag, ent, why="timeout")
        return replies

    def _resend(self, tag, ent, why):
        ent[2] += 1
        if ent[2] > self.retries:
            if why == "timeout":
                raise NoReply(f"no reply from {self.name} after {self.retries + 1} tries "
                              f"({self.timeout:g} s each): is the device connected, powered "
                              f"and running blockfuse gateware?")
            raise DeviceError(f"{self.name}: request refused as {why} {ent[2]} times "
                              f"(noisy link?)")
        self.stats["resent"] += 1
        self.t.write(P.frame(ent[1]))
        ent[3] = time.monotonic() + self.timeout

    def _one(self, make_body):
        return self._check(self._transact(lambda i, tag: make_body(tag), 1)[0])

    def _check(self, r):
        if r.status != P.Status.OK:
            name = P.Status(r.status).name if r.status in set(P.Status) else hex(r.status)
            cmd = P.Cmd(r.cmd).name if r.cmd in set(P.Cmd) else f"command {r.cmd:#04x}"
            raise CommandRefused(f"{self.name} refused {cmd}: {name}", r.status)
        return r

    def _bar(self, total, desc):
        show = self.progress if self.progress is not None else (
            total >= self.progress_min and sys.stderr.isatty())
        if not show:
            return None
        from tqdm import tqdm
        return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr,
                    leave=False)

    # ------------------------------------------------------------ commands

    def info(self) -> P.DeviceInfo:
        if self._info is None:
            r = self._one(P.req_info)
            try:
                self._info = P.DeviceInfo.unpack(r.payload)
            except ValueError as e:
                raise DeviceError(f"{self.name}: not a blockfuse device ({e})") from None
            if self._info.protocol != P.PROTOCOL_VERSION:
                raise DeviceError(f"{self.name} speaks protocol {self._info.protocol}, this "
                                  f"driver {P.PROTOCOL_VERSION}")
        return self._info

    def _chunks(self, addr, length):
        info = self.info()
        wb, step = info.word_bytes, info.max_payload
        if addr % wb or length % wb:
            raise DeviceError(f"address and length must be multiples of {wb} bytes")
        if addr < 0 or addr + length > info.mem_bytes:
            raise DeviceError(f"range 0x{addr:x}+{length} is outside the device's "
                              f"{info.mem_bytes} bytes of memory")
        return [(a, min(step, addr + length - a)) for a in range(addr, addr + length, step)]

    def write(self, addr: int, data: bytes):
        data = bytes(data)
        chunks = self._chunks(addr, len(data))
        bar = self._bar(len(data), "write")
        try:
            reps = self._transact(
                lambda i, tag: P.req_write(tag, chunks[i][0],
                                           data[chunks[i][0] - addr:][:chunks[i][1]]),
                len(chunks), bar, [c[1] for c in chunks])
        finally:
            if bar is not None:
                bar.close()
        for r in reps:
            self._check(r)

    def read(self, addr: int, length: int) -> bytes:
        chunks = self._chunks(addr, length)
        bar = self._bar(length, "read")
        try:
            # replies to reads are long: two in flight keep the line busy without flooding
            saved, self.window = self.window, min(self.window, 2)
            reps = self._transact(lambda i, tag: P.req_read(tag, *chunks[i]), len(chunks), bar,
                                  [c[1] for c in chunks])
        finally:
            self.window = saved
            if bar is not None:
                bar.close()
        out = bytearray()
        for (a, n), r in zip(chunks, reps):
            self._check(r)
            if len(r.payload) != n:
                raise DeviceError(f"{self.name}: READ of {n} bytes returned {len(r.payload)}")
            out += r.payload
        return bytes(out)

    def start(self, prog_addr: int):
        self._one(lambda tag: P.req_start(tag, prog_addr))

    def status(self) -> dict:
        r = self._one(P.req_status)
        n_perf = self.info().n_perf
        if len(r.payload) != P.status_len(n_perf):
            raise DeviceError(f"{self.name}: STATUS reply has {len(r.payload)} bytes")
        return P.parse_status(r.payload, n_perf)

    def wait_idle(self, timeout: float = 60.0, poll: float = 0.01,
                  max_poll: float = 0.1) -> dict:
        """Poll STATUS until the engine is not busy; returns the last status.  The pause
        between polls starts at ``poll`` seconds and doubles up to ``max_poll``: a short run is
        seen ending soon, and a long one does not keep the link busy with STATUS (a simulated
        SoC polled every 10 ms was sending STATUS replies for the whole run)."""
        t_end = time.monotonic() + timeout
        while True:
            st = self.status()
            if not st["busy"]:
                return st
            if time.monotonic() > t_end:
                raise DeviceError(f"{self.name}: engine still busy after {timeout:g} s")
            time.sleep(poll)
            poll = min(2 * poll, max(poll, max_poll))

    def selftest(self, nbytes: int | None = None, seed: int = 1, addr: int = 0) -> dict:
        """Write random data, read it back, compare; returns figures, raises on a mismatch."""
        info = self.info()
        nbytes = nbytes or info.mem_bytes - addr
        nbytes -= nbytes % info.word_bytes
        data = random.Random(seed).randbytes(nbytes)
        t0 = time.monotonic()
        self.write(addr, data)
        t1 = time.monotonic()
        back = self.read(addr, nbytes)
        t2 = time.monotonic()
        if back != data:
            bad = next(i for i in range(nbytes) if back[i] != data[i])
            raise DeviceError(f"{self.name}: selftest mismatch at 0x{addr + bad:x} "
                              f"(wrote {data[bad]:#04x}, read {back[bad]:#04x})")
        st = self.status()
        return {"bytes": nbytes, "write_s": t1 - t0, "read_s": t2 - t1,
                "resent": self.stats["resent"], "frames_ok": st["frames_ok"],
                "frames_bad": st["frames_bad"], "rx_errors": st["rx_errors"]}


def open_device(port: str) -> Device:
    """Entry point of ``blockfuse run --target serial:PORT`` (``host/cli/run.py``): the opened
    board, if its gateware is an accelerator (its INFO names an engine and the controller's
    counters, ``hw.soc.controller.PERF``); otherwise a one-line error naming what the board
    reported."""
    from hw.soc.controller import PERF
    dev = Device.open(f"serial:{port}")
    try:
        info = dev.info()
    except BaseException:
        dev.close()
        raise
    if info.pe_rows and info.n_perf == len(PERF):
        return dev
    dev.close()
    what = (f"a {info.pe_rows}x{info.pe_cols} engine but no network controller" if info.pe_rows
            else "no convolution engine (link-only gateware)")
    raise DeviceError(f"serial:{port} is a {info.board} board with {what}; it cannot run "
                      f"networks (use --target sim, or flash a bitstream with the accelerator)")
