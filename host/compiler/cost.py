"""Cost model of a fusion group on a board: MACs, off-chip bytes, on-chip bytes, cycles.

The model is deliberately small and stated in full in ``docs/scheduler.md``.  Its parts:

**Engine dataflow** (weight-stationary, as ``hw/engine/engine.py`` schedules it): a ``rows × cols`` PE
array holds a tile of weights, the reduction (kernel tap × input channel of a group) packed densely
on the rows and output channels on the columns.  One engine run (a layer on one block, or one
pass of output channels) takes, as ``docs/engine.md`` states and the RTL tests assert,
``n_ob · Ho · Wo · slot − (slot − steps) + latency`` cycles with ``n_ob = groups ·
ceil(Cout_g/cols)``, ``steps = ceil(kh·kw·Cin_g/rows)`` (depthwise: ``n_ob = ceil(C/cols)``,
``steps = ceil(kh·kw/read_ports)``), ``slot = max(steps, drain)`` and ``drain = ceil(cols /
post_lanes)``; a reduction longer than the step table runs as ``n_it`` iterations of a shorter
table (``host.compiler.reduction``, :func:`engine_run`).  ``latency`` and ``drain`` are read from the board's
:class:`hw.engine.engine.EngineConfig` (:attr:`host.compiler.boards.Board.engine`), never restated here, so the
model follows the RTL.  Calibrated on the RTL engine (``host.bench.plan.calibrate``,
``docs/scheduler_calibration.json``).  Pooling, add, concat, permute and clamp run on a
``cols``-lane vector unit (one window tap per cycle per lane).  Fully connected layers are a
1×1 convolution on a 1×1 map.  Flatten and a channel slice (a channel range of a CHW map, one
contiguous address range) cost nothing; inside a blocked group the slice's block is still
counted as a buffer of its own (an upper bound on the on-chip bytes).

**Execution of a group** (``blocked``): the group's input map is cut into ``nby × nbx`` blocks
(``host.compiler.plan.Group.block`` on the input); each block runs through every node of the group on chip
and the group's output tensors (those consumed outside the group, or the network output) are
written off-chip.  Per block the on-chip buffers hold every tensor live at the current node, at its
per-block size (with halo under ``fused``).  Weights are either *resident* (loaded once, kept) or
*streamed* once per block through a double-buffered ``cols``-channel tile; a greedy choice keeps the
largest weights resident that still fit beside the block buffers.  With one block every weight is
streamed exactly once.

**Single layers** may also run ``streamed`` (weight-outer): the layer's output channels are split
into passes whose weights fit on chip beside a line buffer of ``kh + sh`` input rows; each pass
streams the whole input map once.  Off-chip bytes: ``in · passes + out + weights``.

Time per group = ``max(cycles / f_clk, off-chip bytes / bandwidth)`` (double-buffered transfers
overlap computation); fps = 1 / Σ groups.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from host.model.ir import FC, ChannelSlice, Clamp, Conv, Flatten, GlobalAvgPool, GlobalMaxPool, Graph, Pool

PARAM_BYTES_PER_CHANNEL = 8     # int32 folded bias + int32 requantisation multiplier/shift


def engine_config(board):
    """The :class:`hw.engine.engine.EngineConfig` whose cycles the model follows: the board's
    (:attr:`host.compiler.boards.Board.engine`), or one built from ``pe_rows``/``pe_cols`` (with
    ``post_lanes``, default ``cols``) for board-like objects without one."""
    eng = getattr(board, "engine", None)
    if eng is not None:
        return eng
    from hw.engine.engine import EngineConfig
    return EngineConfig(rows=board.pe_rows, cols=board.pe_cols,
                        post_lanes=getattr(board, "post_lanes", None),
                        lut_requant=getattr(board, "lut_requant", False))


def engine_run(engine, n_ob: int, steps: int, pixels: int, n_it: int = 1) -> tuple[int, int]:
    """(cycles proportional to the output area, constant cycles per run) of one engine run whose
    pixels take ``n_it`` iterations of ``steps`` (``host.compiler.reduction``): with the last
    iteration's ``slot = max(steps, drain − (n_it − 1)·steps)``, ``n_ob·pixels·((n_it − 1)·steps
    + slot)`` and ``latency − (slot − steps)`` (``docs/engine.md``, exact)."""
    from host.compiler.reduction import last_slot
    slot = last_slot(steps, n_it, engine.drain)
    return n_ob * pixels * ((n_it - 1) * steps + slot), engine.latency - (slot - steps)


def reduction_run(engine, n_ob: int, kh: int, kw: int, ig: int, pixels: int):
    """:func:`engine_run` for a standard (non-depthwise) layer, its reduction laid out as the
    layer compiler does (:func:`host.compiler.reduction.plan_reduction`; dense when no plan
    fits, which the compiler then refuses)."""
    from host.compiler.reduction import plan_reduction
    red = plan_reduction(kh, kw, ig, engine.rows, engine.lanes, engine.step_depth,
                         dense_only=bool(engine.line_rows), ports=engine.read_ports)
    if red is None:
        return engine_run(engine, n_ob, cdiv(kh * kw * ig, engine.rows), pixels)
    return engine_run(engine, n_ob, red.steps, pixels, red.n_it)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def block_grid(size: int, block: int | None) -> list:
    """As :func:`host.runtime.golden.block_grid`: consecutive ranges of ``block`` (last may be shorter)."""
    if block is None or block >= size:
        return [(0, size)]
    return [(s, min(s + block, size)) for s in range(0, size, block)]


@dataclass
class NodeInfo:
    idx: int
    name: str
    op: str
    node: object
    inputs: list
    output: str
    spatial: bool
    window: tuple | None         # (kh, kw, sh, sw, pt, pl, pb, pr) for conv/pool, else None
    macs: int                    # of the whole layer
    cycles: int                  # of the whole layer on the array
    out_pixels: int
    weight_bytes: int            # int8 weights + per-channel parameters
    weight_tile: int             # bytes of one streamed cols-wide weight tile
    weight_per_cout: int         # bytes of weights per output channel
    latency: int = 0             # constant cycles per engine run (conv/FC): fill/drain


class NetInfo:
    """Everything the scheduler needs from a graph, computed once."""

    def __init__(self, graph: Graph, board, preload_weights: bool = False, engine=None):
        self.graph = graph
        self.board = board
        self.engine = eng = engine or engine_config(board)
        self.nodes: list[NodeInfo] = []
        self.index = {}
        self.tshape = {n: tuple(t.shape) for n, t in graph.tensors.items()}
        self.producer_idx = {graph.input: -1}
        self.consumer_idx: dict = {}
        rows, cols = eng.rows, eng.cols
        stats = graph.layer_stats()
        for k, (n, st) in enumerate(zip(graph.nodes, stats)):
            out_shape = self.tshape[n.output]
            pix = out_shape[1] * out_shape[2] if len(out_shape) == 3 else 1
            in_shape = self.tshape[n.inputs[0]]
            wb, tile, per_cout, lat = 0, 0, 0, 0
            if isinstance(n, Conv):
                o, i, kh, kw = n.weight.shape
                g = n.groups
                og = o // g
                if n.depthwise:        # taps on the rows, channels across the columns
                    cyc, lat = engine_run(eng, cdiv(o, cols), cdiv(kh * kw, eng.read_ports), pix)
                else:                  # (tap, channel) reduction on the rows, tiled if long
                    cyc, lat = reduction_run(eng, g * cdiv(og, cols), kh, kw, i, pix)
                wb = int(n.weight.size) + PARAM_BYTES_PER_CHANNEL * o
                per_cout = i * kh * kw + PARAM_BYTES_PER_CHANNEL
                tile = min(o, cols) * per_cout
            elif isinstance(n, FC):
                o, i = n.weight.shape
                cyc, lat = reduction_run(eng, cdiv(o, cols), 1, 1, i, 1)
                wb = int(n.weight.size) + PARAM_BYTES_PER_CHANNEL * o
                per_cout = i + PARAM_BYTES_PER_CHANNEL
                tile = rows * cols
            elif isinstance(n, Pool):
                kh, kw = n.kernel
                cyc = cdiv(out_shape[0], cols) * kh * kw * pix
            elif isinstance(n, (GlobalAvgPool, GlobalMaxPool)):
                cyc = cdiv(in_shape[0], cols) * in_shape[1] * in_shape[2]
            elif isinstance(n, (Flatten, ChannelSlice)):   # the same bytes at another address
                cyc = 0
            else:                                         # add, concat, permute, clamp
                cyc = cdiv(out_shape[0], cols) * pix * len(n.inputs)
            is_map_in = len(in_shape) == 3
            window = n.window() if isinstance(n, (Conv, Pool)) else None
            info = NodeInfo(k, n.name, n.op, n, list(n.inputs), n.output,
                            bool(n.spatial and is_map_in and len(out_shape) == 3), window,
                            int(st["macs"]), int(cyc), pix, wb, tile, per_cout, lat)
            self.nodes.append(info)
            self.index[n.name] = k
            self.producer_idx[n.output] = k
            for t in n.inputs:
                self.consumer_idx.setdefault(t, []).append(k)
        self.last_consumer = {t: max(c) for t, c in self.consumer_idx.items()}
        self.last_consumer[graph.output] = len(graph.nodes) + 1
        # boards without off-chip memory keep every weight on chip, loaded once (not per frame)
        self.weights_total = sum(ni.weight_bytes for ni in self.nodes)
        self.preloaded = bool(preload_weights)
        self.prop_cache: dict = {}
        # y and x extents coincide when every map is square and every window symmetric
        self.symmetric = all(s[1] == s[2] for s in self.tshape.values() if len(s) == 3) and all(
            ni.window is None or (ni.window[0] == ni.window[1] and ni.window[2] == ni.window[3]
                                  and ni.window[4] == ni.window[5] and ni.window[6] == ni.window[7])
            for ni in self.nodes)

    # ---- tensors ------------------------------------------------------------------------
    def channels(self, t: str) -> int:
        return self.tshape[t][0]

    def size(self, t: str) -> int:
        return math.prod(self.tshape[t])

    def dim(self, t: str, axis: int) -> int:
        return self.tshape[t][1 + axis]

    def group_outputs(self, stop: int) -> list:
        """Tensors made before ``stop`` and needed from ``stop`` on (candidate group outputs)."""
        return [ni.output for ni in self.nodes[:stop] if self.last_consumer.get(ni.output, -1) >= stop]

    def consumed_from(self, t: str, j: int) -> bool:
        """Is ``t`` needed by a node at index ≥ j (or is it the network output)?"""
        return self.last_consumer.get(t, -1) >= j


@dataclass
class GroupCost:
    """The cost of one group under one execution choice (see the module docstring)."""
    start: int
    stop: int                      # nodes [start, stop)
    mode: str                      # "blocked" | "streamed"
    block: tuple | None            # plan block on the group's input map (None: whole map)
    grid: tuple = (1, 1)           # blocks along H and W
    weights: int = 0               # off-chip bytes
    act_in: int = 0
    act_out: int = 0
    onchip: int = 0
    macs: int = 0
    cycles: int = 0
    passes: int = 1                # streamed: passes over the input
    resident: tuple = ()           # blocked: names of nodes whose weights stay on chip
    per_node: dict = field(default_factory=dict)

    @property
    def nblocks(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def offchip(self) -> int:
        return self.weights + self.act_in + self.act_out

    def seconds(self, board) -> float:
        return max(self.cycles / board.clock_hz, self.offchip / board.offchip_bytes_per_s)

    def key(self):
        """Ordering used by the scheduler: off-chip bytes, then cycles, then on-chip bytes."""
        return (self.offchip, self.cycles, self.onchip)


# ---------------------------------------------------------------------------------------------
# Streamed single layers (weight-outer passes; also every layer of the `layer` schedule's
# alternatives)
# ---------------------------------------------------------------------------------------------

def stream_tail(net: NetInfo, k: int, stop: int) -> int | None:
    """Bytes per output channel of the line buffers that pooling/clamp nodes ``[k+1, stop)``
    need to consume conv ``k``'s output as it is produced (None if they cannot: not a chain of
    channel-local nodes, or an intermediate map is needed elsewhere)."""
    if not isinstance(net.nodes[k].node, Conv):
        return None
    extra = 0
    for m in range(k + 1, stop):
        prev, ni = net.nodes[m - 1], net.nodes[m]
        if not isinstance(ni.node, (Pool, Clamp)) or ni.inputs != [prev.output]:
            return None
        if net.consumer_idx.get(prev.output) != [m] or prev.output == net.graph.output:
            return None
        if ni.window is not None:
            kh, kw, sh, sw, pt, pl, pb, pr = ni.window
            extra += (kh + sh) * (net.dim(prev.output, 1) + pl + pr)
    return extra


def streamed_cost(net: NetInfo, k: int, budget: int, detail: bool = False,
                  stop: int | None = None) -> GroupCost | None:
    """Node ``k`` run streamed (weight-outer passes), with the channel-local pooling/clamp nodes
    ``[k+1, stop)`` applied to its output rows on the fly.  None if even one output-channel tile
    does not fit (or the tail cannot be streamed)."""
    if stop is not None and stop > k + 1:
        extra = stream_tail(net, k, stop)
        if extra is None:
            return None
        gc = _streamed_one(net, k, budget, detail, extra)
        if gc is None:
            return None
        tail = net.nodes[k + 1:stop]
        gc.stop = stop
        gc.act_out = net.size(tail[-1].output)
        gc.cycles += sum(t.cycles for t in tail)
        if detail:
            d = gc.per_node[net.nodes[k].name]
            d["act_out"] = 0
            for t in tail:
                gc.per_node[t.name] = dict(macs=t.macs, cycles=t.cycles, weights=0, act_in=0,
                                           act_out=0, onchip=gc.onchip)
            gc.per_node[tail[-1].name]["act_out"] = gc.act_out
        return gc
    return _streamed_one(net, k, budget, detail, 0)


def _streamed_one(net: NetInfo, k: int, budget: int, detail: bool, extra_per_channel: int):
    ni = net.nodes[k]
    n = ni.node
    cols = net.engine.cols
    out = ni.output
    ins = ni.inputs
    in_bytes = sum(net.size(t) for t in ins)
    out_bytes = net.size(out)
    passes = 1
    if isinstance(n, (Flatten, ChannelSlice)):  # the same bytes (at an offset): free
        gc = GroupCost(k, k + 1, "streamed", None, onchip=0, macs=0, cycles=0)
    elif isinstance(n, Conv):
        c, h, w = net.tshape[ins[0]]
        o, wo = net.tshape[out][0], net.tshape[out][2]
        kh, kw, sh, sw = ni.window[:4]
        line = (kh + sh) * (w + ni.window[5] + ni.window[7]) * c
        co_t = None
        per_cout = 0 if net.preloaded else ni.weight_per_cout
        for cand in range(o, 0, -1):           # largest channel tile that fits
            if cand != o and cand % min(cols, o):
                continue
            need = line + 2 * wo * cand + cand * (per_cout + extra_per_channel)
            if need <= budget:
                co_t = cand
                break
        if co_t is None:
            # fine-grained: rows×cols weight tiles, int32 partial sums for one output row of
            # cols channels, kh input rows of `rows` channels; every pass of cols output channels
            # re-reads the input ceil(kh/sh) times (rows are not kept between channel tiles)
            rows = net.engine.rows
            wt = 0 if net.preloaded else 2 * min(rows, ni.node.weight.shape[1]) * min(cols, o) * kh * kw
            onchip = ((kh + sh) * (w + ni.window[5] + ni.window[7]) * min(c, rows) + wt
                      + (4 * wo + extra_per_channel) * min(cols, o))
            if onchip > budget:
                return None
            passes = cdiv(o, min(cols, o))
            reread = (passes if n.groups == 1 else max(1, cdiv(passes, n.groups))) * cdiv(kh, sh)
            gc = GroupCost(k, k + 1, "streamed", None, weights=0 if net.preloaded else ni.weight_bytes,
                           act_in=in_bytes * reread, act_out=out_bytes, onchip=onchip,
                           macs=ni.macs, cycles=ni.cycles + ni.latency * passes, passes=passes)
            if detail:
                gc.per_node = {ni.name: dict(macs=gc.macs, cycles=gc.cycles, weights=gc.weights,
                                             act_in=gc.act_in, act_out=gc.act_out, onchip=gc.onchip)}
            return gc
        passes = cdiv(o, co_t)
        # grouped / depthwise: a pass only needs its own groups' input channels
        reread = passes if n.groups == 1 else max(1, cdiv(passes, n.groups))
        onchip = line + 2 * wo * co_t + co_t * (per_cout + extra_per_channel)
        gc = GroupCost(k, k + 1, "streamed", None, weights=0 if net.preloaded else ni.weight_bytes,
                       act_in=in_bytes * reread, act_out=out_bytes, onchip=onchip,
                       macs=ni.macs, cycles=ni.cycles + ni.latency * passes, passes=passes)
    elif isinstance(n, FC):
        i = net.size(ins[0])
        o = net.size(out)
        tile = 0 if net.preloaded else 2 * ni.weight_tile
        o_t = min(o, max(0, (budget - i - tile) // 4))   # int32 accumulators
        if o_t < 1:
            return None
        passes = cdiv(o, o_t)
        gc = GroupCost(k, k + 1, "streamed", None, weights=0 if net.preloaded else ni.weight_bytes,
                       act_in=in_bytes * passes, act_out=out_bytes,
                       onchip=i + 4 * o_t + tile, macs=ni.macs, cycles=ni.cycles + ni.latency * passes,
                       passes=passes)
    else:
        shape = net.tshape[ins[0]]
        if len(shape) == 3:
            c, h, w = shape
            if ni.window is not None:
                kh, kw, sh, sw, pt, pl, pb, pr = ni.window
                onchip = (kh + sh) * (w + pl + pr) * c + 2 * net.tshape[out][2] * net.tshape[out][0]
            elif isinstance(n, (GlobalAvgPool, GlobalMaxPool)):
                onchip = 2 * w * c + 4 * c
            else:
                onchip = 2 * sum(net.tshape[t][2] * net.tshape[t][0] for t in ins) \
                    + 2 * net.tshape[out][2] * net.tshape[out][0]
        else:
            onchip = in_bytes + out_bytes
        if onchip > budget:
            return None
        gc = GroupCost(k, k + 1, "streamed", None, act_in=in_bytes, act_out=out_bytes,
                       onchip=onchip, macs=ni.macs, cycles=ni.cycles)
    if detail:
        gc.per_node = {ni.name: dict(macs=gc.macs, cycles=gc.cycles, weights=gc.weights,
                                     act_in=gc.act_in, act_out=gc.act_out, onchip=gc.onchip)}
    return gc


# ---------------------------------------------------------------------------------------------
# Blocked groups: per-axis block extents (the golden model's regions are separable in y and x)
# ---------------------------------------------------------------------------------------------

class AxisExtents:
    """Per-block extents along one axis of every tensor of groups that end at node ``stop``
    with output block ``ob`` on that node's output, grown one node at a time towards the front
    (``extend``), so all groups [i, stop) share the work.

    ``lens[t]`` lists tensor ``t``'s extent in each block; ``ok`` turns False for good once a
    node cannot be blocked (``block`` schedule: blocks that do not tile exactly).
    """

    def __init__(self, net: NetInfo, stop: int, axis: int, ob: int, exact: bool):
        self.net, self.stop, self.axis, self.exact = net, stop, axis, exact
        last = net.nodes[stop - 1]
        self.Ho = net.dim(last.output, axis)
        self.grid = block_grid(self.Ho, ob)
        self.ob = ob
        self.start = stop
        self.ok = True
        self.need: dict = {}       # fused: tensor -> list of (lo, hi) per block
        self.lens: dict = {}
        self.stats: dict = {}      # tensor -> (largest extent, sum of extents)

    def _set(self, t: str, lens: list):
        self.lens[t] = lens
        self.stats[t] = (max(lens), sum(lens))

    def _prop(self, t: str):
        """Block ranges of tensor t proportional to the output grid (None if not integral)."""
        d = self.net.dim(t, self.axis)
        key = (d, self.Ho, self.ob, self.exact)
        cache = self.net.prop_cache
        if key not in cache:
            cache[key] = self._prop_uncached(d)
        return cache[key]

    def _prop_uncached(self, d: int):
        Ho = self.Ho
        rs = []
        for a, b in self.grid:
            if self.exact:
                if (a * d) % Ho or (b * d) % Ho:
                    return None
                rs.append((a * d // Ho, b * d // Ho))
            else:
                rs.append((a * d // Ho, -(-b * d // Ho)))
        return rs

    def extend(self) -> bool:
        """Add node ``start - 1`` to the front of the group; returns ``ok``."""
        k = self.start - 1
        ni = self.net.nodes[k]
        self.start = k
        if not self.ok:
            return False
        net, axis = self.net, self.axis
        if self.exact:
            # block convolution: every tensor's blocks are the output grid scaled exactly, and
            # each node maps its input blocks onto its output blocks as a whole image would
            for t in [ni.output, *ni.inputs]:
                if t not in self.lens:
                    rs = self._prop(t)
                    if rs is None:
                        self.ok = False
                        return False
                    self._set(t, [b - a for a, b in rs])
            outl = self.lens[ni.output]
            if ni.window is not None:
                kh, kw, sh, sw, pt, pl, pb, pr = ni.window
                k_, s_, p0, p1 = (kh, sh, pt, pb) if axis == 0 else (kw, sw, pl, pr)
                for lin, lout in zip(self.lens[ni.inputs[0]], outl):
                    if lin < 1 or (lin + p0 + p1 - k_) // s_ + 1 != lout or lout < 1:
                        self.ok = False
                        return False
            else:
                for t in ni.inputs:
                    if self.lens[t] != outl:
                        self.ok = False
                        return False
            return True
        # fused: back-propagate the regions each block needs (as golden.run_group_fused)
        if net.consumed_from(ni.output, self.stop):
            prop = self._prop(ni.output)
            old = self.need.get(ni.output)
            self.need[ni.output] = prop if old is None else \
                [(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(old, prop)]
        r_out = self.need.get(ni.output)
        if r_out is None:                 # not needed by anything in the group (cannot happen)
            return True
        self._set(ni.output, [b - a for a, b in r_out])
        for t in ni.inputs:
            d = net.dim(t, axis)
            if ni.window is not None:
                kh, kw, sh, sw, pt, pl, pb, pr = ni.window
                k_, s_, p0 = (kh, sh, pt) if axis == 0 else (kw, sw, pl)
                rs = [(max(0, a * s_ - p0), min(d, (b - 1) * s_ - p0 + k_)) for a, b in r_out]
            else:
                rs = [(max(0, a), min(d, b)) for a, b in r_out]
            old = self.need.get(t)
            self.need[t] = rs if old is None else \
                [(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(old, rs)]
            self._set(t, [b - a for a, b in self.need[t]])
        return True

    def plan_block(self, t_in: str) -> int | None:
        """The block size on the group input ``t_in`` that makes the golden model use this grid."""
        H = self.net.dim(t_in, self.axis)
        Ho = self.Ho
        if len(self.grid) == 1:
            return None
        if self.exact:
            return self.ob * H // Ho
        for b in range(max(1, self.ob * H // Ho - 1), self.ob * H // Ho + 2):
            if max(1, cdiv(b * Ho, H)) == self.ob:
                return b
        return None


def blocked_cost(net: NetInfo, start: int, ay: AxisExtents, ax: AxisExtents, budget: int,
                 detail: bool = False) -> GroupCost | None:
    """Cost of nodes [start, ay.stop) blocked on the grid of ``ay`` × ``ax`` (both extended to
    ``start``).  None if the activation buffers alone exceed ``budget``."""
    stop = ay.stop
    nodes = net.nodes[start:stop]
    produced = {ni.output: ni.idx for ni in nodes}
    ly, lx = ay.lens, ax.lens
    nby, nbx = len(ay.grid), len(ax.grid)
    nb = nby * nbx
    # live ranges over the steps of the group
    first_use: dict = {}
    last_use: dict = {}
    for ni in nodes:
        for t in ni.inputs:
            first_use.setdefault(t, ni.idx)
            last_use[t] = ni.idx
    diff = [0] * (stop - start + 1)
    buf = {}
    act_in = 0
    my, mx = ay.stats, ax.stats
    for t in set(first_use) | set(produced):
        c = net.channels(t)
        buf[t] = c * my[t][0] * mx[t][0]
        if t in produced:
            s0 = produced[t]
            s1 = max(last_use.get(t, s0), s0)
        else:
            s0, s1 = first_use[t], last_use[t]
            act_in += c * my[t][1] * mx[t][1]
        diff[s0 - start] += buf[t]
        diff[s1 - start + 1] -= buf[t]
    steps = []
    acc = 0
    for d in diff[:-1]:
        acc += d
        steps.append(acc)
    act_peak = max(steps)
    if act_peak > budget:
        return None
    outputs = [t for t in produced if net.consumed_from(t, stop)]
    act_out = sum(net.size(t) for t in outputs)
    macs = cycles = 0
    node_macs = {}
    for ni in nodes:
        area = my[ni.output][1] * mx[ni.output][1]
        m = ni.macs * area // ni.out_pixels if ni.out_pixels else ni.macs
        cy = ni.cycles * area // ni.out_pixels if ni.out_pixels else ni.cycles
        cy += ni.latency * nb
        node_macs[ni.name] = (m, cy)
        macs += m
        cycles += cy
    gc = _finish(net, start, ay, ax, budget, act_peak, act_in, act_out, macs, cycles)
    if gc is None or not detail:
        return gc
    out_set = set(outputs)
    wres = sum(net.nodes[net.index[n]].weight_bytes for n in gc.resident)
    wbuf = gc.onchip - act_peak - wres
    for ni in nodes:
        m, cy = node_macs[ni.name]
        ain = 0
        for t in ni.inputs:
            if t not in produced and first_use[t] == ni.idx:
                ain += net.channels(t) * sum(ly[t]) * sum(lx[t])
        w = 0 if net.preloaded else ni.weight_bytes * (1 if (gc.nblocks == 1 or ni.name in gc.resident) else gc.nblocks)
        gc.per_node[ni.name] = dict(
            macs=m, cycles=cy, weights=w, act_in=ain,
            act_out=net.size(ni.output) if ni.output in out_set else 0,
            onchip=steps[ni.idx - start] + wres + wbuf)
    return gc


def _finish(net: NetInfo, start: int, ay, ax, budget: int, act_peak: int, act_in: int,
            act_out: int, macs: int, cycles: int, agg=None, with_block: bool = True) -> GroupCost | None:
    """Weights (residency) and the plan block of a blocked group whose activations are known.
    ``agg`` = (weighted nodes sorted by decreasing weight bytes, their sum, largest tile), kept
    by :class:`GroupAccumulator`; computed here when absent."""
    nby, nbx = len(ay.grid), len(ax.grid)
    nb = nby * nbx
    if agg is None:
        weighted = sorted((ni for ni in net.nodes[start:ay.stop] if ni.weight_bytes),
                          key=lambda ni: (-ni.weight_bytes, ni.idx))
        agg = (weighted, sum(ni.weight_bytes for ni in weighted),
               max((ni.weight_tile for ni in weighted), default=0))
    weighted, wsum, tile_max = agg
    # weights: with one block everything streams once; else keep the largest resident that fit
    # beside the block buffers and a streaming tile buffer (greedy, largest first)
    resident = []
    wres = 0
    if net.preloaded:
        wbuf = wtraffic = 0
    elif nb == 1:
        wbuf = 2 * tile_max
        wtraffic = wsum
    else:
        room = budget - act_peak - 2 * tile_max
        tile_nr = 0                        # largest tile of the weights streamed per block
        if room > 0:
            for ni in weighted:
                if ni.weight_bytes <= room:
                    resident.append(ni.name)
                    room -= ni.weight_bytes
                    wres += ni.weight_bytes
                elif ni.weight_tile > tile_nr:
                    tile_nr = ni.weight_tile
        else:
            tile_nr = tile_max
        wbuf = 2 * tile_nr
        wtraffic = wres + nb * (wsum - wres)
    onchip = act_peak + wres + wbuf
    if onchip > budget:
        return None
    t_in = net.nodes[start].inputs[0]
    block = None
    if nb > 1 and with_block:
        bh = ay.plan_block(t_in) or net.dim(t_in, 0)
        bw = ax.plan_block(t_in) or net.dim(t_in, 1)
        block = (bh, bw)
    return GroupCost(start, ay.stop, "blocked", block, (nby, nbx), weights=wtraffic, act_in=act_in,
                     act_out=act_out, onchip=onchip, macs=macs, cycles=cycles,
                     resident=tuple(sorted(resident)))


class GroupAccumulator:
    """Incremental :func:`blocked_cost` for the groups [i, stop) as ``i`` decreases: keeps the
    per-step activation bytes, inputs read, outputs written, MACs and cycles, updating only what
    the node added at the front changes.  ``cost(budget)`` gives the same result as
    ``blocked_cost`` (checked by the tests)."""

    def __init__(self, net: NetInfo, ay: AxisExtents, ax: AxisExtents, max_nodes: int):
        self.net, self.ay, self.ax = net, ay, ax
        self.stop = ay.stop
        self.steps = [0] * (max_nodes + 2)   # activation bytes per step, position = stop-1-idx
        self.ext: dict = {}          # tensor -> [first_use, last_use, buffer bytes, bytes read]
        self.produced: dict = {}     # tensor -> [producer, last_use, buffer bytes]
        self.act_in = self.act_out = self.macs = self.cycles = 0
        self.start = self.stop
        self.weighted: list = []     # sorted by decreasing weight bytes (then index)
        self.wsum = self.tile_max = 0

    def _add(self, s0: int, s1: int, v: int):
        # idx range [s0, s1] -> positions [stop-1-s1, stop-1-s0] (short ranges: a plain loop
        # is faster than numpy here)
        steps = self.steps
        for p in range(self.stop - 1 - s1, self.stop - s0):
            steps[p] += v

    def add_front(self):
        """Account for node ``start - 1`` (the axes must already have been extended to it)."""
        net = self.net
        k = self.start - 1
        self.start = k
        ni = net.nodes[k]
        my, mx = self.ay.stats, self.ax.stats
        t = ni.output
        b = net.channels(t) * my[t][0] * mx[t][0]
        e = self.ext.pop(t, None)
        if e is not None:
            self._add(e[0], e[1], -e[2])
            self.act_in -= e[3]
            last = e[1]
        else:
            last = k
        self._add(k, last, b)
        self.produced[t] = [k, last, b]
        if net.consumed_from(t, self.stop):
            self.act_out += net.size(t)
        for t in dict.fromkeys(ni.inputs):
            c = net.channels(t)
            b = c * my[t][0] * mx[t][0]
            rd = c * my[t][1] * mx[t][1]
            e = self.ext.get(t)
            if e is not None:
                self._add(e[0], e[1], -e[2])
                self.act_in -= e[3]
                e[0], e[2], e[3] = k, b, rd
            else:
                e = self.ext[t] = [k, k, b, rd]
            self._add(e[0], e[1], b)
            self.act_in += rd
        area = my[ni.output][1] * mx[ni.output][1]
        if ni.out_pixels:
            self.macs += ni.macs * area // ni.out_pixels
            self.cycles += ni.cycles * area // ni.out_pixels
        else:
            self.macs += ni.macs
            self.cycles += ni.cycles
        self.cycles += ni.latency * len(self.ay.grid) * len(self.ax.grid)
        if ni.weight_bytes:
            import bisect
            keys = [(-w.weight_bytes, w.idx) for w in self.weighted]
            self.weighted.insert(bisect.bisect(keys, (-ni.weight_bytes, ni.idx)), ni)
            self.wsum += ni.weight_bytes
            self.tile_max = max(self.tile_max, ni.weight_tile)

    def act_peak(self) -> int:
        return max(self.steps[:self.stop - self.start])

    def cost(self, budget: int, with_block: bool = True) -> GroupCost | None:
        """As :func:`blocked_cost` (``with_block=False``: without the plan's block size, which
        the search does not need)."""
        peak = self.act_peak()
        if peak > budget:
            return None
        return _finish(self.net, self.start, self.ay, self.ax, budget, peak, self.act_in,
                       self.act_out, self.macs, self.cycles,
                       (self.weighted, self.wsum, self.tile_max), with_block)
