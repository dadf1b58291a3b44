"""One accelerator configuration per board, defined once.

Synthesis (``hw.engine.synth``), the scheduler's board models (``host.compiler.boards``), the
simulation targets and the benchmarks all take a board's engine from :data:`BOARD_CONFIGS`;
nothing else restates an array shape, a memory depth or a clock.

A configuration *fits* its board when the whole SoC does: the engine's block RAM tiles (counted
by :mod:`hw.budget` from the memories' geometry, and checked against yosys) plus the link SoC's,
its multipliers, and — where a synthesis report exists — its logic.  :func:`fit_report` says
which of these hold and by how much; ``docs/configs.md`` (``blockfuse bench configs``) is its
table.

Besides the boards there is :data:`CI_CONFIG`, a small instance of the same design for fast RTL
tests, and :data:`SIMULATION_ONLY`: the large engines the host's ``--target sim`` and the demo
used while the board engines could not hold a VGG16 layer.  They fit no board and every figure
measured on them says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hw.engine.engine import EngineConfig

__all__ = ["Device", "AcceleratorConfig", "DEVICES", "BOARD_CONFIGS", "CI_CONFIG",
           "SIMULATION_ONLY", "get_config", "fit_report"]


@dataclass(frozen=True)
class Device:
    """An FPGA's resources (the vendors' data sheets)."""
    name: str
    family: str                  #: "ecp5" or "ice40" (selects the block RAM geometry)
    luts: int                    #: LUT4s (iCE40: logic cells)
    multipliers: int             #: MULT18X18D / SB_MAC16
    bram_tiles: int              #: DP16KD (18 Kbit) / SB_RAM40_4K (4 Kbit)
    spram_tiles: int = 0         #: iCE40 UP5K SB_SPRAM256KA (256 Kbit)


DEVICES = {
    "LFE5U-85F": Device("LFE5U-85F", "ecp5", 83640, 156, 208),
    "LFE5U-45F": Device("LFE5U-45F", "ecp5", 43848, 72, 108),
    "LFE5U-25F": Device("LFE5U-25F", "ecp5", 24288, 28, 56),
    "iCE40UP5K": Device("iCE40UP5K", "ice40", 5280, 8, 30, 4),
}


@dataclass(frozen=True)
class AcceleratorConfig:
    """A board's accelerator: the engine instance, its clock, and the SoC around it."""
    name: str
    device: Device
    engine: EngineConfig
    clock_mhz: float
    #: off-chip memory of the SoC ("sdram": the ULX3S's 32 MB SDR SDRAM; "spram": the UP5K's
    #: 128 KB single-port RAM; "none": a simulation-only engine with no SoC)
    memory: str
    #: block RAM tiles and logic the rest of the SoC takes (link, command processor, memory
    #: controller), from the committed link-SoC build reports (``bitstreams/*/report.json``)
    soc_tiles: int = 0
    soc_luts: int = 0
    #: logic of the engine as yosys/nextpnr reported it (``docs/engine_synth_*.json``), 0 when
    #: no synthesis of this configuration exists yet
    engine_luts: int = 0
    #: the activation buffer (``hw.soc.activation_buffer``): on-chip bytes where fused groups
    #: keep their intermediate blocks (0: none; maps then always go off chip)
    act_bytes: int = 0
    #: the DMA unit's pooling (``hw.soc.vector_unit``: ``POOL`` and ``GAP``); without it those
    #: opcodes fault and the compiler refuses networks that pool
    vector: bool = True
    #: False for configurations that are simulation-only: they fit no board
    board: bool = True
    #: the board top's power-up memory self-test (``hw.soc.top.BoardTop(memtest=…)``); the
    #: host's ``blockfuse device selftest`` tests the memory over the link either way
    selftest: bool = True
    #: the controller's descriptor registers: 2 = the next run's descriptor loads while the
    #: engine runs (a CONV copies it); 1 = one register the engine reads, so a descriptor's
    #: LOAD waits for the run before it (``hw.soc.isa.dma_words``): 254 flip-flops fewer
    desc_buffers: int = 2
    #: register slices on every memory-port side of the board top's arbiter
    #: (``hw.soc.top.BoardTop(mem_slices=…)``): the ULX3S's 100 MHz needs them; the iCEBreaker's
    #: link SoC meets its 42 MHz without them and the self-test (45.3 MHz placed, 2,262 logic
    #: cells against 3,249 with both)
    mem_slices: bool = True
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def memory_bytes(self) -> int:
        """Off-chip memory the program, its constants and the maps may use."""
        return {"sdram": 32 << 20, "spram": 128 << 10, "none": 1 << 32}[self.memory]

    def as_dict(self) -> dict:
        return dict(name=self.name, device=self.device.name, clock_mhz=self.clock_mhz,
                    memory=self.memory, act_bytes=self.act_bytes, vector=self.vector,
                    board=self.board,
                    engine=self.engine.as_dict())


# The link SoCs as built (bitstreams/*/report.json, whose source hash covers this file, so the
# figures here are rounded, not copied): ECP5 about 3,300 LUTs, 2 DP16KD; iCE40 about 2,500
# logic cells, 8 EBR (one the counter bank's), 4 SPRAM.
_ECP5_SOC = dict(soc_tiles=2, soc_luts=3300)
_ICE40_SOC = dict(soc_tiles=8, soc_luts=2500)

BOARD_CONFIGS = {
    # every hard multiplier a PE (144 of 156 MULT18X18D): 9 rows divide 9·Cin of every 3×3
    # layer, 16 columns every VGG16/MobileNet channel count; requant multipliers in logic.
    # The input map has two read ports (two copies, not one per row) and holds 64 KiB; map,
    # weight and output memories hold two runs' worth (the compiler double-buffers them so
    # the DMA works beside the engine): 142 of 208 DP16KD; the activation buffer takes 64 more
    "ulx3s-85f": AcceleratorConfig(
        "ulx3s-85f", DEVICES["LFE5U-85F"],
        EngineConfig(rows=9, cols=16, post_lanes=16, lut_requant=True, in_depth=4096,
                     w_depth=1024, step_depth=32, ob_depth=8, out_depth=1024, read_ports=2,
                     dsp_sites="ecp5-85f", table_banks=2),
        100.0, "sdram", engine_luts=43699, act_bytes=128 << 10, **_ECP5_SOC),
    "ulx3s-45f": AcceleratorConfig(
        "ulx3s-45f", DEVICES["LFE5U-45F"],
        EngineConfig(rows=8, cols=8, post_lanes=4, lut_requant=True, in_depth=4096,
                     w_depth=1024, step_depth=32, ob_depth=8, out_depth=1024, read_ports=2,
                     table_banks=2),
        100.0, "sdram", act_bytes=64 << 10, **_ECP5_SOC),
    # all 8 SB_MAC16 as PEs fed straight from the block RAMs (no fabric registers), one
    # digit-serial requant lane, memories written straight from the load port, no vector unit
    # (the UP5K is short of logic cells; the digits CNN does not pool), no power-up self-test
    # (its memory is the UP5K's own SPRAM: nothing on the board to test), one descriptor
    # register, no register slices around the memory arbiter
    "icebreaker": AcceleratorConfig(
        "icebreaker", DEVICES["iCE40UP5K"],
        EngineConfig(rows=2, cols=4, post_lanes=1, serial_requant=True, in_depth=512,
                     w_depth=256, step_depth=32, ob_depth=2, out_depth=256, load_regs=False,
                     fabric_regs=False),
        42.0, "spram", engine_luts=4680, vector=False, selftest=False, desc_buffers=1,
        mem_slices=False, **_ICE40_SOC),
}

#: the small instance for fast RTL tests (ECP5 geometry, no board of its own)
CI_CONFIG = AcceleratorConfig(
    "ci", DEVICES["LFE5U-25F"],
    EngineConfig(rows=5, cols=3, in_depth=2048, w_depth=1024, step_depth=32, ob_depth=64,
                 out_depth=2048, post_lanes=2, read_ports=2, table_banks=2),
    100.0, "none", board=False, note="small instance of the same design for CI tests")

#: engines the host simulated before the board engines could hold a layer; they fit no board
SIMULATION_ONLY = {
    "sim-8x8": AcceleratorConfig(
        "sim-8x8", DEVICES["LFE5U-85F"],
        EngineConfig(rows=8, cols=8, in_depth=16384, w_depth=8192, step_depth=1024,
                     ob_depth=64, out_depth=16384, pool_width=256),
        100.0, "none", board=False,
        note="simulation-only: whole-layer memories (fits no board)"),
    "sim-8x8-line": AcceleratorConfig(
        "sim-8x8-line", DEVICES["LFE5U-85F"],
        EngineConfig(rows=8, cols=8, in_depth=16384, w_depth=8192, step_depth=1024,
                     ob_depth=64, out_depth=16384, pool_width=256, line_rows=8,
                     line_words=2048),
        100.0, "none", board=False,
        note="simulation-only: line mode with whole-layer memories (fits no board)"),
}


def get_config(name: str) -> AcceleratorConfig:
    """The configuration called ``name``: a board, ``ci`` or a simulation-only one."""
    table = BOARD_CONFIGS | {"ci": CI_CONFIG} | SIMULATION_ONLY
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no accelerator configuration {name!r} "
                       f"(boards: {', '.join(BOARD_CONFIGS)})") from None


def fit_report(cfg: AcceleratorConfig) -> dict:
    """What the whole SoC of ``cfg`` takes of its device, and whether each resource fits.

    Block RAM tiles come from :mod:`hw.budget` (each engine memory) plus the link SoC's;
    logic only where a synthesis report gives the engine's figure (``None`` otherwise)."""
    from hw.budget import Memory, engine_memories, m_tiles
    dev, eng = cfg.device, cfg.engine
    mems = [m.as_dict() | {"tiles": m.copies * m_tiles(m, dev.family)}
            for m in engine_memories(eng, dev.family)]
    engine = sum(m["tiles"] for m in mems)
    if cfg.act_bytes:
        act = Memory("activation buffer", 32, cfg.act_bytes // 4, 1, cfg.act_bytes)
        mems.append(act.as_dict() | {"tiles": m_tiles(act, dev.family)})
    tiles = sum(m["tiles"] for m in mems) + cfg.soc_tiles
    pes = eng.rows * eng.cols
    luts = cfg.engine_luts + cfg.soc_luts if cfg.engine_luts else None
    rep = dict(
        config=cfg.name, device=dev.name, clock_mhz=cfg.clock_mhz, pes=pes,
        multipliers=dict(used=pes, available=dev.multipliers, fits=pes <= dev.multipliers),
        bram_tiles=dict(used=tiles, engine=engine, act=tiles - engine - cfg.soc_tiles,
                        soc=cfg.soc_tiles,
                        available=dev.bram_tiles, fits=tiles <= dev.bram_tiles),
        luts=dict(used=luts, available=dev.luts,
                  fits=None if luts is None else luts <= dev.luts),
        memories=mems,
        onchip_bytes=sum(m["data_bytes"] for m in mems),
    )
    rep["fits"] = all(rep[k]["fits"] is not False for k in ("multipliers", "bram_tiles", "luts"))
    return rep
