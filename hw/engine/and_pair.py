"""Two partial-product rows summed in one carry chain: ``o = a·s0 + (a·s1 << 1)``.

A multiplier in logic spends most of its LUTs on partial products: one AND per bit, then one
adder bit to sum it.  On ECP5 one carry-chain bit (half a ``CCU2C``) is a LUT4 whose output is
the propagate signal, with the generate signal taken from the same LUT's ``C = D = 0`` corner
(a LUT2 of ``A, B``).  With ``A, B = a[i], s0`` and ``C, D = a[i−1], s1`` the LUT computes
``(a[i]·s0) xor (a[i−1]·s1)`` and its ``C = D = 0`` corner is ``a[i]·s0`` — exactly the generate
of that sum (when the two products are equal, the carry is either of them).  So a pair of rows
costs one LUT per bit instead of three (two ANDs and an adder bit), which is what makes sixteen
requantisation multipliers in logic affordable on the ECP5-85F.

``cells="ecp5"`` instantiates the ``CCU2C`` cells; ``"generic"`` is the same sum in plain
Amaranth (simulation and other FPGAs); ``"auto"`` picks by the platform's family.  The cell
version is simulated against the generic one with yosys's own ``CCU2C`` model
(``tests/test_and_pair.py``).
"""
from amaranth.hdl import Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw import fpga_family


def ccu2c_init() -> int:
    """LUT4 truth table (index ``D·8 + C·4 + B·2 + A``) of ``(A & B) ^ (C & D)``."""
    init = 0
    for idx in range(16):
        a, b, c, d = (idx >> 0) & 1, (idx >> 1) & 1, (idx >> 2) & 1, (idx >> 3) & 1
        init |= ((a & b) ^ (c & d)) << idx
    return init


class AndPairSum(wiring.Component):
    """Combinational ``o = a·s0 + 2·a·s1`` for an unsigned ``width``-bit ``a`` (``width + 2``
    bits out)."""

    def __init__(self, width: int, cells: str = "auto"):
        if cells not in ("auto", "ecp5", "generic"):
            raise ValueError(f"cells must be auto, ecp5 or generic, not {cells!r}")
        self.width, self.cells = width, cells
        super().__init__({"a": In(width), "s0": In(1), "s1": In(1), "o": Out(width + 2)})

    def elaborate(self, platform):
        m = Module()
        n = self.width
        cells = self.cells
        if cells == "auto":
            cells = "ecp5" if fpga_family(platform) == "ecp5" else "generic"
        if cells == "generic":
            m.d.comb += self.o.eq(Mux(self.s0, self.a, 0) + (Mux(self.s1, self.a, 0) << 1))
            return m
        # bit position i: A = a[i], B = s0, C = a[i−1], D = s1 (missing bits are 0); the last
        # position (n+1) adds nothing, so its sum is the carry out of position n
        pos = n + 2
        carry = Signal(name="cin")                      # constant 0 into the chain
        init = ccu2c_init()
        for k in range(-(-pos // 2)):
            ports = {}
            for h in (0, 1):
                i = 2 * k + h
                ports[f"i_A{h}"] = self.a[i] if i < n else 0
                ports[f"i_B{h}"] = self.s0 if i < n else 0
                ports[f"i_C{h}"] = self.a[i - 1] if 1 <= i <= n else 0
                ports[f"i_D{h}"] = self.s1 if 1 <= i <= n else 0
                if i < pos:
                    ports[f"o_S{h}"] = self.o[i]
            cout = Signal(name=f"cout_{k}")
            m.submodules[f"ccu2c_{k}"] = Instance(
                "CCU2C", p_INIT0=init, p_INIT1=init, p_INJECT1_0="NO", p_INJECT1_1="NO",
                i_CIN=carry, o_COUT=cout, **ports)
            carry = cout
        return m
