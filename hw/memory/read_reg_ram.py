"""Simple dual-port RAM whose read data leaves through an output register: one write port and
``read_ports`` read ports, each returning the word two cycles after its address (the RAM's
read, then the output register), or one cycle after it with ``registered=False``.

Why a component of its own: on ECP5, yosys maps an Amaranth ``Memory`` of 36-bit-wide block-RAM
words with an emulation of read-during-write (a register of the written word and a multiplexer
between the block RAM and whatever its read data feeds), because the DP16KD leaves a read of the
address being written from the other port undefined. The engine never reads a memory while the
host loads it, nor reads back its output memory while a layer writes it, so the emulation is
dead logic, and it sat on the 85F's critical path: block-RAM
output (5.8 ns) → multiplexer → output register. Here, on ECP5, each read port is a row of DP16KD
tiles instantiated directly, in the 512×36 pseudo-dual-port arrangement of yosys's own mapping
(``share/lattice/brams_map_16kd.v``), and the output register is a fabric register fed by the
tile alone. (The tile's own output register, ``REGMODE_B = "OUTREG"``, does not help: nextpnr's
timing model gives it 5.61 ns from clock to data, against 5.83 ns without, and then the long
route to the array would follow it.) Elsewhere (simulation, iCE40, ECP5 depths above 512) it is
a ``Memory`` with a register behind each read port, which behaves the same whenever nothing reads
the word being written in the same cycle.
"""
from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw import fpga_family

#: the memory attribute (yosys's name) for "a read of the word being written in the same cycle
#: may return anything: the design never uses it" (``host.synthesis.undefined_collisions``)
NO_RW_CHECK = "no_rw_check"

#: cycles from a read address to its data at ``r_data``
LATENCY = 2

#: the DP16KD in its widest arrangement: 512 words of 36 bits, written through port A, read
#: through port B; a word address sits in bits 5… of the 14-bit tile address
TILE_DEPTH, TILE_WIDTH, TILE_ADDR_SHIFT = 512, 36, 5


class ReadRegRAM(wiring.Component):
    """``depth`` words of ``width`` bits; ``w_en`` writes ``w_data`` at ``w_addr``; read port
    ``i`` returns the word at ``r_addr[i]`` on ``r_data[i]`` :data:`LATENCY` cycles later (one
    cycle with ``registered=False``). A read of the word being written in the same cycle is
    undefined."""

    def __init__(self, width: int, depth: int, read_ports: int = 1, name: str = "ram",
                 tiles: bool | None = None, registered: bool = True):
        if width < 1 or depth < 1 or read_ports < 1:
            raise ValueError(f"ReadRegRAM needs width, depth and read_ports ≥ 1 "
                             f"(got {width}, {depth}, {read_ports})")
        self.width, self.depth, self.read_ports, self.name = width, depth, read_ports, name
        #: build from DP16KD tiles: None = on ECP5 when ``depth`` ≤ 512 (tests force it)
        self.tiles = tiles
        #: False: no output register, the data come one cycle after the address (for a
        #: consumer that registers them itself)
        self.registered = bool(registered)
        self.latency = LATENCY if registered else LATENCY - 1
        if tiles and depth > TILE_DEPTH:
            raise ValueError(f"DP16KD tiles hold {TILE_DEPTH} words, not {depth}")
        super().__init__({
            "w_addr": In(range(depth)),
            "w_data": In(width),
            "w_en": In(1),
            "r_addr": In(data.ArrayLayout(range(depth), read_ports)),
            "r_data": Out(data.ArrayLayout(width, read_ports)),
        })

    def uses_tiles(self, platform) -> bool:
        """Whether this instance is built from DP16KD tiles (ECP5, depth ≤ 512)."""
        if self.tiles is not None:
            return self.tiles
        return fpga_family(platform) == "ecp5" and self.depth <= TILE_DEPTH

    @property
    def _out_domain(self):
        return "sync" if self.registered else "comb"

    def elaborate(self, platform):
        m = Module()
        if self.uses_tiles(platform):
            # the write side is the same for every read port's copy of the memory
            n_tiles = -(-self.width // TILE_WIDTH)
            w_data = Signal(n_tiles * TILE_WIDTH, name=f"{self.name}_wd")
            wa = Signal(14, name=f"{self.name}_wa")
            m.d.comb += [w_data.eq(self.w_data), wa.eq(self.w_addr << TILE_ADDR_SHIFT)]
            for p in range(self.read_ports):
                self._tiles(m, p, n_tiles, w_data, wa)
            return m
        # a read of the word being written is undefined (above): no emulation of it in the
        # block RAMs (host.synthesis.undefined_collisions)
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.depth, init=[],
                                        attrs={NO_RW_CHECK: 1})
        wp = mem.write_port()
        m.d.comb += [wp.addr.eq(self.w_addr), wp.data.eq(self.w_data), wp.en.eq(self.w_en)]
        for p in range(self.read_ports):
            rp = mem.read_port()
            m.d.comb += rp.addr.eq(self.r_addr[p])
            m.d[self._out_domain] += self.r_data[p].eq(rp.data)
        return m

    def _tiles(self, m, p, n_tiles, w_data, wa):
        """Read port ``p``: its own copy of the memory, ``n_tiles`` tiles side by side, written
        from the (padded) word ``w_data`` at tile address ``wa``."""
        r_data = Signal(n_tiles * TILE_WIDTH, name=f"{self.name}_rd_{p}")
        m.d[self._out_domain] += self.r_data[p].eq(r_data[:self.width])
        ra = Signal(14, name=f"{self.name}_ra_{p}")
        m.d.comb += ra.eq(self.r_addr[p] << TILE_ADDR_SHIFT)
        for t in range(n_tiles):
            di = w_data[t * TILE_WIDTH:(t + 1) * TILE_WIDTH]
            do = r_data[t * TILE_WIDTH:(t + 1) * TILE_WIDTH]
            ports = {
                "i_CLKA": ClockSignal(), "i_CEA": Const(1), "i_WEA": Const(1),
                "i_OCEA": Const(0), "i_RSTA": Const(0),
                "i_CLKB": ClockSignal(), "i_CEB": Const(1), "i_WEB": Const(0),
                "i_OCEB": Const(1), "i_RSTB": Const(0),
            }
            for k in range(3):
                ports[f"i_CSA{k}"] = ports[f"i_CSB{k}"] = Const(0)
            for k in range(14):
                # the four low address bits of port A are the 36-bit word's byte enables
                ports[f"i_ADA{k}"] = self.w_en if k < 4 else wa[k]
                ports[f"i_ADB{k}"] = ra[k]
            for k in range(18):
                ports[f"i_DIA{k}"], ports[f"i_DIB{k}"] = di[k], di[18 + k]
                ports[f"o_DOA{k}"], ports[f"o_DOB{k}"] = do[k], do[18 + k]
            m.submodules[f"tile_{p}_{t}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=TILE_WIDTH, p_DATA_WIDTH_B=TILE_WIDTH,
                p_REGMODE_A="NOREG", p_REGMODE_B="NOREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_CLKAMUX="CLKA", p_CLKBMUX="CLKB", p_GSR="AUTO",
                **ports)
