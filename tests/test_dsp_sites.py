"""hw.engine.dsp_sites: the fixed multiplier sites of the ECP5-85F array are distinct real sites laid out
as column strips, and the PE passes its site to the MULT18X18D instance as nextpnr's BEL."""
import re

import pytest
from amaranth.back import rtlil

from hw.engine.dsp_sites import strips
from hw.engine.pe import PE


def _xy(bel):
    x, y, name = re.fullmatch(r"X(\d+)/Y(\d+)/(MULT18_[0145])", bel).groups()
    return int(x), int(y)


def test_strips_9x16():
    bels = strips(9, 16)
    assert len(bels) == 144 and len(set(bels.values())) == 144
    for c in range(16):
        col = [_xy(bels[(r, c)]) for r in range(9)]
        assert [y for _, y in col] == [10] * 3 + [34] * 3 + [58] * 3     # down the DSP rows
        xs = [x for x, _ in col]
        assert max(xs) - min(xs) <= 9                                     # one narrow strip
        assert xs[0:3] == xs[3:6] == xs[6:9]                              # aligned rows
    for r in range(9):                                                    # columns left to right
        xs = [_xy(bels[(r, c)])[0] for c in range(16)]
        assert xs == sorted(xs)


def test_strips_too_large():
    with pytest.raises(ValueError, match="do not fit"):
        strips(9, 18)


def test_pe_carries_its_site():
    class ECP5:
        family = "ecp5"
    text = rtlil.convert(PE(19, bel="X4/Y10/MULT18_0"), platform=ECP5())
    assert "X4/Y10/MULT18_0" in text and "MULT18X18D" in text
