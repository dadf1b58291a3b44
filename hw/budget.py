"""Block RAM budget of an engine configuration, counted from its memories' geometry.

Every memory of :class:`hw.engine.engine.Engine` is listed with its word width, depth and the
number of copies synthesis makes of it (one per read port: a block RAM tile serves one write
and one read port), and mapped to tiles the way yosys maps it:

- ECP5 DP16KD (18 Kbit): 16384×1, 8192×2, 4096×4, 2048×9, 1024×18 or 512×36, whichever
  needs the fewest tiles; memories of at most :data:`ECP5_LUTRAM_DEPTH` words go to LUT RAM
  (no tile), as do memories read asynchronously; the engine's map, weight and output memories
  (``ReadRegRAM``) are 512×36 tiles whenever they are at most 512 words deep.
- iCE40 SB_RAM40_4K (4 Kbit): 2048×2, 1024×4, 512×8 or 256×16; the UP5K has no LUT RAM, so
  every synchronously read memory of more than :data:`ICE40_LOGIC_BITS` bits takes tiles.

For the map and weight memories (deep and wide) this is what yosys does; for small tables yosys
weighs logic against block RAM by rules of its own and sometimes keeps in logic what this model
puts in a tile, so the count is exact for the board configurations and an upper bound otherwise.
Both are checked against yosys's own counts (``tests/test_budget.py``), so the scheduler and
``docs/configs.md`` can use the model without a synthesis run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from hw.memory.read_reg_ram import TILE_DEPTH, TILE_WIDTH

__all__ = ["Memory", "engine_memories", "engine_tiles", "m_tiles", "tiles_for", "ECP5_MODES",
           "ICE40_MODES"]

#: (depth, width) arrangements of one tile
ECP5_MODES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
ICE40_MODES = ((2048, 2), (1024, 4), (512, 8), (256, 16))
#: ECP5 memories this shallow become LUT RAM (yosys's DPR16X4 mapping), not block RAM
ECP5_LUTRAM_DEPTH = 64
#: iCE40 memories this small become flip-flops
ICE40_LOGIC_BITS = 64


@dataclass(frozen=True)
class Memory:
    """One memory of the engine: ``copies`` × ``depth`` words of ``width`` bits."""
    name: str
    width: int
    depth: int
    copies: int = 1
    #: bytes of data it holds for the accelerator (activations or weights), 0 for tables
    data_bytes: int = 0
    #: read asynchronously (never a block RAM)
    async_read: bool = False
    #: a :class:`hw.memory.read_reg_ram.ReadRegRAM`: on ECP5 up to 512 words deep it is built
    #: from 512×36 DP16KD tiles, however shallow
    read_reg: bool = False
    #: kept in LUT RAM on ECP5 by its ``ram_style`` attribute, however deep (the engine's
    #: step table and block bases with two table banks)
    distributed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def tiles_for(width: int, depth: int, family: str, async_read: bool = False,
              read_reg: bool = False, distributed: bool = False) -> int:
    """Block RAM tiles of one copy of a ``depth`` × ``width`` memory on ``family``."""
    if async_read or (distributed and family == "ecp5"):
        return 0
    if family == "ecp5" and read_reg and depth <= TILE_DEPTH:
        return -(-width // TILE_WIDTH)
    if family == "ecp5":
        if depth <= ECP5_LUTRAM_DEPTH:
            return 0
        modes = ECP5_MODES
    elif family == "ice40":
        if width * depth <= ICE40_LOGIC_BITS:
            return 0
        modes = ICE40_MODES
    else:
        raise ValueError(f"unknown FPGA family {family!r}")
    return min(-(-width // w) * -(-depth // d) for d, w in modes)


def engine_memories(cfg, family: str = "ecp5") -> list[Memory]:
    """The memories an :class:`~hw.engine.engine.Engine` of ``cfg`` instantiates."""
    from hw.engine.engine import step_word_layout
    R, C, L, P = cfg.rows, cfg.cols, cfg.lanes, cfg.post_lanes
    mems = []
    if cfg.line_rows:
        # the ring: line_rows lines of line_words words (hw.engine.row_feeder), both powers of 2
        mems.append(Memory("input map", L * 8, cfg.in_depth, 1, L * cfg.in_depth))
        mems.append(Memory("line ring", L * 8, cfg.line_rows * cfg.line_words, R))
    else:
        mems.append(Memory("input map", L * 8, cfg.in_depth, cfg.read_ports, L * cfg.in_depth,
                           read_reg=True))
    mems += [
        Memory("weights", C * 8, cfg.w_depth, R, R * C * cfg.w_depth, read_reg=True),
        Memory("output map", C * 8, cfg.out_depth, 1, C * cfg.out_depth, read_reg=True),
        Memory("step table", step_word_layout(cfg).size, cfg.step_depth * cfg.table_banks,
               distributed=cfg.table_banks > 1),
        Memory("block base", cfg.addr_width, cfg.ob_depth * cfg.table_banks,
               distributed=cfg.table_banks > 1),
        Memory("requant parameters", P * (32 + 31 + 6),
               cfg.block_words * cfg.table_banks),
    ]
    if cfg.pool_width:
        mems.append(Memory("pool row", C * 8, max(1, cfg.pool_width // 2), async_read=True))
    return mems


def engine_tiles(cfg, family: str = "ecp5") -> int:
    """Block RAM tiles of the whole engine of ``cfg`` on ``family``."""
    return sum(m.copies * m_tiles(m, family) for m in engine_memories(cfg, family))


def m_tiles(m: Memory, family: str) -> int:
    """Tiles of one copy of memory ``m``."""
    return tiles_for(m.width, m.depth, family, m.async_read, m.read_reg, m.distributed)
