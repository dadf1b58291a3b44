"""Where a placed ECP5 design's time goes: its slowest register-to-register paths, estimated.

nextpnr prints a critical path only after routing, and the 85F SoC does not route in a bench's
time (router1 still had 262,000 arcs to route after 44,000 iterations here).  This reads the
placed design nextpnr writes (``--write``: every cell with its site) and walks it once:
a path starts at a flip-flop (0.55 ns), a block RAM (4.3 ns: no output register) or a
multiplier (2.5 ns), crosses logic cells (0.45 ns each, 0.06 ns along a carry chain) and
the wires between them, and ends at any other cell's input.  A wire costs 0.45 ns plus 0.05 ns
per tile of Manhattan distance, a fit to the routed link SoC's critical path (0.77 ns over 2
tiles, 1.23 over 4, 1.60 over 11).  The model ignores congestion and fanout, so its times
are lower than nextpnr's own estimate; its ranking of paths is what it is for.
"""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path

__all__ = ["slow_paths", "unit_of"]

START = {"TRELLIS_FF": 0.55, "DP16KD": 4.3, "MULT18X18D": 2.5}
LOGIC = {"TRELLIS_COMB", "TRELLIS_RAMW"}
WIRE, PER_TILE, CELL, CARRY, CARRY_SUM = 0.45, 0.05, 0.45, 0.06, 0.3
NEVER = -1e9          # constants and pins start no path


def _site(cell: dict):
    mo = re.match(r"X(\d+)/Y(\d+)/", cell.get("attributes", {}).get("NEXTPNR_BEL", ""))
    return (int(mo.group(1)), int(mo.group(2))) if mo else None


def _wire(a, b) -> float:
    if a is None or b is None:
        return WIRE
    return WIRE + PER_TILE * (abs(a[0] - b[0]) + abs(a[1] - b[1]))


def unit_of(cell_name: str) -> str:
    """The design unit a cell belongs to: its hierarchical name without the cell's own part
    and without numbered parts (``link.engine.controller.act.bank0.0.14`` →
    ``link.engine.controller.act``), at most four levels."""
    parts = [p for p in cell_name.split(".")[:-1]
             if not re.fullmatch(r"\d+|bank\d+|pe_\d+_\d+|\$.*", p)]
    return ".".join(parts[:4]) or "top"


def slow_paths(placed: Path | dict, n: int = 10) -> list[dict]:
    """The ``n`` slowest paths of a placed design, at most one per pair of units (the units
    and cells at both ends, the estimated delay in ns, the logic cells crossed)."""
    d = placed if isinstance(placed, dict) else json.loads(Path(placed).read_text())
    cells = d["modules"]["top"]["cells"]
    site = {name: _site(c) for name, c in cells.items()}
    driver, sinks = {}, collections.defaultdict(list)
    ins, outs = collections.defaultdict(list), collections.defaultdict(list)
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for port, bits in c["connections"].items():
            for b in bits:
                if not isinstance(b, int):
                    continue
                if dirs.get(port) == "output":
                    driver[b] = (name, port)
                    if c["type"] in LOGIC:
                        outs[name].append((port, b))
                elif dirs.get(port) == "input":
                    sinks[b].append((name, port))
                    if c["type"] in LOGIC:
                        ins[name].append((port, b))
    logic = {name for name, c in cells.items() if c["type"] in LOGIC}
    arrival, came_from = {}, {}

    def at_net(b):
        """Arrival time at the driver of net bit ``b`` and the driving cell."""
        if b not in driver:
            return NEVER, None
        cell, port = driver[b]
        if cell in logic:
            return arrival.get((cell, port), NEVER), cell
        return START.get(cells[cell]["type"], NEVER), cell

    waiting = {c: sum(1 for _, b in ins[c] if driver.get(b, (None,))[0] in logic) for c in logic}
    ready = collections.deque(c for c, k in waiting.items() if k == 0)
    while ready:
        cell = ready.popleft()
        arrive = {}
        for port, b in ins[cell]:
            t, src = at_net(b)
            arrive[port] = (t + (0.0 if port == "FCI" else _wire(site.get(src), site[cell])), b)
        for oport, ob in outs[cell]:
            best = (NEVER, None)
            for port, (t, b) in arrive.items():
                t += (CARRY if oport == "FCO" else CARRY_SUM) if port == "FCI" else CELL
                if t > best[0]:
                    best = (t, b)
            arrival[(cell, oport)], came_from[(cell, oport)] = best
            for sink, _ in sinks.get(ob, ()):
                if sink in logic:
                    waiting[sink] -= 1
                    if waiting[sink] == 0:
                        ready.append(sink)
    ends = []
    for b, ss in sinks.items():
        t, src = at_net(b)
        for sink, port in ss:
            if t > 0 and cells[sink]["type"] in START:             # a register, not logic
                ends.append((t + _wire(site.get(src), site.get(sink)), b, sink, port))
    ends.sort(key=lambda e: -e[0])
    rows, seen = [], set()
    for t, b, sink, port in ends:
        chain, x, start = [], b, None
        while x is not None and x in driver:
            cell, oport = driver[x]
            if cell not in logic:
                start = cell
                break
            chain.append(cell)
            x = came_from.get((cell, oport))
        start = start or (chain[-1] if chain else "?")
        key = (unit_of(start), unit_of(sink))
        if key in seen:
            continue
        seen.add(key)
        rows.append(dict(ns=round(t, 1), logic_cells=len(chain), from_unit=key[0],
                         to_unit=key[1], from_cell=start, to_cell=f"{sink}.{port}"))
        if len(rows) == n:
            break
    return rows
