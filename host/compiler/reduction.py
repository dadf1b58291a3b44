"""How a convolution's reduction (kernel taps × input channels of a group) is laid onto the
engine's rows and step table.

The engine runs a step table of ``steps`` entries ``n_it`` times per output pixel; iteration
``i`` shifts every read by ``i·it_stride`` words and every tap row by ``i·it_dy``.  Three ways
to use it, the cheapest that fits the step table wins:

``dense``
    one iteration: the whole reduction packed densely, ``ceil(kh·kw·Cin_g / rows)`` steps;
``channels``
    an iteration covers ``per`` blocks of ``lanes`` input channels (all taps); iterations walk
    the channel blocks (``it_stride = per·plane`` in the map layout of one block per plane);
``rows``
    an iteration covers ``per`` kernel rows of every input channel; iterations walk down the
    kernel (``it_stride = per·W``, ``it_dy = per``).

A kernel whose every single row over all channels, and whose every single channel block over all
taps, still exceeds the step table (e.g. 7×7 over 64 channels on a 32-entry table) has no plan:
that would need iterations over both at once.

With fewer input-memory read ports than rows (``EngineConfig.read_ports``) a step's elements
must come from at most ``ports`` input words: the elements are placed in template order, a
new step starting where one more word would be needed (:meth:`ReductionPlan.slots`); with 16
channels per word a 3×3 layer over 16·k channels packs as densely as before, a 3-channel
input takes two taps per step.

Elements the last iteration runs past the real channels or kernel rows get weight 0, so they add
nothing.  The same plan gives the layer compiler its step table (``host.compiler.layer``) and
the cost model its cycles (``host.compiler.cost``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ReductionPlan", "last_slot", "plan_reduction"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class ReductionPlan:
    kind: str            #: "dense", "channels" or "rows"
    n_it: int            #: iterations per output pixel
    steps: int           #: step-table entries per iteration
    per: int             #: channel blocks (channels) or kernel rows (rows) per iteration; 0 dense
    kh: int
    kw: int
    ig: int              #: input channels of a group
    lanes: int           #: channels per input word
    rows: int = 0        #: array rows (0: as many ports as rows, elements packed densely)
    ports: int = 0       #: input-memory read ports

    @property
    def total_steps(self) -> int:
        """Cycles of reduction per output pixel (before the drain's minimum)."""
        return self.n_it * self.steps

    def template(self) -> list[tuple[int, int, int, int]]:
        """The elements of one iteration in row order: ``(ky, kx, cb, lane)``, ``cb`` the
        channel block relative to the iteration (its input word is ``cb·plane`` further on)."""
        kw, L = self.kw, self.lanes
        # kernel rows and channels one iteration covers; taps outer, channels inner
        rows, n = {"dense": (self.kh, self.ig), "channels": (self.kh, self.per * L),
                   "rows": (self.per, self.ig)}[self.kind]
        return [(*divmod(tap, kw), *divmod(c, L)) for tap in range(rows * kw) for c in range(n)]

    def slots(self) -> tuple:
        """Per template element its place ``step·rows + row`` in the iteration's steps."""
        return _packing(self)[0]

    def weight_index(self, it: int, ky: int, kx: int, cb: int, lane: int):
        """``(ky, kx, ci)`` of the kernel that template element ``(ky, kx, cb, lane)`` of
        iteration ``it`` multiplies, or None where the iteration runs past the kernel."""
        if self.kind == "channels":
            ci = (it * self.per + cb) * self.lanes + lane
        else:
            ci = cb * self.lanes + lane
        if self.kind == "rows":
            ky += it * self.per
        if ci >= self.ig or ky >= self.kh:
            return None
        return ky, kx, ci

    def shifts(self, w: int, plane: int) -> tuple[int, int]:
        """(``it_stride``, ``it_dy``) for a map ``w`` wide with ``plane`` words per channel
        block (line mode: ``plane`` is W, one block's place in a line)."""
        if self.kind == "channels":
            return self.per * plane, 0
        if self.kind == "rows":
            return self.per * w, self.per
        return 0, 0


@lru_cache(maxsize=512)
def _packing(plan: ReductionPlan) -> tuple:
    """(slots, steps) of ``plan``'s template: each element in the next row, a new step when the
    rows are full or when the element's word would be one more than the ports read."""
    rows = plan.rows or 1
    limited = plan.ports and plan.ports < plan.rows
    slots, s, r, words = [], 0, 0, set()
    for ky, kx, cb, _ in plan.template():
        key = (ky, kx, cb)
        if r == rows or (limited and key not in words and len(words) == plan.ports):
            s, r, words = s + 1, 0, set()
        words.add(key)
        slots.append(s * rows + r)
        r += 1
    return tuple(slots), s + 1 if slots else 0


def last_slot(steps: int, n_it: int, drain: int) -> int:
    """Cycles of an output pixel's last iteration (the descriptor's ``slot``): its ``steps``,
    stretched so the whole pixel lasts at least ``drain`` cycles, the time the requant lanes
    take for one pixel."""
    return max(steps, drain - (n_it - 1) * steps)


@lru_cache(maxsize=1024)
def plan_reduction(kh: int, kw: int, ig: int, rows: int, lanes: int, step_depth: int,
                   dense_only: bool = False, ports: int | None = None) -> ReductionPlan | None:
    """The plan with the fewest steps per pixel whose iteration fits ``step_depth`` entries
    (dense when it fits); None when none does. ``ports``: the input memory's read ports
    (default ``rows``)."""
    ports = ports or rows

    def plan(kind, n_it, per):
        p = ReductionPlan(kind, n_it, 0, per, kh, kw, ig, lanes, rows, ports)
        n = len(p.template())
        steps = _cdiv(n, rows) if ports >= rows else _packing(p)[1]
        return ReductionPlan(kind, n_it, steps, per, kh, kw, ig, lanes, rows, ports)
    dense = plan("dense", 1, 0)
    if dense.steps <= step_depth or dense_only:
        return dense if dense.steps <= step_depth else None
    n_cb = _cdiv(ig, lanes)
    cands = []
    for m in range(1, n_cb if n_cb > 1 else 0):
        if _cdiv(kh * kw * m * lanes, rows) <= step_depth:      # a lower bound of its steps
            p = plan("channels", _cdiv(n_cb, m), m)
            if p.steps <= step_depth:
                cands.append(p)
    for q in range(1, kh):
        if _cdiv(q * kw * ig, rows) <= step_depth:
            p = plan("rows", _cdiv(kh, q), q)
            if p.steps <= step_depth:
                cands.append(p)
    if not cands:
        return None
    return min(cands, key=lambda p: (p.total_steps, p.n_it))
