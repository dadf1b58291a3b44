"""Board top-levels: clock, reset, memory, self-test, host link and status LEDs.

``BOARDS`` lists the supported boards; :class:`BoardTop` builds the SoC for one of them:

* **clock/reset** — ULX3S: 25 MHz oscillator → EHXPLLL → ``sync`` (100 MHz by default);
  iCEBreaker: 12 MHz → SB_PLL40_PAD → ``sync`` (48 MHz by default).  Reset held until lock.
* **memory** — ULX3S: :class:`hw.sdram.SDRAMController` (32 MB, 16-bit words, 24-bit word
  addresses) behind ECP5 I/O registers, SDRAM clock = inverted system clock from an ODDR;
  iCEBreaker: :class:`hw.spram.SPRAMMemory` (128 KB as 32 K × 32-bit words).
* **initiators** on a :class:`hw.memarb.MemPortArbiter`: port 0 = power-up self-test
  (:class:`hw.memtest.MemTest`, runs once over the memory then hands it over); port 1 = the host
  link (``link_factory``, see :func:`default_link_factory`) — **the hook where the UART command
  processor plugs in**; further ports (``extra_initiators``) are where the engine's controller
  plugs in.
* **LEDs** — ULX3S: 0 heartbeat, 1 memory initialised, 2 self-test passed, 3 self-test failed,
  4 link activity, 7 PLL locked.  iCEBreaker: green = self-test passed (blinks while running),
  red = self-test failed.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io, wiring

from .memarb import MemPortArbiter
from .memtest import MemTest
from .pll import ECP5ClockGen, ICE40ClockGen
from .sdram import SDRAMController
from .spram import SPRAMMemory

__all__ = ["BoardSpec", "BOARDS", "BoardTop", "default_link_factory", "make_platform"]


@dataclass(frozen=True)
class BoardSpec:
    name: str
    family: str              # "ecp5" or "ice40"
    platform: str            # amaranth_boards class name
    module: str              # amaranth_boards module
    osc_hz: float
    clk_hz: float            # default system clock
    baud: int                # host link


BOARDS = {
    **{f"ulx3s-{s}": BoardSpec(f"ulx3s-{s}", "ecp5", f"ULX3S_{s.upper()}_Platform", "ulx3s",
                               25e6, 100e6, 3_000_000)
       for s in ("12f", "25f", "45f", "85f")},
    "icebreaker": BoardSpec("icebreaker", "ice40", "ICEBreakerPlatform", "icebreaker",
                            12e6, 48e6, 12_000_000),
}


def make_platform(board: str):
    """An amaranth_boards platform instance for ``board``."""
    import importlib
    spec = BOARDS[board]
    mod = importlib.import_module(f"amaranth_boards.{spec.module}")
    return getattr(mod, spec.platform)()


def default_link_factory(*, board: BoardSpec, clk_freq: float, mem_signature, uart):
    """The host link, if its gateware exists: returns an Elaboratable with a ``bus``
    memory-port initiator (``mem_signature``) and an ``activity`` signal, wired to ``uart``
    (a platform UART pin group), or ``None``.

    LINK HOOK: the command processor (``hw/link_soc.py``) is expected to provide
    ``LinkSoC(clk_freq=, baud=, mem_signature=, board=)`` with ports ``bus`` (initiator),
    ``tx`` (Out 1), ``rx`` (In 1) and optionally ``activity`` (Out 1).
    """
    try:
        from . import link_soc
    except ImportError:
        return None
    cls = getattr(link_soc, "LinkSoC", None)
    if cls is None:
        return None
    return cls(clk_freq=clk_freq, baud=board.baud, mem_signature=mem_signature,
               board=board.name)


class BoardTop(Elaboratable):
    """SoC top-level for one board of :data:`BOARDS`.

    ``clk_freq`` overrides the board's default system clock (the PLL picks the closest it can
    make; see :attr:`clk_freq` after construction).  ``link_factory`` replaces the host link
    (``None`` result → no link, UART TX idles high).  ``extra_initiators`` is a list of callables
    ``f(mem_signature) -> component with a 'bus' initiator`` (the engine controller's hook).
    ``memtest_words`` limits the self-test (default: the whole memory).
    """

    def __init__(self, board: str, *, clk_freq: float | None = None, link_factory=None,
                 extra_initiators=(), memtest_words: int | None = None):
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r}")
        self.spec = BOARDS[board]
        want = clk_freq or self.spec.clk_hz
        if self.spec.family == "ecp5":
            from .pll import ecp5_pll_params
            self.clk_freq = ecp5_pll_params(self.spec.osc_hz, want).f_out
        else:
            from .pll import ice40_pll_params
            self.clk_freq = ice40_pll_params(self.spec.osc_hz, want).f_out
        self.link_factory = link_factory or default_link_factory
        self.extra_initiators = list(extra_initiators)
        self.memtest_words = memtest_words
        self.has_link = None        # set at elaboration

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        ecp5 = spec.family == "ecp5"

        # ---- clock and reset --------------------------------------------------------------
        if ecp5:
            osc = platform.request("clk25", dir="-")
            m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
            m.submodules.clkgen = clkgen = ECP5ClockGen(osc_buf.i, spec.osc_hz, self.clk_freq)
        else:
            osc = platform.request("clk12", dir="-")
            m.submodules.clkgen = clkgen = ICE40ClockGen(osc.io, spec.osc_hz, self.clk_freq)

        # ---- memory -----------------------------------------------------------------------
        if ecp5:
            m.submodules.mem = mem = SDRAMController(self.clk_freq, extra_read_latency=2)
            self._sdram_pins(m, platform, mem)
            mem_ready = mem.init_done
        else:
            m.submodules.mem = mem = SPRAMMemory(32)
            mem_ready = Signal(init=1)
        sig = mem.bus.signature.flip()
        aw, dw = sig.addr_width, sig.data_width

        # ---- initiators -------------------------------------------------------------------
        uart = platform.request("uart", 0, dir="-")
        link = self.link_factory(board=spec, clk_freq=self.clk_freq, mem_signature=sig,
                                 uart=uart)
        self.has_link = link is not None
        inits = []
        words = self.memtest_words or (1 << aw)
        m.submodules.memtest = memtest = MemTest(aw, dw, words)
        m.d.comb += memtest.start.eq(mem_ready)
        inits.append(memtest)
        if link is not None:
            m.submodules.link = link
            inits.append(link)
        for i, f in enumerate(self.extra_initiators):
            c = f(sig)
            m.submodules[f"initiator{i}"] = c
            inits.append(c)

        # enough read tags for every read the memory can have outstanding
        m.submodules.arb = arb = MemPortArbiter(len(inits), aw, dw,
                                                max_reads=16 if ecp5 else 8)
        wiring.connect(m, arb.out, mem.bus)
        for i, c in enumerate(inits):
            wiring.connect(m, c.bus, arb.bus(i))

        # ---- UART pins --------------------------------------------------------------------
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        activity = Signal()
        if link is not None:
            m.d.comb += [tx_buf.o.eq(link.tx), link.rx.eq(rx_buf.i)]
            if hasattr(link, "activity"):
                m.d.comb += activity.eq(link.activity)
        else:
            m.d.comb += tx_buf.o.eq(1)
        if ecp5:
            m.submodules.uart_txen = txen = io.Buffer("o", platform.request("uart_tx_enable", 0,
                                                                             dir="-"))
            m.d.comb += txen.o.eq(1)

        # ---- LEDs -------------------------------------------------------------------------
        beat = Signal(max(1, int(self.clk_freq).bit_length() - 1))   # ~0.5-1 Hz blink
        m.d.sync += beat.eq(beat + 1)
        blink = beat[-1]
        passed = memtest.done & (memtest.errors == 0)
        failed = memtest.errors != 0
        if ecp5:
            leds = [blink, mem_ready, passed, failed, activity, 0, 0, clkgen.locked]
        else:
            leds = [failed, passed | (memtest.busy & blink)]
        for i, v in enumerate(leds):
            led = platform.request("led", i, dir="-")
            m.submodules[f"led{i}"] = buf = io.Buffer("o", led)
            m.d.comb += buf.o.eq(v)
        return m

    def _sdram_pins(self, m, platform, ctrl):
        """ECP5 I/O registers on every SDRAM pin; SDRAM clock = inverted system clock."""
        p = platform.request("sdram", 0, dir="-")
        pins = ctrl.pins
        m.submodules.sdram_clk = clk = io.DDRBuffer("o", p.clk)
        m.d.comb += [clk.o[0].eq(0), clk.o[1].eq(1)]
        for name, port, value in [
            ("cke", p.clk_en, pins.clk_en), ("cs", p.cs, ~pins.cs_n),
            ("ras", p.ras, ~pins.ras_n), ("cas", p.cas, ~pins.cas_n),
            ("we", p.we, ~pins.we_n), ("ba", p.ba, pins.ba), ("a", p.a, pins.a),
            ("dqm", p.dqm, pins.dqm),
        ]:
            m.submodules[f"sdram_{name}"] = buf = io.FFBuffer("o", port)
            m.d.comb += buf.o.eq(value)
        m.submodules.sdram_dq = dq = io.FFBuffer("io", p.dq)
        m.d.comb += [dq.o.eq(pins.dq_o), dq.oe.eq(pins.dq_oe), pins.dq_i.eq(dq.i)]
