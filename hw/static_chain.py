"""Distribute a value that is static during a layer (descriptor fields, the layer kind) to many
consumers across the die without one net fanning out to all of them.

Per-consumer copy registers would not help: they all have the same input, so yosys merges them
back into one register whose net reaches every consumer (nextpnr showed such nets as the worst
congestion, ``dw_0`` in the array, and as the routed critical path, the requant lanes'
``zp/lo/hi``).  Stage ``k`` of one delay chain is a distinct register, so each group of consumers
gets its own driver; the price is ``k + 1`` cycles of delay, harmless for a value that is set
before ``start`` and read later than the chain is long.
"""
from amaranth.hdl import Shape, Signal


def static_chain(m, value, stages: int, name: str) -> list:
    """``stages`` registers in series after ``value`` (synchronous domain); element ``k`` is
    ``value`` delayed ``k + 1`` cycles, named ``{name}_{k}``."""
    chain, prev = [], value
    for k in range(stages):
        stage = Signal(Shape.cast(value.shape()), name=f"{name}_{k}")
        m.d.sync += stage.eq(prev)
        chain.append(stage)
        prev = stage
    return chain
