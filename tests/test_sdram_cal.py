"""The read calibration's choice (``hw/memory/sdram_cal.py``); the calibrator itself runs in the
pin-level tests (``tests/test_sdram_pins.py``)."""
import pytest

from hw.memory.sdram_cal import ReadCalibrator, cal_patterns, choose_position


@pytest.mark.parametrize("passed,want", [
    (0b0000, (3, False)), (0b0100, (2, True)), (0b0110, (1, True)), (0b1110, (2, True)),
    (0b1011, (0, True)), (0b1101, (2, True)), (0b1111, (1, True)),
])
def test_centre_of_longest_run(passed, want):
    assert choose_position(passed, 4, fallback=3) == want


def test_patterns_change_every_word():
    p = cal_patterns(8, 32)
    assert len(set(p)) == 8 and all(a != b for a, b in zip(p, p[1:]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="positions"):
        ReadCalibrator(10, 32, positions=9)
    with pytest.raises(ValueError, match="fallback"):
        ReadCalibrator(10, 32, positions=4, fallback=4)
