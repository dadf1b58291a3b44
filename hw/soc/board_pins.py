"""Which way each FPGA pin the board tops use may be driven, taken from the boards' schematics,
and the build-time check against it.

``amaranth_boards`` declares pin directions for convenience, not from the nets: its ULX3S
``uart_tx_enable`` (ball L3) is an output, yet on the board that net is the FT231X's CBUS0
(TXDEN) *output*, so an FPGA driving it fights the USB-UART.  The tables below say, per pin,
what is on the other end and which directions are safe for the FPGA: ``"i"`` (the FPGA only
listens), ``"o"`` (nothing else drives the net), ``"io"`` (shared, either).  Every pin a top
uses is recorded with :meth:`PinUses.use` and checked by :func:`check_pins` before synthesis.

Sources: ULX3S v3.0.x schematic (FT231X, SDRAM, ESP32 sheets; the same nets as LiteX's
``radiona_ulx3s`` platform), iCEBreaker v1.0e schematic (FT2232H port B = UART).
"""
from __future__ import annotations

__all__ = ["PINS", "PinUses", "check_pins", "PinDirectionError"]


class PinDirectionError(ValueError):
    """A top drives a pin the board's schematic says it must not drive (or an unlisted pin)."""


_SDRAM_OUT = {"clk": "F19", "clk_en": "F20", "cs": "P20", "we": "T20", "cas": "T19",
              "ras": "R20", "dqm": "U19 E20", "ba": "P19 N20",
              "a": "M20 M19 L20 L19 K20 K19 K18 J20 J19 H20 N19 G20 G19"}

#: board → {(resource, number, subsignal or None): (balls, allowed FPGA directions, what's there)}
PINS = {
    "ulx3s": {
        ("clk25", 0, None): ("G2", "i", "25 MHz oscillator output"),
        ("uart", 0, "tx"): ("L4", "o", "FT231X RXD (input of the FTDI)"),
        ("uart", 0, "rx"): ("M1", "i", "FT231X TXD (output of the FTDI); pull-up so an idle "
                                       "or unpowered FTDI reads as a stop bit"),
        ("uart_tx_enable", 0, None): ("L3", "i", "FT231X CBUS0/TXDEN: an FTDI *output*"),
        ("esp32", 0, "gpio0"): ("L2", "io", "ESP32 GPIO0 strap: held high so the ESP32 boots "
                                            "its flash, not its serial loader (as LiteX does)"),
        **{("led", i, None): (b, "o", "LED") for i, b in
           enumerate("B2 C2 C1 D2 D1 E2 E1 H3".split())},
        **{("sdram", 0, s): (b, "o", "SDRAM input") for s, b in _SDRAM_OUT.items()},
        ("sdram", 0, "dq"): ("J16 L18 M18 N18 P18 T18 T17 U20 E19 D20 D19 C20 E18 F18 J18 J17",
                             "io", "SDRAM data"),
    },
    "icebreaker": {
        ("clk12", 0, None): ("35", "i", "12 MHz oscillator output"),
        ("uart", 0, "tx"): ("9", "o", "FT2232H port B RXD (BDBUS1)"),
        ("uart", 0, "rx"): ("6", "i", "FT2232H port B TXD (BDBUS0)"),
        ("led", 0, None): ("11", "o", "red LED"),
        ("led", 1, None): ("37", "o", "green LED"),
    },
}


class PinUses:
    """Pins a top has requested, with the direction it uses them in."""

    def __init__(self):
        self.uses: list[tuple[str, int, str | None, str]] = []

    def use(self, resource: str, number: int, subsignal: str | None, direction: str):
        if direction not in ("i", "o", "io"):
            raise ValueError(f"direction must be i, o or io, not {direction!r}")
        self.uses.append((resource, number, subsignal, direction))


def _allows(allowed: str, direction: str) -> bool:
    return allowed == "io" or allowed == direction


def check_pins(board: str, uses) -> None:
    """Raise :class:`PinDirectionError` (one line) for the first use the schematic forbids."""
    family = "icebreaker" if board == "icebreaker" else "ulx3s"
    table = PINS[family]
    for resource, number, sub, direction in getattr(uses, "uses", uses):
        key = (resource, number, sub)
        name = resource + (f".{sub}" if sub else "") + (f"[{number}]" if number else "")
        if key not in table:
            raise PinDirectionError(f"{board}: pin {name} is not in the schematic pin table "
                                    "(hw/soc/board_pins.py); add it with its direction")
        balls, allowed, what = table[key]
        if not _allows(allowed, direction):
            raise PinDirectionError(f"{board}: {name} (ball {balls}) used as "
                                    f"{'an output' if 'o' in direction else 'an input'}, but "
                                    f"the schematic allows only {allowed!r}: {what}")
