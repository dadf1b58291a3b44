"""Pins as the boards' schematics define them (``hw/soc/board_pins.py``): the table agrees with
the amaranth_boards resources, the tops' constraint files use only listed pins, never drive the
ULX3S's L3 (the FT231X's TXDEN output), pull the UART RX pin up and hold ESP32 GPIO0 high; a top
that drives a pin against the table fails to elaborate with one line."""
import re

import pytest

from hw.soc.board_pins import PINS, PinDirectionError, check_pins
from hw.soc.top import BoardTop, make_platform


def constraints(board, **kw):
    import hw.soc.link_soc  # noqa: F401
    top = BoardTop(board, **kw)
    plan = make_platform(board).prepare(top, name="top")
    name = "top.lpf" if board != "icebreaker" else "top.pcf"
    return top, plan.files[name]


def balls(board):
    table = PINS["icebreaker" if board == "icebreaker" else "ulx3s"]
    return {b for bs, _, _ in table.values() for b in bs.split()}


@pytest.mark.parametrize("family,board", [("ulx3s", "ulx3s-85f"), ("icebreaker", "icebreaker")])
def test_table_matches_platform(family, board):
    plat = make_platform(board)
    for (res, num, sub), (want, _, _) in PINS[family].items():
        r = plat.lookup(res, num)
        ios = r.ios[0] if sub is None else next(s for s in r.ios if s.name == sub).ios[0]
        assert " ".join(ios.names) == want, (res, num, sub)


def test_ulx3s_constraints_follow_the_schematic():
    top, lpf = constraints("ulx3s-85f")
    sites = dict(re.findall(r'LOCATE COMP "(\S+)" SITE "(\w+)"', lpf))
    assert set(sites.values()) <= balls("ulx3s-85f")
    assert "L3" not in sites.values()                     # FT231X TXDEN: not ours to drive
    port = {v: k for k, v in sites.items()}
    assert re.search(rf'IOBUF PORT "{port["M1"]}" [^;]*PULLMODE=UP', lpf)      # UART RX
    assert "L2" in sites.values()                         # ESP32 GPIO0 held high
    uses = {(r, n, s): d for r, n, s, d in top.pins.uses}
    assert uses[("esp32", 0, "gpio0")] == "io" and ("uart_tx_enable", 0, None) not in uses


def test_icebreaker_constraints_follow_the_schematic():
    _, pcf = constraints("icebreaker")
    pins = set(re.findall(r"set_io \S+ (\w+)", pcf))
    assert pins <= balls("icebreaker")


def test_driving_txden_is_refused():
    with pytest.raises(PinDirectionError, match=r"uart_tx_enable \(ball L3\) .*TXDEN"):
        check_pins("ulx3s-85f", [("uart_tx_enable", 0, None, "o")])
    with pytest.raises(PinDirectionError, match="not in the schematic pin table"):
        check_pins("icebreaker", [("sdram", 0, "dq", "io")])
    check_pins("ulx3s-85f", [("uart_tx_enable", 0, None, "i"), ("sdram", 0, "dq", "io")])


def test_clock_outside_the_sdram_range_is_refused():
    # (the constructor raises before the top exists: nothing to elaborate)
    with pytest.raises(ValueError, match="supported range 25-100 MHz"):
        BoardTop("ulx3s-85f", clk_freq=125e6)
    with pytest.raises(ValueError, match="unknown SDRAM part"):
        BoardTop("ulx3s-85f", sdram_part="X")
