"""hw.engine.synth's wrapper elaborates for a board platform (no tools run): every engine input
comes from the shift register, and with ``untimed_inputs`` that register is on its own clock."""
import pytest

from hw.engine.engine import EngineConfig
from hw.engine.synth import EngineSynthTop
from hw.budget import engine_tiles
from hw.soc.top import make_platform
from sim.yosys_cells import cell_counts

SMALL = EngineConfig(rows=2, cols=2, in_depth=64, w_depth=32, step_depth=8, ob_depth=2,
                     out_depth=64, lut_requant=True)


@pytest.mark.parametrize("untimed", [False, True])
def test_wrapper_elaborates(untimed):
    """The wrapper's netlist, synthesised by yosys for the ECP5: one MULT18X18D per PE and the
    engine's block RAM tiles as hw.budget counts them survive (nothing optimised away); the
    diagnostic variant clocks the input register from its own domain."""
    plan = make_platform("ulx3s-85f").prepare(EngineSynthTop(SMALL, 100.0, untimed_inputs=untimed),
                                              name="top")
    il = plan.files["top.il"]
    il = il if isinstance(il, str) else il.decode()
    assert ("ld_clk" in il) == untimed
    if untimed:
        return
    cells = cell_counts(il, "ecp5")
    assert cells.get("MULT18X18D", 0) == SMALL.rows * SMALL.cols
    assert cells.get("DP16KD", 0) == engine_tiles(SMALL, "ecp5") > 0
