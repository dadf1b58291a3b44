"""hw.engine.synth's wrapper elaborates for a board platform (no tools run): every engine input
comes from the shift register, and with ``untimed_inputs`` that register is on its own clock."""
import pytest

from hw.engine.engine import EngineConfig
from hw.engine.synth import EngineSynthTop
from hw.soc.top import make_platform

SMALL = EngineConfig(rows=2, cols=2, in_depth=64, w_depth=32, step_depth=8, ob_depth=2,
                     out_depth=64, lut_requant=True)


@pytest.mark.parametrize("untimed", [False, True])
def test_wrapper_elaborates(untimed):
    plan = make_platform("ulx3s-85f").prepare(EngineSynthTop(SMALL, 100.0, untimed_inputs=untimed),
                                              name="top")
    il = plan.files["top.il"]
    il = il if isinstance(il, str) else il.decode()
    assert "engine" in il
    assert ("ld_clk" in il) == untimed
