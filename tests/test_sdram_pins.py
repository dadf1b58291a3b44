"""Pin-level simulation of the ULX3S SDRAM interface (``sim/sdram_pins.py``): the controller, the
PHY's I/O registers and capture delay line and the boot calibration, against the SDRAM model with
the fitted parts' tAC/tOH and the pad delays of both corners of ``ECP5_CORNERS``, at both ends of
the supported clock range.  A wrong phase, CAS latency or capture position must fail."""
import pytest

from hw.memory.sdram_parts import PARTS, WORST_CASE
from hw.memory.sdram_timing import ECP5_CORNERS, SUPPORTED_MHZ
from sim.sdram_pins import PinTimingError, run_pins

FAST, SLOW = ECP5_CORNERS
LO, HI = (f * 1e6 for f in SUPPORTED_MHZ)


@pytest.mark.parametrize("clk,corner,part,seed", [
    (LO, FAST, "MT48LC16M16A2-6A", 1),
    (LO, SLOW, "AS4C32M16SB-7", 2),
    (HI, FAST, "IS42S16160G-7", 3),
    (HI, SLOW, "AS4C32M16SB-7", 4),
])
def test_calibrated_pins_read_back(clk, corner, part, seed):
    """The default build (worst-case timings, planned phase and CAS latency) calibrates to the
    plan's capture cycle and then reads back random traffic."""
    r = run_pins(clk, part=PARTS[part], ctrl_chip=WORST_CASE, corner=corner, seed=seed)
    assert r["ok"] and r["position"] == r["plan"].capture_cycle
    assert r["passed"] >> r["position"] & 1
    assert len(r["expected"]) > 20 and r["reads"] == r["expected"]


@pytest.mark.parametrize("offset", [-1, 1])
def test_capture_one_cycle_off_reads_garbage(offset):
    r = run_pins(HI, part=PARTS["AS4C32M16SB-7"], ctrl_chip=WORST_CASE, corner=SLOW, seed=5,
                 n_ops=40)
    bad = run_pins(HI, part=PARTS["AS4C32M16SB-7"], ctrl_chip=WORST_CASE, corner=SLOW, seed=5,
                   n_ops=40, force_capture=r["position"] + offset)
    assert bad["reads"] != bad["expected"]


@pytest.mark.parametrize("corner", ECP5_CORNERS, ids=lambda c: c.name)
def test_inverted_clock_fails_at_50mhz(corner):
    """The earlier top (SDRAM clock = inverted system clock, CAS latency 2) at 50 MHz: no capture
    cycle reads the pattern back, at either corner."""
    r = run_pins(50e6, part=PARTS["MT48LC16M16A2-6A"], ctrl_chip=WORST_CASE, corner=corner,
                 phase_deg=180, cas_latency=2, n_ops=10)
    assert r["passed"] == 0 and not r["ok"]


def test_clock_in_phase_violates_command_hold():
    with pytest.raises(PinTimingError, match="hold"):
        run_pins(HI, part=PARTS["AS4C32M16SB-7"], ctrl_chip=WORST_CASE, corner=FAST,
                 phase_deg=0, n_ops=10)
