"""Plans for an accelerator configuration, searched on the compiled program's own cost.

The scheduler (``host/compiler/scheduler.py``) plans for a board model: one on-chip budget that
holds blocks and weights alike.  The accelerator is not built that way: the engine's input,
weight and output memories take one run at a time, the activation buffer holds a fused group's
intermediate blocks, and every block reloads the group's weights.  ``plan_program`` plans for
that machine: it compiles candidate groups into network programs and takes their cost from the
program itself (``host.runtime.emulator.predict``: the cycles and bytes ``--target emu`` and the
RTL count), so the plan is judged on what will run.

Search: a dynamic programme over the cut points of every run of spatial layers.  A group of one
layer runs on the whole map; a group of several runs block by block with its intermediate maps
in the activation buffer (groups whose blocks do not fit it are not offered: off chip they
would only add block borders).  Each group of up to :data:`MAX_NODES` layers is offered with the
:data:`BLOCKS_PER_GROUP` largest blocks that fit and tile it.  A group's cycles and bytes are
what it adds to a program after the layer before it (the two compiled together, less that
layer alone): compiled alone, a group would pay at its start for loads that run beside the
layer ahead of it (MobileNetV1 pairs each depthwise layer with the pointwise one after it
only when so costed).  A group costs its cycles plus
:data:`MAP_BYTE_CYCLES` of its schedule per feature-map byte it moves off chip: under ``block``
fewer map bytes are the point (DATE 2018) and a cycle is the price of one; ``fused`` plans
minimise cycles, fusing where that pays in time.  A lower bound (the MACs on every
PE, each block's weights at the memory's rate) skips groups that cannot beat the best found.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from host.compiler.plan import Group, Plan, PlanError

__all__ = ["plan_program", "MAX_NODES", "BLOCKS_PER_GROUP", "MAP_BYTE_CYCLES"]

#: longest group offered (layers)
MAX_NODES = 8
#: blocks offered per group: the largest (by area) that fit the activation buffer and tile it
BLOCKS_PER_GROUP = 3
#: cycles one feature-map byte moved off chip is worth in the objective, per schedule
MAP_BYTE_CYCLES = {"block": 1.0, "fused": 0.0}


@dataclass(frozen=True)
class GroupCost:
    nodes: tuple
    block: tuple | None
    cycles: int
    map_bytes: int
    offchip_bytes: int

    def objective(self, schedule: str) -> float:
        """What the search minimises under ``schedule`` (:data:`MAP_BYTE_CYCLES`)."""
        return self.cycles + MAP_BYTE_CYCLES.get(schedule, 0.0) * self.map_bytes


def _sizes(n: int) -> list:
    """Block sizes along an axis of ``n`` pixels: n / k rounded up, k = 1 … n."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


def _spatial_runs(graph) -> list:
    """Maximal runs of consecutive spatial layers on maps (as ``default_plan`` fuses them),
    as (first, last + 1) indices into ``graph.nodes``; other layers are runs of their own."""
    runs, start = [], None
    for k, n in enumerate(graph.nodes):
        spatial = n.spatial and graph.tensors[n.inputs[0]].is_map
        if spatial and start is None:
            start = k
        if not spatial:
            if start is not None:
                runs.append((start, k, True))
                start = None
            runs.append((k, k + 1, False))
    if start is not None:
        runs.append((start, len(graph.nodes), True))
    return runs


class _Planner:
    def __init__(self, graph, acfg, schedule: str, progress=None):
        from host.compiler.program import _Compiler, check_operators
        check_operators(graph, acfg)
        self.g, self.acfg, self.schedule = graph, acfg, schedule
        self.cache: dict = {}
        self.probe = _Compiler(graph, Plan(schedule, []), acfg, self.cache)
        self.progress = progress
        self.costed = 0
        self.why: dict = {}                  # layer → why it does not compile alone
        self.alone: dict = {}                # layer → its cost as a program of its own
        pes = acfg.engine.rows * acfg.engine.cols
        from host.compiler.dma import TIMINGS
        rate = TIMINGS[acfg.memory].load.bytes_per_cycle
        self._node_bound = {}
        for n in graph.nodes:
            macs = 0
            if getattr(n, "weight", None) is not None and hasattr(n, "macs"):
                macs = n.macs([graph.tensors[i] for i in n.inputs], graph.tensors[n.output])
            wbytes = int(n.weight.size) if getattr(n, "weight", None) is not None else 0
            self._node_bound[n.name] = (macs / pes, wbytes / rate)

    def blocks(self, nodes) -> list:
        """The largest blocks (by area) under which ``nodes`` keep their intermediate maps in
        the activation buffer, at most BLOCKS_PER_GROUP."""
        _, H, W = self.g.tensors[nodes[0].inputs[0]].shape
        pairs = sorted(((bh, bw) for bh in _sizes(H) for bw in _sizes(W)),
                       key=lambda b: (-b[0] * b[1], -min(b)))
        found = []
        for b in pairs:
            block = None if b == (H, W) else b
            try:
                if self.probe.on_chip(nodes, block, self.schedule):
                    found.append(block)
            except PlanError:
                continue
            if len(found) == BLOCKS_PER_GROUP:
                break
        return found

    def bound(self, nodes, block) -> float:
        """Cycles the group cannot beat: every layer's MACs on all PEs, and its weights once per
        block at the memory's rate."""
        if block is None:
            nb = 1
        else:
            _, H, W = self.g.tensors[nodes[0].inputs[0]].shape
            nb = -(-H // block[0]) * -(-W // block[1])
        return sum(max(c, nb * w) for c, w in (self._node_bound[n.name] for n in nodes))

    def _predict(self, *groups) -> tuple | None:
        """(cycles, map bytes, off-chip bytes) of ``groups`` ((names, block)) compiled as one
        program, or None if it does not compile on this configuration."""
        from host.compiler.program import ProgramError, _Compiler
        from host.runtime.emulator import predict
        plan = Plan(self.schedule, [Group(list(names), block) for names, block in groups])
        try:
            prog = _Compiler(self.g, plan, self.acfg, self.cache).compile()
        except (ProgramError, PlanError) as e:
            if len(groups) == 1 and len(groups[0][0]) == 1:
                self.why[groups[0][0][0]] = str(e)
            return None
        st = predict(prog, self.acfg)
        return st.cycles, st.traffic["map"], st.read + st.written

    def cost(self, nodes, block, before=None) -> GroupCost | None:
        """What the group adds to the program after the layer ``before`` (the last of the
        group ahead; None at the start of a run): the two compiled together less that layer
        alone. Compiled alone, a group would pay at its start for loads that, in the program,
        run beside the layer ahead of it. None if the group does not compile on this
        configuration."""
        names = tuple(n.name for n in nodes)
        both = self._predict(([before.name], None), (names, block)) if before else None
        if both is None:
            c = self._predict((names, block))
            if c is None:
                return None
        else:
            if before.name not in self.alone:
                self.alone[before.name] = self._predict(([before.name], None))
            alone = self.alone[before.name]
            c = tuple(x - y for x, y in zip(both, alone)) if alone else both
        self.costed += 1
        if self.progress:
            self.progress(self.costed)
        return GroupCost(names, block, *c)

    def run(self, a: int, b: int) -> list:
        """The best groups for graph.nodes[a:b] (a run of spatial layers)."""
        nodes = self.g.nodes
        best = {a: (0.0, None)}
        for j in range(a + 1, b + 1):
            offers = []
            for i in range(max(a, j - MAX_NODES), j):
                group = nodes[i:j]
                for block in ([None] if j - i == 1 else self.blocks(group)):
                    offers.append((self.bound(group, block), i, group, block))
            offers.sort(key=lambda o: o[0])
            top = (float("inf"), None)
            for lb, i, group, block in offers:
                if best[i][0] + lb >= top[0]:
                    continue
                c = self.cost(group, block, nodes[i - 1] if i > a else None)
                if c is not None and best[i][0] + c.objective(self.schedule) < top[0]:
                    top = (best[i][0] + c.objective(self.schedule), (i, c))
            if top[1] is None:       # not even the layer alone compiles: nothing will
                raise PlanError(f"{nodes[j - 1].name}: no group with it compiles on "
                                f"{self.acfg.name}: {self.why.get(nodes[j - 1].name, '?')}")
            best[j] = top
        out, j = [], b
        while j > a:
            i, c = best[j][1]
            out.append(c)
            j = i
        return out[::-1]


def plan_program(graph, acfg, schedule: str = "block", progress=None) -> tuple[Plan, list]:
    """The plan of ``graph`` for the accelerator configuration ``acfg`` under ``schedule``
    (``layer``: one group per layer), and the :class:`GroupCost` of each of its spatial
    groups.  ``progress(n)`` is called after each candidate group is costed.  Plans are kept
    on disk (:func:`cache_dir`) by the graph's structure, the configuration and the sources
    that cost them: a network is searched once."""
    if schedule == "layer":
        return Plan("layer", [Group([n.name]) for n in graph.nodes]).check(graph), []
    path = None
    d = cache_dir()
    if d is not None:
        path = d / f"{graph.name}-{acfg.name}-{schedule}-{_key(graph, acfg, schedule)}.json"
        try:
            doc = json.loads(path.read_text())
            plan = Plan(schedule, [Group(g["nodes"], tuple(g["block"]) if g["block"] else None)
                                   for g in doc["groups"]])
            return plan.check(graph), [GroupCost(tuple(c["nodes"]), tuple(c["block"])
                                                 if c["block"] else None, c["cycles"],
                                                 c["map_bytes"], c["offchip_bytes"])
                                       for c in doc["costs"]]
        except (OSError, ValueError, KeyError, TypeError, PlanError):
            pass
    planner = _Planner(graph, acfg, schedule, progress)
    groups, costs = [], []
    for a, b, spatial in _spatial_runs(graph):
        if not spatial:
            groups.append(Group([graph.nodes[a].name]))
            continue
        for c in planner.run(a, b):
            groups.append(Group(list(c.nodes), c.block))
            costs.append(c)
    plan = Plan(schedule, groups).check(graph)
    if path is not None:
        doc = dict(groups=[g.to_json() for g in groups],
                   costs=[dict(nodes=list(c.nodes), block=list(c.block) if c.block else None,
                               cycles=c.cycles, map_bytes=c.map_bytes,
                               offchip_bytes=c.offchip_bytes) for c in costs])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, path)
        except OSError:
            pass                                   # a cache that cannot be written is no cache
    return plan, costs


def cache_dir() -> Path | None:
    """``$BLOCKFUSE_PLAN_CACHE`` (default ``~/.cache/blockfuse/plans``; ``off``: no cache)."""
    d = os.environ.get("BLOCKFUSE_PLAN_CACHE", "")
    if d.lower() in ("off", "0", "none"):
        return None
    return Path(d) if d else Path.home() / ".cache" / "blockfuse" / "plans"


#: the sources a plan's costs come from (a change to any of them searches again)
_SOURCES = ("host/compiler", "host/runtime/emulator.py", "host/runtime/engine_model.py",
            "hw/soc/isa.py", "hw/configs.py")


def _key(graph, acfg, schedule: str) -> str:
    """A digest of what the search depends on: the graph's structure and shapes (not its
    weights' values), the configuration, the schedule and the sources that cost it."""
    import dataclasses

    import numpy as np
    h = hashlib.blake2b(digest_size=8)
    for n in graph.nodes:
        for f in dataclasses.fields(n):
            v = getattr(n, f.name)
            h.update(repr((f.name, (v.shape, str(v.dtype)) if isinstance(v, np.ndarray)
                           else v)).encode())
    for t in graph.tensors.values():
        h.update(repr((t.name, tuple(t.shape), t.zero_point)).encode())
    h.update(json.dumps(acfg.as_dict(), sort_keys=True, default=str).encode())
    h.update(schedule.encode())
    root = Path(__file__).resolve().parents[2]
    for src in _SOURCES:
        p = root / src
        for f in sorted(p.glob("*.py")) if p.is_dir() else [p]:
            h.update(f.read_bytes())
    return h.hexdigest()
