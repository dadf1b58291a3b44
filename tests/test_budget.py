"""hw.budget counts block RAM tiles as yosys maps the engine's memories: exactly for the board and
CI engines, an upper bound for random small engines of both families (yosys keeps some small
tables in logic), each checked against yosys's own cell counts."""
import numpy as np
import pytest

from hw.budget import ECP5_MODES, ICE40_MODES, engine_memories, engine_tiles, m_tiles, tiles_for
from hw.configs import BOARD_CONFIGS, CI_CONFIG
from hw.engine.engine import Engine, EngineConfig
from hw.soc.top import make_platform
from sim.yosys_cells import cell_counts

TILE_CELL = {"ecp5": "DP16KD", "ice40": "SB_RAM40_4K"}


def _random_config(seed: int) -> EngineConfig:
    rng = np.random.default_rng(seed)
    return EngineConfig(rows=int(rng.integers(1, 5)), cols=int(rng.integers(1, 5)),
                        in_depth=int(rng.choice([48, 200, 512, 1500])),
                        w_depth=int(rng.choice([40, 256, 700])),
                        step_depth=int(rng.choice([8, 100, 300])), ob_depth=4,
                        out_depth=int(rng.choice([64, 513])), post_lanes=1,
                        lut_requant=True)


def _yosys_tiles(cfg, family) -> int:
    """Tiles of the engine as the board build makes it (platform cells: DP16KD tiles of
    ReadRegRAM, MULT18X18D / SB_MAC16 PEs)."""
    platform = make_platform("ulx3s-85f" if family == "ecp5" else "icebreaker")
    return cell_counts(Engine(cfg), family, platform=platform).get(TILE_CELL[family], 0)


@pytest.mark.parametrize("family,cfg", [
    ("ecp5", CI_CONFIG.engine),
    ("ice40", BOARD_CONFIGS["icebreaker"].engine),
    pytest.param("ecp5", BOARD_CONFIGS["ulx3s-45f"].engine, marks=pytest.mark.slow),
    pytest.param("ecp5", BOARD_CONFIGS["ulx3s-85f"].engine, marks=pytest.mark.slow),
])
def test_tiles_equal_yosys(family, cfg):
    assert engine_tiles(cfg, family) == _yosys_tiles(cfg, family)


@pytest.mark.parametrize("family,seed", [("ecp5", 1), ("ice40", 2)])
def test_tiles_bound_yosys(family, seed):
    cfg = _random_config(seed)
    data = sum(m.copies * m_tiles(m, family) for m in engine_memories(cfg, family) if m.data_bytes)
    assert data <= _yosys_tiles(cfg, family) <= engine_tiles(cfg, family)


@pytest.mark.parametrize("family,modes", [("ecp5", ECP5_MODES), ("ice40", ICE40_MODES)])
def test_tiles_cover_the_memory(family, modes):
    """A memory's tiles hold its bits, and one tile more than needed is never chosen."""
    rng = np.random.default_rng(3)
    tile_bits = max(d * w for d, w in modes)
    for _ in range(200):
        width, depth = int(rng.integers(1, 300)), int(rng.integers(65, 20000))
        n = tiles_for(width, depth, family)
        assert n * tile_bits >= width * depth
        assert any(-(-width // w) * -(-depth // d) == n for d, w in modes)


def test_memories_follow_the_engine_config():
    """Each memory's copies and sizes follow the configuration: the input map once per array
    row (one read port per row), one weight memory per row."""
    cfg = BOARD_CONFIGS["ulx3s-85f"].engine
    mems = {m.name: m for m in engine_memories(cfg)}
    assert mems["input map"].copies == cfg.read_ports and mems["input map"].depth == cfg.in_depth
    assert mems["weights"].copies == cfg.rows and mems["weights"].width == cfg.cols * 8
    assert mems["output map"].copies == 1
    assert tiles_for(1, 64, "ecp5") == 0 and tiles_for(1, 65, "ecp5") == 1
    assert tiles_for(100, 48, "ecp5", read_reg=True) == 3          # 512×36 tiles, however shallow
    assert tiles_for(100, 48, "ice40", read_reg=True) == tiles_for(100, 48, "ice40")
    assert tiles_for(8, 8, "ecp5", async_read=True) == 0
    with pytest.raises(ValueError, match="family"):
        tiles_for(8, 100, "xilinx")
