"""8N1 UART receiver and transmitter with an elaboration-time clock divisor.

``divisor`` is clocks per bit (``clock_hz // baud``), fixed when the design is elaborated: the
ULX3S's FT231X at 3 Mbaud from a 100 MHz clock is 33 clocks per bit; simulation uses 4.
Both sides move bytes over ``lib.stream`` streams; the line itself has no flow control, so the
receiver counts a byte it could not hand on (``overrun``) or whose stop bit was low (``frame_error``)
and drops it — the framing layer above detects the loss through its CRC.
"""
from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


def divisor_for(clock_hz: int, baud: int) -> int:
    """Clocks per bit for ``baud`` at ``clock_hz``; refuses rates off by more than 2 %."""
    div = round(clock_hz / baud)
    if div < 4:
        raise ValueError(f"{clock_hz} Hz is too slow for {baud} baud (need >= 4 clocks/bit)")
    if abs(clock_hz / div - baud) / baud > 0.02:
        raise ValueError(f"{baud} baud is {abs(clock_hz / div - baud) / baud:.1%} off at "
                         f"{clock_hz} Hz")
    return div


class UARTTx(wiring.Component):
    """Transmitter: ``data`` stream of bytes in, ``tx`` line out (idle high).

    ``idle`` is high when no byte is being shifted out.
    """

    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError("divisor must be >= 2")
        self.divisor = divisor
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10)     # stop, data[7:0], start — shifted out LSB first
        bits = Signal(range(11))

        # the next byte may start right where the stop bit ends: back-to-back frames, no gap
        stop_ends = (bits == 1) & (timer == 0)
        m.d.comb += self.idle.eq(bits == 0)
        m.d.comb += self.data.ready.eq((bits == 0) | stop_ends)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [
                shreg.eq(Cat(0, self.data.payload, 1)),
                bits.eq(10),
                timer.eq(self.divisor - 1),
                self.tx.eq(0),
            ]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += timer.eq(self.divisor - 1)
                m.d.sync += bits.eq(bits - 1)
                m.d.sync += shreg.eq(shreg >> 1)
                # after the last bit (stop) the line stays high
                m.d.sync += self.tx.eq(Mux(bits == 1, 1, shreg[1]))
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UARTRx(wiring.Component):
    """Receiver: ``rx`` line in, ``data`` stream of bytes out.

    The line is synchronised by two flip-flops, a start bit is confirmed at its middle, each bit is
    sampled at its middle.  A byte not taken by the next byte's end is dropped (``overrun`` pulse);
    a low stop bit drops the byte (``frame_error`` pulse).  ``idle``: no byte in progress.
    """

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError("divisor must be >= 4")
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "overrun": Out(1),
            "frame_error": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        div = self.divisor
        timer = Signal(range(div + div // 2 + 1))
        shreg = Signal(8)
        bitn = Signal(range(9))

        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(~rx):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):                 # glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(div - 1), bitn.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(div - 1), shreg.eq(Cat(shreg[1:], rx)),
                                 bitn.eq(bitn + 1)]
                    with m.If(bitn == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.comb += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Else():
                        with m.If(self.data.valid & ~self.data.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("BREAK"):
                # wait for the line to return high before looking for the next start bit
                with m.If(rx):
                    m.next = "IDLE"
        return m
