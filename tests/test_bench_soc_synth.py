"""host.bench.soc_synth on the iCEBreaker: the board top with the accelerator core synthesises
(yosys only) with every PE on a hard multiplier, the SPRAM as its memory, and the block RAM the
configuration's budget predicts; the report's verdicts follow its counts."""
from hw.budget import engine_memories, m_tiles
from hw.configs import BOARD_CONFIGS
from host.bench.soc_synth import synth


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
