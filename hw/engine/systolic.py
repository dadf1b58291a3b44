"""Systolic int8 PE array: ``rows`` × ``cols`` PEs (elaboration parameters), partial sums flowing
down the columns.

Dataflow (see docs/engine.md): every cycle each row receives one input word and one weight word.
Row ``r`` must be fed ``r·hop`` cycles after row 0 (the engine skews its control, not the data),
so that PE(r, c) adds its product to the partial sum arriving from PE(r-1, c) in the same cycle.
Column ``c`` then emits ``Σ_r x[r, c]·w[r][c]`` at ``psum[c]`` :attr:`SystolicArray.sum_latency`
cycles after row 0 saw its operands.

Which input byte a PE multiplies depends on the layer kind (``dw``):

* standard/grouped/1×1/FC (``dw=0``): rows are elements of the reduction (input channel ×
  kernel tap, packed densely), columns output channels; every PE of row ``r`` takes lane
  ``lane[r]`` of row ``r``'s word (broadcast along the row);
* depthwise (``dw=1``): rows are kernel taps, columns channels; PE(r, c) takes lane ``c`` of row
  ``r``'s word (each row reads the pixel of its own tap), so all rows and columns stay busy.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.engine.pe import ACC, PE, psum_width
from hw.engine.static_chain import static_chain


class SystolicArray(wiring.Component):
    """``hop``: cycles a partial sum takes from one row to the next (1: PE to PE directly;
    2: one more register between them, for arrays whose multipliers sit far apart on the die —
    row ``r`` is then fed ``2r`` cycles after row 0).  ``fabric_regs=False`` leaves out the row
    fan-out and operand registers in the fabric: the operands go straight to the multipliers' own
    input registers (small arrays on small FPGAs)."""

    def __init__(self, rows: int, cols: int, hop: int = 1, bels: dict | None = None,
                 fabric_regs: bool = True):
        if hop < 1:
            raise ValueError("hop must be at least 1")
        self.rows, self.cols, self.hop = rows, cols, hop
        self.fabric_regs = bool(fabric_regs)
        #: ``{(r, c): site}``: fixed multiplier sites (ECP5, ``hw.engine.dsp_sites``), or None
        self.bels = bels or {}
        self.lanes = max(rows, cols)
        super().__init__({
            "dw": In(1),
            "lane": In(data.ArrayLayout(range(self.lanes), rows)),
            "x": In(data.ArrayLayout(data.ArrayLayout(signed(8), self.lanes), rows)),
            "w": In(data.ArrayLayout(data.ArrayLayout(signed(8), cols), rows)),
            "psum": Out(data.ArrayLayout(ACC, cols)),
        })

    @staticmethod
    def latency(fabric_regs: bool = True) -> int:
        """Cycles from a row's operands to its PE's partial sum: the row fan-out register and
        the PE's operand register in the fabric (``fabric_regs``), then the PE (operand
        register, product register, partial-sum register)."""
        return (2 if fabric_regs else 0) + PE.LATENCY

    @property
    def sum_latency(self) -> int:
        """Cycles from row 0's operands to the column sum at ``psum``."""
        return self.latency(self.fabric_regs) + (self.rows - 1) * self.hop

    def elaborate(self, platform):
        m = Module()
        below = [0] * self.cols
        # the partial sums need only the bits of a full column (19 for 9 rows), not 32: shorter
        # adders and registers in every PE
        width = psum_width(self.rows)
        # the layer kind reaches row r through stage r of one chain (hw.engine.static_chain): not one
        # net driving every PE's operand multiplexer across the die; dw is static during a
        # layer and row r's operands come r·hop cycles late anyway
        dw_chain = static_chain(m, self.dw, self.rows, "dw")
        for r in range(self.rows):
            # row fan-out register: the selected byte (standard layers), the word (depthwise)
            # and the weights are registered once per row before they fan out to the columns,
            # so the lane multiplexer and the memory outputs never share a cycle with the route
            # to the multipliers
            xr = Signal(signed(8), name=f"x_row_{r}")
            xw = Signal(data.ArrayLayout(signed(8), self.cols), name=f"x_word_{r}")
            wr = Signal(data.ArrayLayout(signed(8), self.cols), name=f"w_row_{r}")
            dw = dw_chain[r]
            regs = m.d.sync if self.fabric_regs else m.d.comb
            regs += [xr.eq(self.x[r].as_value().word_select(self.lane[r], 8)),
                     xw.eq(self.x[r].as_value()[:8 * self.cols]), wr.eq(self.w[r])]
            for c in range(self.cols):
                pe = PE(width, bel=self.bels.get((r, c)))
                m.submodules[f"pe_{r}_{c}"] = pe
                # the PE's own operand registers in the fabric, beside its multiplier: the row
                # registers' long route across the array ends here, not at the multiplier's
                # input register behind the layer-kind multiplexer (each register has its own
                # input, xw[c], so synthesis cannot merge them back into one per row)
                xp = Signal(signed(8), name=f"x_pe_{r}_{c}")
                wp = Signal(signed(8), name=f"w_pe_{r}_{c}")
                regs += [xp.eq(Mux(dw, xw[c], xr)), wp.eq(wr[c])]
                m.d.comb += [pe.x.eq(xp), pe.w.eq(wp), pe.psum_in.eq(below[c])]
                below[c] = pe.psum_out
                for k in range(self.hop - 1 if r < self.rows - 1 else 0):
                    hop_reg = Signal(signed(width), name=f"hop_{r}_{c}_{k}")
                    m.d.sync += hop_reg.eq(below[c])
                    below[c] = hop_reg
        for c in range(self.cols):
            m.d.comb += self.psum[c].eq(below[c])
        return m
