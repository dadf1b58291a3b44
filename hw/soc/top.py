"""Board top-levels: clock, reset, memory, self-test, host link and status LEDs.

``BOARDS`` lists the supported boards; :class:`BoardTop` builds the SoC for one of them:

* **clock/reset** — ULX3S: 25 MHz oscillator → EHXPLLL → ``sync`` (100 MHz by default);
  iCEBreaker: 12 MHz → SB_PLL40_PAD → ``sync`` (42 MHz by default, see ``BOARDS``).
  Reset held until lock.
* **memory** — ULX3S: :class:`hw.memory.sdram_system.SDRAMSystem`: the SDRAM controller (32 MB,
  bursts of 2: 32-bit words, 23-bit word addresses) with the worst-case timings of every fitted
  SDRAM part (``hw/memory/sdram_parts.py``, or one part: ``sdram_part``), the PHY (ECP5 I/O
  registers; SDRAM clock from the PLL's CLKOS at the phase ``hw/memory/sdram_timing.py`` plans
  for the clock, or ``sdram_phase``) and the boot read calibration, whose result the host reads
  in STATUS.  Clocks outside ``sdram_timing.SUPPORTED_MHZ`` are refused.
  iCEBreaker: :class:`hw.memory.spram.SPRAMMemory` (128 KB as 32 K × 32-bit words).
* **initiators** on a :class:`hw.memory.memarb.MemPortArbiter`: port 0 = power-up self-test
  (:class:`hw.memory.memtest.MemTest`, starts when the memory is ready — on the ULX3S after the
  read calibration — runs once over the memory then hands it over; ``memtest=False`` leaves
  it out); then the host link (:class:`BoardLink`: UART + the link core
  of ``hw/soc/link_soc.py``; ``link_factory`` replaces it); further ports (``extra_initiators``)
  are where the engine's memory traffic plugs in, and ``BoardLink(engine=…)`` is where its
  control port plugs in.
* **pins** — only as the boards' schematics allow (``hw/soc/board_pins.py``, checked at
  elaboration): ULX3S ``uart_tx_enable`` (L3, the FT231X's TXDEN output) is left alone, the
  UART RX pin has a pull-up, ESP32 GPIO0 (L2) is held high.
* **LEDs** — ULX3S: 0 heartbeat, 1 memory initialised, 2 self-test passed, 3 self-test failed,
  4 link activity, 5 SDRAM read calibration found a window, 7 PLL locked.  iCEBreaker: green =
  self-test passed (blinks while running), red = self-test failed.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memarb import MemPortArbiter
from hw.memory.memtest import MemTest
from hw.soc.board_pins import PinUses, check_pins
from hw.soc.pll import ECP5ClockGen, ICE40ClockGen
from hw.memory.sdram import SDRAMController
from hw.memory.spram import SPRAMMemory
from hw.stream_slice import MemPortSlice, StreamSlice

__all__ = ["BoardSpec", "BOARDS", "BoardTop", "default_link_factory", "make_platform"]


@dataclass(frozen=True)
class BoardSpec:
    name: str
    family: str              # "ecp5" or "ice40"
    platform: str            # amaranth_boards class name
    module: str              # amaranth_boards module
    osc_hz: float
    clk_hz: float            # default system clock (with the host link; see BOARDS)
    baud: int                # fastest host-link baud rate of the board's USB-UART


# Default clocks are those at which the whole SoC, host link included, meets timing on every
# nextpnr seed tried (measured 2026-11, see bitstreams/*/report.json).  The link's command
# processor, COBS coder and the memory arbiter have registered handshakes and one-hot state
# (hw/link/command.py, hw/link/framing.py, hw/stream_slice.py) so the UP5K reaches 43-47 MHz; 42 MHz
# gives 6 Mbaud exactly (7 clocks per bit).
BOARDS = {
    **{f"ulx3s-{s}": BoardSpec(f"ulx3s-{s}", "ecp5", f"ULX3S_{s.upper()}_Platform", "ulx3s",
                               25e6, 100e6, 3_000_000)
       for s in ("12f", "25f", "45f", "85f")},
    "icebreaker": BoardSpec("icebreaker", "ice40", "ICEBreakerPlatform", "icebreaker",
                            12e6, 42e6, 12_000_000),
}

_BAUDS = (12_000_000, 6_000_000, 4_000_000, 3_000_000, 2_000_000, 1_000_000, 921_600,
          460_800, 230_400, 115_200)


def pick_baud(clk_freq: float, max_baud: int) -> int:
    """Fastest standard baud rate ≤ ``max_baud`` with ≥ 4 clocks per bit, within 2 %."""
    for baud in _BAUDS:
        if baud > max_baud:
            continue
        div = round(clk_freq / baud)
        if div >= 4 and abs(clk_freq / div - baud) / baud <= 0.02:
            return baud
    raise ValueError(f"no UART baud rate fits a {clk_freq / 1e6:.2f} MHz clock")


def make_platform(board: str):
    """An amaranth_boards platform instance for ``board``; on the ULX3S with a pull-up on the
    UART RX pin (amaranth_boards leaves it floating while the FT231X is unpowered)."""
    import importlib
    from amaranth.build import Attrs, Pins, Resource, Subsignal
    spec = BOARDS[board]
    mod = importlib.import_module(f"amaranth_boards.{spec.module}")
    cls = getattr(mod, spec.platform)
    if spec.family != "ecp5":
        return cls()
    uart = Resource("uart", 0,
                    Subsignal("rx", Pins("M1", dir="i"), Attrs(PULLMODE="UP")),
                    Subsignal("tx", Pins("L4", dir="o")),
                    Subsignal("rts", Pins("M3", dir="o")),
                    Subsignal("dtr", Pins("N1", dir="o")),
                    Attrs(IO_TYPE="LVCMOS33"))
    platform = type(cls.__name__, (cls,), {
        "resources": [r for r in cls.resources if r.name != "uart"] + [uart]})
    return platform()


class BoardLink(wiring.Component):
    """The host link on a board: UART → FIFO → COBS decoder → command processor → CRC appender
    → COBS encoder → FIFO → UART (the stages of :class:`hw.soc.link_soc.LinkCore`, here with a
    :class:`StreamSlice` between every two of them so the link runs at the board's system
    clock), with the command processor's memory port brought out as
    ``bus`` (an initiator on the board memory) and its engine control port on ``engine``
    (default :class:`hw.soc.link_soc.EngineStub`; **the engine's controller plugs in here**).

    Ports: ``bus: Out(mem_signature)``, ``rx: In(1)``, ``tx: Out(1)``, ``activity: Out(1)``
    (a frame or byte is in flight), ``mem_status: In(16)`` (STATUS ``flags`` bits 16…31).  INFO reports ``board``, the clock, the actual baud rate,
    ``mem_bytes`` and the word size of ``mem_signature``, and ``version_hash``.
    """

    def __init__(self, *, clk_freq: float, baud: int, mem_signature, board: str,
                 mem_bytes: int, version_hash: int = 0, engine=None, n_perf: int = 2,
                 max_payload: int = 1024):
        from host.runtime.protocol import DeviceInfo

        from hw.link.command import CommandProcessor, perf_inc_bits
        from hw.soc.link_soc import EngineStub
        from hw.link.uart import divisor_for
        self.divisor = divisor_for(int(clk_freq), baud)
        self.info = DeviceInfo(
            board=board, clock_hz=int(clk_freq), baud=int(clk_freq) // self.divisor,
            mem_bytes=mem_bytes, word_bytes=mem_signature.data_width // 8,
            max_payload=max_payload, n_perf=n_perf, version_hash=version_hash)
        self.engine = engine if engine is not None else EngineStub(n_perf)
        self.cp = CommandProcessor(self.info, mem_signature.addr_width,
                                   perf_inc_bits(self.engine))
        super().__init__({"bus": Out(mem_signature), "rx": In(1, init=1), "tx": Out(1, init=1),
                          "activity": Out(1), "mem_status": In(16)})

    def elaborate(self, platform):
        from hw.link.framing import COBSDecoder, COBSEncoder, CRCAppender, decoded_layout, \
            frame_byte_layout
        from hw.soc.link_soc import StreamFIFO
        from hw.link.uart import UARTRx, UARTTx
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.submodules.rx_fifo = rxf = StreamFIFO(8, 64)
        m.submodules.tx_fifo = txf = StreamFIFO(8, 16)
        m.submodules.dec = dec = COBSDecoder()
        m.submodules.cp = cp = self.cp
        m.submodules.crc = crc = CRCAppender()
        m.submodules.enc = enc = COBSEncoder()
        m.submodules.s_dec = s_dec = StreamSlice(decoded_layout, full_rate=False)
        m.submodules.s_cp = s_cp = StreamSlice(frame_byte_layout, full_rate=False)
        m.submodules.s_crc = s_crc = StreamSlice(frame_byte_layout, full_rate=False)
        m.submodules.engine = eng = self.engine
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        wiring.connect(m, urx.data, rxf.i)
        wiring.connect(m, rxf.o, dec.i)
        wiring.connect(m, dec.o, s_dec.i)
        wiring.connect(m, s_dec.o, cp.rx)
        wiring.connect(m, cp.tx, s_cp.i)
        wiring.connect(m, s_cp.o, crc.i)
        wiring.connect(m, crc.o, s_crc.i)
        wiring.connect(m, s_crc.o, enc.i)
        wiring.connect(m, enc.o, txf.i)
        wiring.connect(m, txf.o, utx.data)
        wiring.connect(m, cp.mem, wiring.flipped(self.bus))
        wiring.connect(m, cp.engine, eng.ctrl)
        idle = (urx.idle & rxf.empty & dec.idle & s_dec.empty & cp.idle & s_cp.empty
                & ~crc.o.valid & s_crc.empty & enc.idle & txf.empty & utx.idle)
        m.d.comb += [
            cp.rx_error.eq(urx.overrun | urx.frame_error),
            cp.mem_status.eq(self.mem_status),
            self.activity.eq(~idle),
        ]
        return m


def default_link_factory(*, board: BoardSpec, clk_freq: float, mem_signature, mem_bytes: int,
                         version_hash: int = 0):
    """LINK HOOK: the host link (:class:`BoardLink`) if its gateware (``hw/soc/link_soc.py``) is
    present, else ``None`` (the top then idles the UART).  Any replacement must return a
    component with ``bus`` (memory-port initiator of ``mem_signature``), ``rx``, ``tx`` and
    ``activity``."""
    try:
        from hw.soc import link_soc  # noqa: F401
    except ImportError:
        return None
    return BoardLink(clk_freq=clk_freq, baud=pick_baud(clk_freq, board.baud),
                     mem_signature=mem_signature,
                     board=board.name, mem_bytes=mem_bytes, version_hash=version_hash)


class BoardTop(Elaboratable):
    """SoC top-level for one board of :data:`BOARDS`.

    ``clk_freq`` overrides the board's default system clock (the PLL picks the closest it can
    make; see :attr:`clk_freq` after construction).  ``link_factory`` replaces the host link
    (``None`` result → no link, UART TX idles high).  ``extra_initiators`` is a list of callables
    ``f(mem_signature) -> component with a 'bus' initiator`` (the engine controller's hook).
    ``memtest_words`` limits the self-test (default: the whole memory); ``memtest=False``
    leaves it out (the LEDs then show no self-test: green blinks on the iCEBreaker; the host's
    ``blockfuse device selftest`` still tests the memory over the link).  ULX3S only:
    ``sdram_part`` builds the controller for one part of ``hw.memory.sdram_parts.PARTS``
    (default: the worst case of all), ``sdram_phase`` overrides the planned SDRAM clock phase
    (degrees behind the system clock).  Bad values raise ``ValueError`` with one line.
    """

    def __init__(self, board: str, *, clk_freq: float | None = None, link_factory=None,
                 link: bool = True,
                 extra_initiators=(), memtest_words: int | None = None, memtest: bool = True,
                 mem_slices: bool = True,
                 version_hash: int = 0, sdram_burst: int = 2, sdram_part: str | None = None,
                 sdram_phase: float | None = None):
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r}")
        self.spec = BOARDS[board]
        want = clk_freq or self.spec.clk_hz
        self.sdram_plan = None
        if self.spec.family == "ecp5":
            from hw.memory.sdram_parts import part
            from hw.memory.sdram_timing import check_clock, plan
            from hw.soc.pll import ecp5_pll_params
            self.clk_freq = ecp5_pll_params(self.spec.osc_hz, want).f_out
            check_clock(self.clk_freq)
            self.sdram_chip = part(sdram_part)
            self.sdram_plan = plan(self.clk_freq, self.sdram_chip, phase_deg=sdram_phase)
        else:
            if sdram_part is not None or sdram_phase is not None:
                raise ValueError(f"{board} has no SDRAM (--sdram and --sdram-phase are for "
                                 f"the ULX3S)")
            from hw.soc.pll import ice40_pll_params
            self.clk_freq = ice40_pll_params(self.spec.osc_hz, want).f_out
        self.link_factory = link_factory or default_link_factory
        if not link:
            self.link_factory = lambda **kw: None
        self.extra_initiators = list(extra_initiators)
        self.memtest_words = memtest_words
        self.memtest = memtest
        self.mem_slices = mem_slices
        self.version_hash = version_hash
        self.sdram_burst = sdram_burst
        self.has_link = None        # set at elaboration
        self.pins = PinUses()       # every pin used, checked against the schematic table

    def _request(self, platform, name, number=0, **uses):
        """``platform.request(name, number, dir="-")``, recording how each subsignal is used
        (``uses``: subsignal → "i"/"o"/"io"; ``_`` for a resource without subsignals)."""
        for sub, direction in uses.items():
            self.pins.use(name, number, None if sub == "_" else sub, direction)
        return platform.request(name, number, dir="-")

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        ecp5 = spec.family == "ecp5"

        # ---- clock and reset --------------------------------------------------------------
        m.domains.sync = cd_sync = ClockDomain("sync")
        if ecp5:
            osc = self._request(platform, "clk25", _="i")
            m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
            # the SDRAM clock: CLKOS, the planned phase behind the system clock
            m.domains.sdram = cd_sdram = ClockDomain("sdram", reset_less=True)
            m.submodules.clkgen = clkgen = ECP5ClockGen(
                osc_buf.i, spec.osc_hz, self.clk_freq, cd_sync, shifted_cd=cd_sdram,
                shift_deg=self.sdram_plan.phase_deg)
        else:
            osc = self._request(platform, "clk12", _="i")
            m.submodules.clkgen = clkgen = ICE40ClockGen(osc.io, spec.osc_hz, self.clk_freq,
                                                         cd_sync)

        # ---- memory -----------------------------------------------------------------------
        if ecp5:
            from hw.memory.sdram_system import SDRAMSystem
            plan = self.sdram_plan
            pads = self._request(platform, "sdram", **{s: "o" for s in (
                "clk", "clk_en", "cs", "we", "cas", "ras", "dqm", "ba", "a")}, dq="io")
            m.submodules.mem = mem = SDRAMSystem(
                self.clk_freq, self.sdram_chip, pads, cas_latency=plan.cas_latency,
                capture_cycle=plan.capture_cycle, burst_length=self.sdram_burst)
            mem_ready = mem.ready
            mem_bytes = 1 << (mem.chip.addr_width + 1)
        else:
            m.submodules.mem = mem = SPRAMMemory(32)
            mem_ready = Signal(init=1)
            mem_bytes = mem.depth * 4
        sig = mem.bus.signature.flip()
        aw, dw = sig.addr_width, sig.data_width

        # ---- initiators -------------------------------------------------------------------
        uart = self._request(platform, "uart", 0, tx="o", rx="i")
        link = self.link_factory(board=spec, clk_freq=self.clk_freq, mem_signature=sig,
                                 mem_bytes=mem_bytes, version_hash=self.version_hash)
        self.has_link = link is not None
        inits = []
        if self.memtest:
            words = self.memtest_words or (1 << aw)
            m.submodules.memtest = memtest = MemTest(aw, dw, words)
            m.d.comb += memtest.start.eq(mem_ready)
            inits.append(memtest)
        if link is not None:
            m.submodules.link = link
            inits.append(link)
            if ecp5 and "mem_status" in link.signature.members:
                m.d.comb += link.mem_status.eq(mem.cal.as_value())
        for i, f in enumerate(self.extra_initiators):
            c = f(sig)
            m.submodules[f"initiator{i}"] = c
            inits.append(c)

        if not inits:
            raise ValueError(f"{spec.name}: a top without the self-test, the host link and an "
                             f"engine leaves its memory unused")
        # enough read tags for every read the memory can have outstanding
        # Register slices on every side of the arbiter (unless ``mem_slices=False``): its grant
        # and read-tag logic then sees only registers, not the initiators' state machines or the
        # memory's ready logic.
        m.submodules.arb = arb = MemPortArbiter(len(inits), aw, dw,
                                                max_reads=16 if ecp5 else 8)
        if not self.mem_slices:
            wiring.connect(m, arb.out, mem.bus)
            for i, c in enumerate(inits):
                wiring.connect(m, c.bus, arb.bus(i))
        else:
            m.submodules.mem_slice = mem_slice = MemPortSlice(sig)
            wiring.connect(m, arb.out, mem_slice.target)
            wiring.connect(m, mem_slice.initiator, mem.bus)
            for i, c in enumerate(inits):
                m.submodules[f"bus_slice{i}"] = bus_slice = MemPortSlice(sig)
                wiring.connect(m, c.bus, bus_slice.target)
                wiring.connect(m, bus_slice.initiator, arb.bus(i))

        # ---- UART pins --------------------------------------------------------------------
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        activity = Signal()
        if link is not None:
            m.d.comb += [tx_buf.o.eq(link.tx), link.rx.eq(rx_buf.i), activity.eq(link.activity)]
        else:
            m.d.comb += tx_buf.o.eq(1)
        if ecp5:
            # L3 (uart_tx_enable) is the FT231X's TXDEN output: not requested, never driven.
            # ESP32 GPIO0 held high: the ESP32 boots from its flash, never into its loader.
            esp = self._request(platform, "esp32", 0, gpio0="io")
            m.submodules.esp32_gpio0 = gpio0 = io.Buffer("o", esp.gpio0)
            m.d.comb += gpio0.o.eq(1)

        # ---- LEDs -------------------------------------------------------------------------
        beat = Signal(max(1, int(self.clk_freq).bit_length() - 1))   # ~0.5-1 Hz blink
        m.d.sync += beat.eq(beat + 1)
        blink = beat[-1]
        if self.memtest:
            passed = memtest.done & (memtest.errors == 0)
            failed = memtest.errors != 0
            running = memtest.busy
        else:
            passed = failed = 0
            running = 1
        if ecp5:
            leds = [blink, mem.init_done, passed, failed, activity, mem.cal.ok, 0, clkgen.locked]
        else:
            leds = [failed, passed | (running & blink)]
        for i, v in enumerate(leds):
            led = self._request(platform, "led", i, _="o")
            m.submodules[f"led{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(v)
        check_pins(spec.name, self.pins)
        return m
