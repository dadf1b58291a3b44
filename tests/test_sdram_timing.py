"""The paper timing of the ULX3S SDRAM interface (``hw/memory/sdram_timing.py``): the supported
clock range is where the planned phase keeps every setup and hold at both delay corners."""
import pytest

from hw.memory.sdram_parts import PARTS, WORST_CASE
from hw.memory.sdram_timing import MIN_MARGIN_NS, SUPPORTED_MHZ, check_clock, plan


def test_every_supported_clock_has_margin():
    lo, hi = (int(f) for f in SUPPORTED_MHZ)
    for mhz in range(lo, hi + 1):
        p = plan(mhz * 1e6, WORST_CASE)
        assert p.margin_ns >= MIN_MARGIN_NS, (mhz, p)
        for chip in PARTS.values():
            assert plan(mhz * 1e6, chip).margin_ns >= MIN_MARGIN_NS, (mhz, chip.name)


def test_above_the_range_margin_runs_out():
    assert plan(125e6, WORST_CASE).margin_ns < MIN_MARGIN_NS


def test_inverted_clock_has_no_margin_below_90mhz():
    """The earlier top's fixed 180° SDRAM clock at CAS latency 2 (what the issue found)."""
    for mhz in (50, 60, 75):
        assert plan(mhz * 1e6, WORST_CASE, phase_deg=180, cas_latency=2).margin_ns < 0


def test_check_clock_one_line():
    check_clock(100e6)
    with pytest.raises(ValueError, match=r"outside .* supported range 25-100 MHz"):
        check_clock(125e6)
    with pytest.raises(ValueError, match="supported range"):
        check_clock(20e6)
