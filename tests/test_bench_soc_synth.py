"""host.bench.soc_synth on the iCEBreaker: the board top with the accelerator core synthesises
(yosys only) with every PE on a hard multiplier, the SPRAM as its memory, and the block RAM the
configuration's budget predicts; the report's verdicts follow its counts."""
import pytest

from hw.budget import engine_memories, m_tiles
from hw.configs import BOARD_CONFIGS
from host.bench.soc_synth import PARTS, synth


@pytest.mark.slow        # two yosys runs and a packing, ~100 s (make test-slow; bench soc-synth)
def test_icebreaker_soc_with_the_accelerator(tmp_path):
    r = synth("icebreaker", build_root=tmp_path)
    u, a = r["used"], r["available"]
    cfg = BOARD_CONFIGS["icebreaker"]
    assert u["multipliers"] == cfg.engine.rows * cfg.engine.cols == 8
    assert u["spram"] == 4
    engine_tiles = sum(m.copies * m_tiles(m, "ice40") for m in engine_memories(cfg.engine, "ice40"))
    assert u["bram"] >= engine_tiles
    assert r["fits"] == {k: u[k] <= a[k] for k in a}
    assert u["luts"] > 0 and u["ffs"] > 0
    # packed, every LUT4 and every flip-flop needs a logic cell of its own or shared
    assert u["logic_cells"] >= max(u["luts"], u["ffs"])
    assert a["logic_cells"] == cfg.device.luts

    # where the logic goes: every part of the hierarchy lands in one named part, the engine,
    # the controller and the link each take some, and the sum is the hierarchical synthesis's
    # (no ABC: above the flat count, never below it)
    parts = {b["part"]: b for b in r["breakdown"]}
    assert set(parts) <= {name for _, name in PARTS}
    for name in ("engine: loops, addresses, drain", "controller and DMA",
                 "link: command processor", "engine: requantisation lane(s)"):
        assert parts[name]["luts"] > 0 and parts[name]["ffs"] > 0
    assert "controller: vector unit" not in parts          # the icebreaker has none
    assert u["luts"] < sum(b["luts"] for b in parts.values()) < 1.5 * u["luts"]
    # a flip-flop packed alone takes a cell besides every LUT4's: the packed count holds both
    lone = sum(b["lone_ffs"] for b in parts.values())
    assert 0 < lone <= u["ffs"]
    assert u["luts"] + lone <= u["logic_cells"]
