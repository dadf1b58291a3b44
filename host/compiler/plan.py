"""Execution plans: which consecutive layers run fused, and in which blocks.

A :class:`Plan` is what the scheduler (``host/compiler/scheduler.py``) decides and what the golden model
(and later the engine) executes exactly.  Group ``nodes`` are names of consecutive nodes in the
graph's topological order.  ``block`` is the block size (H, W) on the group's *input* map (the
input of its first node), as in DATE 2018's "28×28 blocks"; ``None`` means one block covering
the whole map.  Under ``layer`` every group has a single node and no blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from host.errors import UserError

SCHEDULES = ("layer", "fused", "block")


class PlanError(UserError):
    """A plan that does not fit its graph (unknown node, order, block that cannot tile)."""


@dataclass
class Group:
    nodes: list
    block: tuple | None = None

    def to_json(self) -> dict:
        return {"nodes": list(self.nodes), "block": list(self.block) if self.block else None}


@dataclass
class Plan:
    schedule: str
    groups: list = field(default_factory=list)

    def check(self, graph) -> "Plan":
        if self.schedule not in SCHEDULES:
            raise PlanError(f"unknown schedule {self.schedule!r} (use one of {', '.join(SCHEDULES)})")
        order = [n.name for n in graph.nodes]
        flat = [name for g in self.groups for name in g.nodes]
        if flat != order:
            raise PlanError("plan groups do not cover the graph's nodes once each, in order")
        for g in self.groups:
            if g.block is not None and (len(g.block) != 2 or min(g.block) < 1):
                raise PlanError(f"bad block size {g.block} for group starting at {g.nodes[0]}")
        return self


def default_plan(graph, schedule: str = "fused", block: tuple | None = None) -> Plan:
    """The simplest valid plan: ``layer`` → one group per node; ``fused``/``block`` → maximal runs
    of spatial nodes on maps (conv, pooling, add, concat, permute, clamp) fused, with the given
    block size (None = whole map); other nodes (global pooling, flatten, FC, clamps of vectors)
    run alone."""
    if schedule not in SCHEDULES:
        raise PlanError(f"unknown schedule {schedule!r} (use one of {', '.join(SCHEDULES)})")
    groups: list[Group] = []
    if schedule == "layer":
        return Plan("layer", [Group([n.name]) for n in graph.nodes])
    run: list[str] = []
    for n in graph.nodes:
        if n.spatial and graph.tensors[n.inputs[0]].is_map:
            run.append(n.name)
            continue
        if run:
            groups.append(Group(run, tuple(block) if block else None))
            run = []
        groups.append(Group([n.name]))
    if run:
        groups.append(Group(run, tuple(block) if block else None))
    return Plan(schedule, groups).check(graph)
