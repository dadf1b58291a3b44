"""Distribute a value that is static during a layer (descriptor fields, the layer kind) to many
consumers across the die without one net fanning out to all of them.

Per-consumer copies in plain registers would not help: they all have the same input, so yosys
merges them back into one register whose net reaches every consumer (nextpnr showed such nets as
the worst congestion, ``dw_0`` in the array, and as the routed critical path, the requant lanes'
``zp/lo/hi``).  Stage ``k`` of one delay chain is a distinct register, so each group of consumers
gets its own driver; the price is ``k + 1`` cycles of delay, harmless for a value that is set
before ``start`` and read later than the chain is long.  Where the delay matters (a value that
travels with a pipeline), :func:`own_copy` makes a copy that synthesis keeps apart.
"""
from amaranth.hdl import Shape, Signal

from hw import fpga_family


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


def own_copy(m, value, name: str, platform=None) -> Signal:
    """``value`` one cycle late in a register that synthesis keeps apart from every register
    with the same input: on ECP5 one ``FD1S3AX`` cell per bit (yosys merges equal flip-flops
    even under a ``keep`` attribute, but not hand-instantiated cells; checked with a
    two-register build: 18 stay 18), elsewhere a plain register (simulation does not care).
    For a consumer of a static value that must have its driver beside it, such as each
    requantisation lane's clamp bounds."""
    from amaranth.hdl import ClockSignal, Instance
    reg = Signal(Shape.cast(value.shape()), name=name)
    if fpga_family(platform) != "ecp5":
        m.d.sync += reg.eq(value)
        return reg
    bits = Signal(len(reg), name=f"{name}_d")
    m.d.comb += bits.eq(value)
    for i in range(len(reg)):
        m.submodules[f"{name}_ff{i}"] = Instance("FD1S3AX", p_GSR="DISABLED", i_CK=ClockSignal(),
                                                 i_D=bits[i], o_Q=reg[i])
    return reg
