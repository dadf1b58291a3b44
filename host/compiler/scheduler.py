"""Block-fusion scheduler: choose fusion groups and block sizes under a board's on-chip budget.

``plan_network(graph, board, schedule)`` returns ``(Plan, report)``: the :class:`host.compiler.plan.Plan`
the golden model (and the engine) executes exactly, and a JSON-able report of what it costs
(the README's keys: ``total_macs``, ``offchip_bytes``, ``onchip_peak_bytes``, ``cycles``, ``fps``,
``layers``, ``groups``).

Algorithm (``docs/scheduler.md``): dynamic programming over cut points.  A group ``[i, j)`` of
consecutive nodes costs what :mod:`host.compiler.cost` says for each execution choice:

* ``blocked`` on each candidate grid (``k × k`` blocks, or full-width bands of ``k`` rows, for k
  in :data:`GRID_CANDIDATES`, the block size being the group output's size / k, mapped back to
  the group input) — with halos under ``fused``, exact tiling without halos under ``block``;
* ``streamed`` (a layer, or a conv with the pooling/clamp nodes right after it): weight-outer
  passes with a line buffer.

Default objective: ``front[j]`` is the Pareto front of (activation bytes, weight bytes) of the
plans of nodes ``[0, j)``; the plan of the whole network is, among the plans whose total traffic
and estimated time are within ``slack`` of the least-total-traffic plan's, the one with the least
``activations + weights / trade`` (feature-map traffic cut at up to ``trade`` weight bytes per
byte, within the slack).
``weight_cost`` minimises ``activations + weight_cost × weights`` instead (``best[j]``, one
value per prefix); ``objective="time"`` minimises the estimated time per frame.

Groups are grown from their end towards the front so all groups ending at ``j`` share one
back-propagation of block extents per candidate grid (:class:`host.compiler.cost.AxisExtents`); a grid
whose buffers overflow the budget is dropped for every longer group (buffers only grow), and when
the whole-map grid fits, the finer grids are not costed (one block is never worse: no halo, no
weight re-reads).  Under ``block`` every tensor's block is the tensor scaled by one factor, so one
whole-map accumulator serves every grid.  A lower bound (weights once, outputs once) skips groups
that cannot reach the front (or beat ``best[j]``).  Tensors consumed outside their group (residual
and concat branches that are cut) are written off-chip once and read by every group that needs them.

``layer`` is the baseline: one group per node, each with its cheapest execution choice (on the
same cost model), plan blocks ``None``.
"""
from __future__ import annotations

import bisect
import time

from host.compiler.boards import Board, get_board
from host.compiler.cost import (AxisExtents, GroupAccumulator, GroupCost, NetInfo, _finish, blocked_cost, cdiv,
                   streamed_cost)
from host.errors import UserError
from host.model.ir import Clamp, Conv, Pool
from host.compiler.plan import SCHEDULES, Group, Plan

GRID_CANDIDATES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32)
MAX_GROUP_NODES = 64
OBJECTIVES = ("traffic", "time")
BANDS = True
HUGE = 1 << 62
#: default objective (``docs/scheduler.md``): among the plans whose total off-chip traffic and
#: estimated time are within DEFAULT_SLACK of the least-total-traffic plan's, the least
#: ``activation bytes + weight bytes / DEFAULT_TRADE``: feature-map traffic is cut at up to
#: DEFAULT_TRADE weight bytes re-read per feature-map byte kept on chip, never beyond the slack
DEFAULT_SLACK = 0.10
DEFAULT_TRADE = 4.0


def _grids(net: NetInfo, stop: int):
    """Distinct (ob_y, ob_x) output-block sizes of the groups ending at ``stop``."""
    out = net.nodes[stop - 1].output
    ho, wo = net.dim(out, 0), net.dim(out, 1)
    seen = []
    for k in GRID_CANDIDATES:
        ob = (cdiv(ho, k), cdiv(wo, k))
        if ob not in seen:
            seen.append(ob)
    if BANDS:
        for k in GRID_CANDIDATES[1:]:
            ob = (cdiv(ho, k), wo)                    # full-width bands of rows
            if ob not in seen:
                seen.append(ob)
    return seen


def _single_options(net: NetInfo, k: int, budget: int, exact: bool, detail=False):
    """Execution choices of node k alone: streamed, and blocked on every grid that fits."""
    opts = []
    sc = streamed_cost(net, k, budget, detail)
    if sc is not None:
        opts.append(sc)
    ni = net.nodes[k]
    if ni.spatial:
        for ob in _grids(net, k + 1):
            ay = AxisExtents(net, k + 1, 0, ob[0], exact)
            ax = AxisExtents(net, k + 1, 1, ob[1], exact)
            if ay.extend() and ax.extend():
                gc = blocked_cost(net, k, ay, ax, budget, detail)
                if gc is not None:
                    opts.append(gc)
    return opts


def _overflow_option(net: NetInfo, k: int, detail=False) -> GroupCost:
    """A layer that fits no way: streamed with an unlimited budget, flagged by its on-chip size."""
    return streamed_cost(net, k, HUGE, detail)


def _schedule_layer(net: NetInfo, budget: int, objective: str = "traffic"):
    groups = []
    b = net.board
    for k in range(len(net.nodes)):
        opts = _single_options(net, k, budget, exact=False, detail=True)
        if objective == "time":
            def key(gc):
                mem = gc.offchip / b.offchip_bytes_per_s if b.has_offchip else 0.0
                return (max(gc.cycles / b.clock_hz, mem), gc.offchip, gc.nblocks, gc.onchip)
        else:
            def key(gc):
                return (gc.offchip, gc.cycles, gc.nblocks, gc.onchip)
        groups.append(min(opts, key=key) if opts else _overflow_option(net, k, True))
    return groups


def _choices_into(net: NetInfo, budget: int, exact: bool, j: int, hopeless=None):
    """Every execution choice of the groups ``[i, j)`` ending at ``j``, as ``(i, gc, spec)``.

    ``hopeless(i, wsum, csum, out_j)`` (optional) says from a lower bound (weights once,
    cycles without halo, group outputs written once) that a group ``[i, j)`` cannot help; its
    grids are then grown (longer groups may still help) but not costed."""
    k = j - 1
    sc = streamed_cost(net, k, budget)
    if sc is not None:
        yield k, sc, ("streamed",)
    # a conv streamed with the pooling/clamp nodes after it applied on the fly
    for c in range(k - 1, max(-1, k - 4), -1):
        if not isinstance(net.nodes[c].node, (Pool, Clamp, Conv)):
            break
        if isinstance(net.nodes[c].node, Conv):
            sc = streamed_cost(net, c, budget, stop=j)
            if sc is not None:
                yield c, sc, ("streamed",)
            break
    if not net.nodes[k].spatial:
        return
    # per-axis extents are shared between grids (and between y and x on square, symmetric
    # networks); each is grown once per step
    axes: dict = {}

    def axis(a, ob_a):
        key = (0 if net.symmetric else a, ob_a)
        if key not in axes:
            axes[key] = AxisExtents(net, j, key[0], ob_a, exact)
        return axes[key]

    i = j
    wsum = csum = 0
    out_j = sum(net.size(t) for t in net.group_outputs(j))
    if exact:
        yield from _exact_choices(net, budget, j, hopeless, axis, axes, out_j)
        return
    alive = []
    for ob in _grids(net, j):
        ay, ax = axis(0, ob[0]), axis(1, ob[1])
        alive.append([ob, ay, ax, GroupAccumulator(net, ay, ax, MAX_GROUP_NODES)])
    while alive and i > max(0, j - MAX_GROUP_NODES):
        i -= 1
        if not net.nodes[i].spatial:
            break
        wsum += 0 if net.preloaded else net.nodes[i].weight_bytes
        csum += net.nodes[i].cycles
        skip = hopeless is not None and hopeless(i, wsum, csum, out_j)
        whole_fits = False
        keep = []
        ok_axis = {id(a): a.extend() for a in axes.values()}
        for entry in alive:
            ob, ay, ax, acc = entry
            if not (ok_axis[id(ay)] and ok_axis[id(ax)]):
                continue
            acc.add_front()
            if acc.act_peak() > budget:
                continue                      # buffers only grow towards the front
            nb = len(ay.grid) * len(ax.grid)
            if skip or (whole_fits and nb > 1):
                keep.append(entry)           # not costed here, still grown for longer groups
                continue
            gc = acc.cost(budget, with_block=False)
            if gc is None:
                continue
            keep.append(entry)
            if nb == 1:
                whole_fits = True
            yield i, gc, ("blocked", ob)
        if len(keep) < len(alive):
            alive = keep
            used = {id(e[1]) for e in alive} | {id(e[2]) for e in alive}
            axes = {key: a for key, a in axes.items() if id(a) in used}


def _exact_choices(net: NetInfo, budget: int, j: int, hopeless, axis, axes: dict, out_j: int):
    """``block`` schedule: the grids of the groups ending at ``j``.

    Under exact tiling every tensor's block is the whole tensor scaled by the same factor
    ``ob_y·ob_x / (Ho·Wo)``, so one whole-map :class:`GroupAccumulator` gives every grid's
    activation peak, inputs, outputs, MACs and cycles (plus ``latency`` per extra block); the
    grids differ only in whether they tile and in their weight residency.  Inputs and outputs
    being equal, a grid is offered only if it reads fewer weight bytes than every grid with
    fewer blocks (those have fewer cycles), and none after a grid that reads every weight once."""
    last = net.nodes[j - 1].output
    ho, wo = net.dim(last, 0), net.dim(last, 1)
    full_y = AxisExtents(net, j, 0, ho, True)
    full_x = AxisExtents(net, j, 1, wo, True)
    full = GroupAccumulator(net, full_y, full_x, MAX_GROUP_NODES)
    alive = []
    for ob in _grids(net, j):
        ay, ax = axis(0, ob[0]), axis(1, ob[1])
        alive.append((len(ay.grid) * len(ax.grid), ob, ay, ax))
    alive.sort(key=lambda e: e[0])
    area = ho * wo
    i = j
    wsum = csum = lat = 0
    while alive and i > max(0, j - MAX_GROUP_NODES):
        i -= 1
        ni = net.nodes[i]
        if not ni.spatial:
            break
        wsum += 0 if net.preloaded else ni.weight_bytes
        csum += ni.cycles
        lat += ni.latency
        skip = hopeless is not None and hopeless(i, wsum, csum, out_j)
        ok_axis = {id(a): a.extend() for a in axes.values()}
        full_y.extend()
        full_x.extend()
        full.add_front()
        peak_full = full.act_peak()
        agg = (full.weighted, full.wsum, full.tile_max)
        keep = []
        least_w = None
        for entry in alive:
            nb, ob, ay, ax = entry
            if not (ok_axis[id(ay)] and ok_axis[id(ax)]):
                continue
            peak = peak_full * ob[0] * ob[1] // area
            if peak > budget:
                continue                      # buffers only grow towards the front
            if skip or least_w == wsum:
                keep.append(entry)           # not costed here, still grown for longer groups
                continue
            gc = _finish(net, i, ay, ax, budget, peak, full.act_in, full.act_out, full.macs,
                         full.cycles + lat * (nb - 1), agg, with_block=False)
            if gc is None:
                continue
            keep.append(entry)
            if least_w is None or gc.weights < least_w:
                least_w = gc.weights
                yield i, gc, ("blocked", ob)
        if len(keep) < len(alive):
            alive = keep
            used = {id(e[2]) for e in alive} | {id(e[3]) for e in alive}
            for key in [key for key, a in axes.items() if id(a) not in used]:
                del axes[key]


def _group_cost(net: NetInfo, budget: int, exact: bool, i: int, j: int, spec) -> GroupCost:
    """The chosen group ``[i, j)`` recomputed with per-node detail."""
    if spec[0] == "streamed":
        return streamed_cost(net, i, budget, detail=True, stop=j)
    if spec[0] == "overflow":
        return _overflow_option(net, i, detail=True)
    ob = spec[1]
    ay = AxisExtents(net, j, 0, ob[0], exact)
    ax = AxisExtents(net, j, 1, ob[1], exact)
    for _ in range(j - i):
        ay.extend()
        ax.extend()
    return blocked_cost(net, i, ay, ax, budget, detail=True)


def _schedule_dp(net: NetInfo, budget: int, exact: bool, weight_cost: float = 1.0,
                 objective: str = "traffic"):
    """Scalar objective: ``activations + weight_cost × weights`` (ties: cycles), or the estimated
    time (ties: that traffic)."""
    n = len(net.nodes)
    best = [(HUGE, HUGE)] * (n + 1)
    best[0] = (0, 0)
    choice: list = [None] * (n + 1)

    # objective: activation bytes + weight_cost × weight bytes (1: total off-chip traffic)
    scale = 1 << 20
    wc = int(round(weight_cost * scale))

    def metric(weights, acts):
        return acts * scale + weights * wc

    # time objective, in 1/1024 cycles: max(compute, transfer) per group (transfers overlap)
    board = net.board
    per_byte = (board.clock_hz * 1024 / board.offchip_bytes_per_s) if board.has_offchip else 0.0

    def group_time(cycles, nbytes):
        return max(cycles * 1024, int(nbytes * per_byte + 0.5))

    timed = objective == "time"

    def offer(i, j, gc, spec):
        b = best[i]
        traffic = metric(gc.weights, gc.act_in + gc.act_out)
        if timed:
            cand = (b[0] + group_time(gc.cycles, gc.offchip), b[1] + traffic)
        else:
            cand = (b[0] + traffic, b[1] + gc.cycles)
        if cand < best[j]:
            best[j] = cand
            choice[j] = (i, spec)

    for j in range(1, n + 1):
        def hopeless(i, wsum, csum, out_j):
            if timed:
                return best[i][0] + group_time(csum, wsum + out_j) >= best[j][0]
            return best[i][0] + metric(wsum, out_j) >= best[j][0]

        for i, gc, spec in _choices_into(net, budget, exact, j, hopeless):
            offer(i, j, gc, spec)
        if best[j][0] >= HUGE:                       # nothing fits: overflow, flagged in the report
            offer(j - 1, j, _overflow_option(net, j - 1), ("overflow",))
    return _reconstruct(net, budget, exact, [choice[j] for j in range(n + 1)])


class _Front:
    """A Pareto front of plans of a prefix ``[0, j)`` in (activation bytes, weight bytes),
    sorted by increasing ``a`` (so decreasing ``w``); ties in both keep the shorter estimated
    time ``t``.  ``back[k]`` = (choice index into the edges ending at j, parent label)."""

    __slots__ = ("a", "w", "t", "back")

    def __init__(self):
        self.a, self.w, self.t, self.back = [], [], [], []

    def dominated(self, a, w) -> bool:
        k = bisect.bisect_right(self.a, a)
        return k > 0 and self.w[k - 1] <= w

    def insert(self, a, w, t, back):
        fa, fw = self.a, self.w
        k = bisect.bisect_right(fa, a)
        if k > 0 and fw[k - 1] <= w:
            if fa[k - 1] == a and fw[k - 1] == w and t < self.t[k - 1]:
                self.t[k - 1] = t
                self.back[k - 1] = back
            return
        k = bisect.bisect_left(fa, a)
        e = k
        while e < len(fa) and fw[e] >= w:
            e += 1
        fa[k:e] = [a]
        fw[k:e] = [w]
        self.t[k:e] = [t]
        self.back[k:e] = [back]


def _schedule_front(net: NetInfo, budget: int, exact: bool, slack: float, trade: float):
    """Default objective: the Pareto front of (activation bytes, weight bytes) over all plans,
    then, among the plans whose total traffic and estimated time are within ``slack`` of the
    least-total-traffic plan's, the least ``activations + weights / trade``
    (``docs/scheduler.md``).

    Returns (groups, the front of the whole network as a list of (act, weights, seconds))."""
    n = len(net.nodes)
    board = net.board
    inv_bw = (1.0 / board.offchip_bytes_per_s) if board.has_offchip else 0.0
    inv_clk = 1.0 / board.clock_hz
    fronts: list = [None] * (n + 1)
    edges: list = [None] * (n + 1)
    fronts[0] = f0 = _Front()
    f0.insert(0, 0, 0.0, None)
    for j in range(1, n + 1):
        cur = fronts[j] = _Front()
        ej = edges[j] = []

        def hopeless(i, wsum, csum, out_j):
            fi = fronts[i]
            return all(cur.dominated(a + out_j, w + wsum) for a, w in zip(fi.a, fi.w))

        def offer(i, gc, spec):
            fi = fronts[i]
            ga, gw = gc.act_in + gc.act_out, gc.weights
            if cur.dominated(fi.a[0] + ga, fi.w[-1] + gw):
                return                                # every label's extension is dominated
            e = len(ej)
            ej.append((i, spec))
            gt = max(gc.cycles * inv_clk, gc.offchip * inv_bw)
            for label, (a, w, t) in enumerate(zip(fi.a, fi.w, fi.t)):
                cur.insert(a + ga, w + gw, t + gt, (e, label))

        for i, gc, spec in _choices_into(net, budget, exact, j, hopeless):
            offer(i, gc, spec)
        if not cur.a:                                 # nothing fits: overflow, flagged in the report
            offer(j - 1, _overflow_option(net, j - 1), ("overflow",))
    f = fronts[n]
    tot = [a + w for a, w in zip(f.a, f.w)]
    k0 = min(range(len(tot)), key=lambda k: (tot[k], f.t[k]))   # least total traffic (ties: time)
    ok = [k for k in range(len(tot))
          if tot[k] <= tot[k0] * (1 + slack) and f.t[k] <= f.t[k0] * (1 + slack)]
    inv = 0.0 if trade == float("inf") else 1.0 / trade
    k = min(ok, key=lambda k: (f.a[k] + f.w[k] * inv, tot[k], f.t[k]))
    choice: list = [None] * (n + 1)
    j = n
    while j > 0:
        e, k = fronts[j].back[k]
        i, spec = edges[j][e]
        choice[j] = (i, spec)
        j = i
    return _reconstruct(net, budget, exact, choice), list(zip(f.a, f.w, f.t))


def _reconstruct(net, budget, exact, choice) -> list:
    groups = []
    j = len(net.nodes)
    while j > 0:
        i, spec = choice[j]
        groups.append(_group_cost(net, budget, exact, i, j, spec))
        j = i
    groups.reverse()
    return groups


def plan_network(graph, board, schedule: str = "block", budget: int | None = None,
                 weight_cost: float | None = None, objective: str = "traffic",
                 slack: float = DEFAULT_SLACK, trade: float = DEFAULT_TRADE):
    """Plan ``graph`` for ``board`` (a name or :class:`host.compiler.boards.Board`) under ``schedule``.

    Returns ``(plan, report)``.  ``budget`` overrides the board's on-chip byte budget.

    Default objective (``fused``/``block``): the DP keeps the Pareto front of (activation bytes,
    weight bytes); among the plans whose total off-chip traffic and estimated time are within
    ``slack`` (a fraction, default :data:`DEFAULT_SLACK`) of the least-total-traffic plan's it
    picks the least ``activations + weights / trade`` (``trade``, default :data:`DEFAULT_TRADE`:
    weight bytes worth re-reading to keep one feature-map byte on chip; ``inf``: least
    activation traffic within the slack).  ``slack=0`` or ``trade=1`` is least total traffic.
    ``weight_cost`` instead minimises ``activations + weight_cost × weights``: 1 is total
    off-chip traffic; 0 activation traffic alone (weights re-read per block at any price).
    ``objective="time"`` minimises the estimated time per frame (each group takes
    max(compute, transfer)), off-chip traffic (scaled by ``weight_cost``, default 1) breaking ties.
    The ``layer`` schedule takes each layer's cheapest execution (traffic, or time).
    """
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective {objective!r} (use one of {', '.join(OBJECTIVES)})")
    if weight_cost is not None and weight_cost < 0:
        raise UserError(f"weight cost must be >= 0, got {weight_cost}")
    if slack < 0:
        raise UserError(f"traffic slack must be >= 0, got {slack}")
    if not trade >= 1:
        raise UserError(f"trade (weight bytes per feature-map byte) must be >= 1, got {trade}")
    if schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {schedule!r} (use one of {', '.join(SCHEDULES)})")
    board = get_board(board)
    budget = int(board.onchip_bytes if budget is None else budget)
    t0 = time.perf_counter()
    net = NetInfo(graph, board)
    full_budget = budget
    if not board.has_offchip and net.weights_total <= budget:
        # no off-chip memory: the weights live on chip for good (loaded once over the host
        # link, not per frame); activations get what is left
        net.preloaded = True
        budget -= net.weights_total
    front = None
    if schedule == "layer":
        costs = _schedule_layer(net, budget, objective)
        plan = Plan("layer", [Group([net.nodes[g.start].name]) for g in costs])
    else:
        exact = schedule == "block"
        if objective == "traffic" and weight_cost is None:
            costs, front = _schedule_front(net, budget, exact, slack, trade)
        else:
            costs = _schedule_dp(net, budget, exact, weight_cost=1.0 if weight_cost is None else weight_cost,
                                 objective=objective)
        plan = Plan(schedule, [Group([ni.name for ni in net.nodes[g.start:g.stop]], g.block)
                               for g in costs])
    plan.check(graph)
    elapsed = time.perf_counter() - t0
    report = make_report(net, board, full_budget, schedule, costs, elapsed, objective)
    report["slack"] = slack if front is not None else None
    report["trade"] = trade if front is not None else None
    report["weight_cost"] = weight_cost
    if front is not None:
        # the (activations, weights) Pareto front the plan was picked from
        report["pareto_front"] = [{"activations": int(a), "weights": int(w), "seconds": t}
                                  for a, w, t in front]
    return plan, report


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _traffic(weights, act_in, act_out) -> dict:
    return {"weights": int(weights), "activations": int(act_in + act_out),
            "activations_in": int(act_in), "activations_out": int(act_out),
            "total": int(weights + act_in + act_out)}


def make_report(net: NetInfo, board: Board, budget: int, schedule: str, costs: list,
                elapsed: float = 0.0, objective: str = "traffic") -> dict:
    g = net.graph
    clk, bw, pes = board.clock_hz, board.offchip_bytes_per_s, net.engine.rows * net.engine.cols
    layers, groups = [], []
    warnings = []
    tot_w = tot_in = tot_out = tot_macs = tot_cyc = 0
    seconds = compute_s = memory_s = 0.0
    peak = 0
    resident_all = net.weights_total if net.preloaded else 0
    for gi, gc in enumerate(costs):
        names = [ni.name for ni in net.nodes[gc.start:gc.stop]]
        s_c = gc.cycles / clk
        # no off-chip memory: maps between groups stay in on-chip SPRAM; only the network's
        # input and output cross the host link (counted once below)
        s_m = gc.offchip / bw if board.has_offchip else 0.0
        secs = max(s_c, s_m)
        seconds += secs
        compute_s += s_c
        memory_s += s_m
        tot_w += gc.weights
        tot_in += gc.act_in
        tot_out += gc.act_out
        tot_macs += gc.macs
        tot_cyc += gc.cycles
        peak = max(peak, gc.onchip + resident_all)
        if gc.onchip + resident_all > budget:
            warnings.append(f"{names[0]} needs {gc.onchip} bytes on chip, more than the "
                            f"{budget}-byte budget of {board.name}")
        groups.append({
            "index": gi, "nodes": names,
            # the plan's block (what the golden model runs); under `layer` a layer may still be
            # tiled internally (`tile`) without changing the plan
            "block": list(gc.block) if (gc.block and schedule != "layer") else None,
            "tile": list(gc.block) if gc.block else None,
            "mode": gc.mode, "grid": list(gc.grid), "blocks": gc.nblocks, "passes": gc.passes,
            "resident_weights": list(gc.resident), "macs": int(gc.macs), "cycles": int(gc.cycles),
            "offchip_bytes": _traffic(gc.weights, gc.act_in, gc.act_out),
            "onchip_peak_bytes": int(gc.onchip + resident_all), "seconds": secs,
            "bound": "memory" if s_m > s_c else "compute",
        })
        for name in names:
            d = gc.per_node[name]
            ni = net.nodes[net.index[name]]
            cyc = int(d["cycles"])
            layers.append({
                "name": name, "op": ni.op, "group": gi, "macs": int(d["macs"]),
                "total_macs": int(d["macs"]),           # the top level's key, per layer
                "layer_macs": int(ni.macs), "cycles": cyc,
                "utilisation": (d["macs"] / (cyc * pes)) if cyc else 0.0,
                "offchip_bytes": _traffic(d["weights"], d["act_in"], d["act_out"]),
                "onchip_peak_bytes": int(d["onchip"] + resident_all),
                "out_shape": list(net.tshape[ni.output]),
            })
    weights_size = sum(ni.weight_bytes for ni in net.nodes)
    io_bytes = net.size(g.input) + net.size(g.output)
    offchip = _traffic(tot_w, tot_in, tot_out)
    if not board.has_offchip:
        # everything stays on chip: the maps passed between groups are held (in SPRAM) beside the
        # running group's buffers and the preloaded weights
        stored_peak = 0
        for gc in costs:
            held = sum(net.size(t) for t in net.tshape
                       if net.producer_idx.get(t, HUGE) < gc.start and net.consumed_from(t, gc.start))
            held += sum(net.size(ni.output) for ni in net.nodes[gc.start:gc.stop]
                        if net.consumed_from(ni.output, gc.stop))
            stored_peak = max(stored_peak, gc.onchip + held + resident_all)
        peak = max(peak, stored_peak)
        link_s = io_bytes / board.link_bytes_per_s
        seconds += link_s
        memory_s += link_s
        if not net.preloaded:
            warnings.append(f"{board.name} has no off-chip memory and the weights ({weights_size} "
                            f"bytes) exceed its {budget}-byte on-chip memory: the network does not fit")
        elif stored_peak > budget:
            warnings.append(f"{board.name} has no off-chip memory: the feature maps held between "
                            f"groups need {stored_peak} bytes on chip, more than its {budget} bytes: "
                            f"the network does not fit")
    if board.has_offchip and weights_size > board.offchip_bytes:
        warnings.append(f"the weights ({weights_size} bytes) exceed the {board.offchip_bytes}-byte "
                        f"off-chip memory of {board.name}")
    return {
        "model": g.name, "board": board.name, "schedule": schedule,
        "input_shape": list(net.tshape[g.input]),
        "total_macs": int(tot_macs), "network_macs": int(sum(ni.macs for ni in net.nodes)),
        "weights_bytes": int(weights_size),
        "offchip_bytes": offchip,
        "onchip_peak_bytes": int(peak), "onchip_budget_bytes": int(budget),
        "cycles": int(tot_cyc),
        "utilisation": tot_macs / (tot_cyc * pes) if tot_cyc else 0.0,
        "compute_seconds": compute_s, "memory_seconds": memory_s, "seconds": seconds,
        "fps": 1.0 / seconds if seconds else float("inf"),
        "objective": objective,
        "fits": not warnings,
        "weights_preloaded": net.preloaded,
        "warnings": warnings,
        "planning_seconds": elapsed,
        "board_model": board.to_json(),
        "layers": layers, "groups": groups,
    }
