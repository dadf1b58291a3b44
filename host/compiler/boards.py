"""Board models for the scheduler: what memory, multipliers, clock and bandwidth the accelerator gets.

All figures come from the boards' published resources, and the array shape and clock of a board
with an accelerator configuration from that configuration (``hw.configs``); the parts that are
this project's *assumptions* (reserves, efficiency factors, the array shape of boards without a
configuration) are named fields with the reasoning next to them, so they can be replaced by
measured numbers (``blockfuse build`` reports) without touching the scheduler.

On-chip memory
    ECP5 DP16KD blocks are 18 Kbit; used 9 bits wide for int8 data they hold 2048 bytes each (the
    9th bit is unused), so the byte capacity is ``blocks × 2048``.  iCE40 UP5K EBR are 4 Kbit =
    512 bytes; its four SPRAMs add 128 KB (16-bit wide, usable as bytes with the write mask).
    A *reserve* of blocks is kept for the rest of the design: UART receive/transmit FIFOs, the
    SDRAM controller's read and write FIFOs, the requantisation parameter tables (int32 bias,
    multiplier and shift per output channel of the current layer), the instruction/descriptor
    queue and the PE array's accumulator spill buffer.  What remains is the budget the
    scheduler may fill with activation blocks and weights.

Off-chip memory
    ULX3S: one MT48LC16M16A2-class 32 MB SDR SDRAM, 16 bits wide, run at the system clock (a
    single clock domain keeps the controller simple).  Peak = 2 bytes × f_clk.  The effective
    figure applies an efficiency of 0.70: 8-word bursts with row activation/precharge (tRCD +
    tRP ≈ 4 cycles per burst at 100 MHz when streams interleave), read/write turnaround and
    auto-refresh (64 ms / 8192 rows ≈ 1.5 % of the cycles).
    iCEBreaker: no memory beyond its 128 KB SPRAM.  Whatever does not fit on chip would have to
    come over the host link (FT2232H UART at 6 Mbaud ≈ 0.6 MB/s, what the 42 MHz bitstream runs);
    the plan says so with a warning and the link bandwidth is then used for the time estimate.

Clocks and link rates are those of the board SoCs (``hw.soc.top.BOARDS`` and the baud rate
``hw.soc.top.pick_baud`` gives there); ``tests/test_boards.py`` keeps them in step.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from host.errors import UserError

DP16KD_BYTES = 2048          # 18 Kbit block RAM used 9 bits wide for int8 data
EBR_BYTES = 512              # iCE40 4 Kbit EBR
SPRAM_BYTES = 32 * 1024      # iCE40 UP5K SPRAM: 256 Kbit each, 4 of them


@dataclass(frozen=True)
class Board:
    name: str
    fpga: str
    bram_blocks: int              # DP16KD or EBR count (docs/published.md)
    bram_block_bytes: int
    reserved_blocks: int          # kept for FIFOs, parameter tables, accumulators (see module doc)
    extra_onchip_bytes: int       # SPRAM (iCE40)
    multipliers: int              # MULT18X18D / SB_MAC16 (docs/published.md)
    pe_rows: int                  # array rows: input channels
    pe_cols: int                  # array cols: output channels
    clock_hz: float
    offchip_bytes: int            # 0 = no off-chip memory
    offchip_width_bytes: int      # bus width
    offchip_efficiency: float     # fraction of the peak bandwidth achieved on streaming traffic
    link: str
    link_bytes_per_s: float       # UART: baud / 10 (8N1)
    #: requantisation lanes of the engine when ``hw.configs.BOARD_CONFIGS`` has no configuration
    #: for this board (0: ``pe_cols // 2``, as the ECP5 configurations there use)
    post_lanes: int = 0
    #: key of the board's configuration in ``hw.configs.BOARD_CONFIGS`` ("" = the name)
    engine_key: str = ""

    @property
    def engine(self):
        """The :class:`hw.engine.engine.EngineConfig` the cost model follows (its ``latency`` and
        ``drain`` give the cycles): the board's accelerator configuration
        (``hw.configs.BOARD_CONFIGS``) where it has one, else an engine of ``pe_rows × pe_cols``
        with ``post_lanes`` logic requantisation lanes (the kind every FPGA build uses)."""
        from hw.configs import BOARD_CONFIGS
        from hw.engine.engine import EngineConfig
        cfg = BOARD_CONFIGS.get(self.engine_key or self.name)
        if cfg is not None:
            return cfg.engine
        return EngineConfig(rows=self.pe_rows, cols=self.pe_cols, lut_requant=True,
                            post_lanes=self.post_lanes or max(1, self.pe_cols // 2))

    @property
    def onchip_bytes(self) -> int:
        """Bytes of on-chip memory the scheduler may use for activations and weights."""
        return (self.bram_blocks - self.reserved_blocks) * self.bram_block_bytes + self.extra_onchip_bytes

    @property
    def pes(self) -> int:
        return self.pe_rows * self.pe_cols

    @property
    def has_offchip(self) -> bool:
        return self.offchip_bytes > 0

    @property
    def offchip_bytes_per_s(self) -> float:
        """Effective off-chip bandwidth; the host link's when there is no off-chip memory."""
        if not self.has_offchip:
            return self.link_bytes_per_s
        return self.offchip_width_bytes * self.clock_hz * self.offchip_efficiency

    @property
    def peak_macs_per_s(self) -> float:
        return self.pes * self.clock_hz

    def to_json(self) -> dict:
        d = asdict(self)
        eng = self.engine
        d.update(onchip_bytes=self.onchip_bytes, pes=self.pes,
                 offchip_bytes_per_s=self.offchip_bytes_per_s,
                 engine=dict(eng.as_dict(), latency=eng.latency, drain=eng.drain))
        return d


_SDRAM = dict(offchip_bytes=32 * 1024 * 1024, offchip_width_bytes=2, offchip_efficiency=0.70,
              link="FT231X USB-UART 3.03 Mbaud", link_bytes_per_s=100e6 / 33 / 10)

def _configured(name, bram_blocks, block_bytes, reserved, extra, **kw) -> Board:
    """A board whose array shape and clock are its accelerator configuration's
    (``hw.configs.BOARD_CONFIGS``), not restated here."""
    from hw.configs import BOARD_CONFIGS
    c = BOARD_CONFIGS[name]
    return Board(name, c.device.name + "-6" * (c.device.family == "ecp5"), bram_blocks,
                 block_bytes, reserved, extra, c.device.multipliers, c.engine.rows,
                 c.engine.cols, c.clock_mhz * 1e6, **kw)


BOARDS = {
    # 24 of 208 blocks reserved.
    "ulx3s-85f": _configured("ulx3s-85f", 208, DP16KD_BYTES, 24, 0, **_SDRAM),
    # 16 of 108 blocks reserved.
    "ulx3s-45f": _configured("ulx3s-45f", 108, DP16KD_BYTES, 16, 0, **_SDRAM),
    # 28 multipliers: 4 rows x 6 cols = 24 (no accelerator configuration: an assumed engine
    # with 3 requant lanes).  12 of 56 blocks reserved.
    "ulx3s-25f": Board("ulx3s-25f", "LFE5U-25F-6", 56, DP16KD_BYTES, 12, 0, 28, 4, 6, 100e6, **_SDRAM),
    # The 12F is a 25F die sold with a smaller licence; the same 28 / 56.
    "ulx3s-12f": Board("ulx3s-12f", "LFE5U-12F-6", 56, DP16KD_BYTES, 12, 0, 28, 4, 6, 100e6, **_SDRAM),
    # 10 of 30 EBR reserved (UART FIFOs, parameters); + 128 KB SPRAM.
    "icebreaker": _configured("icebreaker", 30, EBR_BYTES, 10, 4 * SPRAM_BYTES,
                              offchip_bytes=0, offchip_width_bytes=0, offchip_efficiency=0.0,
                              link="FT2232H UART 6 Mbaud", link_bytes_per_s=6e6 / 10),
}


def names() -> list[str]:
    return list(BOARDS)


def get_board(name) -> Board:
    """The board called ``name`` (a :class:`Board` passes through); UserError for unknown names."""
    if isinstance(name, Board):
        return name
    try:
        return BOARDS[str(name).lower()]
    except KeyError:
        raise UserError(f"unknown board {name!r} (valid boards: {', '.join(BOARDS)})") from None


def with_budget(board: Board, onchip_bytes: int, name: str | None = None) -> Board:
    """A copy of ``board`` whose scheduler budget is ``onchip_bytes`` (tests, reduced resolutions)."""
    from dataclasses import replace
    blocks = -(-max(0, onchip_bytes - board.extra_onchip_bytes) // board.bram_block_bytes)
    b = replace(board, name=name or f"{board.name}@{onchip_bytes}B", bram_blocks=blocks,
                engine_key=board.engine_key or board.name,
                reserved_blocks=0, extra_onchip_bytes=min(board.extra_onchip_bytes, onchip_bytes))
    # exact budget: express it as blocks of 1 byte when not a multiple of the block size
    if b.onchip_bytes != onchip_bytes:
        b = replace(b, bram_blocks=onchip_bytes, bram_block_bytes=1, extra_onchip_bytes=0)
    return b
