"""Fixed multiplier sites for the systolic array on the ECP5-85F.

Left to itself, nextpnr's analytic placer solves the whole design and only then moves the 144
multipliers onto the 156 DSP sites (92 % of them); the PEs' operand multiplexers and partial-sum
adders stay where the solver put them, often a die's width away from their multiplier
(measured: 1054 multiplier-to-adder nets longer than 40 tiles), which is what congests the
router and slows the clock.  Fixing each multiplier to a site in a regular pattern lets the
placer pull the PE's logic to it instead.

The 85F has three DSP rows (y = 10, 34, 58), each with 13 blocks of four MULT18X18D sites
(tiles 0, 1, 4, 5 of a 9-tile block).  ``strips`` gives every array column a vertical strip:
array rows ``3k … 3k+2`` sit side by side in DSP row ``k``, so a partial sum moves to the
neighbouring site twice and then one DSP row down.
"""

#: first tile of each DSP block (the die's centre column has no block)
_BLOCKS = (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)
_SITES = tuple((x + dx, f"MULT18_{dx}") for x in _BLOCKS for dx in (0, 1, 4, 5))
_DSP_ROWS = (10, 34, 58)


def strips(rows: int, cols: int) -> dict:
    """``{(r, c): "X…/Y…/MULT18_k"}`` for a ``rows × cols`` array on the ECP5-85F."""
    per_row = -(-rows // len(_DSP_ROWS))            # array rows per DSP row
    used = per_row * cols
    if used > len(_SITES):
        raise ValueError(f"{rows}x{cols} PEs do not fit {len(_DSP_ROWS)} DSP rows of "
                         f"{len(_SITES)} sites as strips")
    first = (len(_SITES) - used) // 2                 # centre the strips
    bels = {}
    for r in range(rows):
        k, j = divmod(r, per_row)
        for c in range(cols):
            x, name = _SITES[first + c * per_row + j]
            bels[(r, c)] = f"X{x}/Y{_DSP_ROWS[k]}/{name}"
    return bels


SCHEMES = {"ecp5-85f": strips}
