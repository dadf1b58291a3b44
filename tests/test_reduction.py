"""host.compiler.reduction with fewer input-memory read ports than array rows: every step's
elements come from at most ``ports`` input words, each element exactly once, and the step
table words carry them through the read ports (host.compiler.pack.StepCodec)."""
import random

import pytest

from host.compiler.pack import StepCodec
from host.compiler.reduction import plan_reduction
from hw.engine.engine import EngineConfig


def _steps(red):
    """The elements of one iteration grouped by step, from the plan's slots."""
    steps = {}
    for el, slot in zip(red.template(), red.slots()):
        steps.setdefault(slot // red.rows, []).append((slot % red.rows, el))
    return steps


@pytest.mark.parametrize("seed", range(40))
def test_every_step_reads_at_most_ports_words(seed):
    rng = random.Random(seed)
    rows, lanes, ports = rng.choice([(9, 16, 2), (5, 5, 2), (8, 8, 3), (9, 16, 1)])
    k = rng.choice([1, 3, 5, 7])
    ig = rng.choice([1, 3, 4, 8, 16, 24, 64, 200])
    red = plan_reduction(k, k, ig, rows, lanes, 64, ports=ports)
    if red is None:
        return
    slots = red.slots()
    assert len(set(slots)) == len(slots) == len(red.template())        # each element once
    steps = _steps(red)
    assert max(steps) + 1 == red.steps
    for elements in steps.values():
        assert len({(ky, kx, cb) for _, (ky, kx, cb, _) in elements}) <= ports
        assert len({r for r, _ in elements}) == len(elements) <= rows
    # never more steps than needed: at least as many as ceil(elements / rows)
    assert red.steps >= -(-len(slots) // rows)


def test_wide_layers_pack_as_densely_as_with_a_port_per_row():
    """16 channels per word and 9 rows: any 9 consecutive elements span at most 2 words."""
    for ig in (16, 64, 512):
        two = plan_reduction(3, 3, ig, 9, 16, 32, ports=2)
        nine = plan_reduction(3, 3, ig, 9, 16, 32)
        assert two.total_steps == nine.total_steps
    # three channels per word: a step holds two taps (6 of 9 rows)
    assert plan_reduction(3, 3, 3, 9, 16, 32, ports=2).steps == 5


def test_step_words_round_trip_through_the_ports():
    cfg = EngineConfig(rows=5, cols=3, in_depth=256, w_depth=256, step_depth=32, read_ports=2)
    codec = StepCodec(cfg)
    row = [(1, 2, 1, 3, 40), (1, 2, 1, 4, 40), (0, 0, 0, 0, 0), (2, 0, 1, 1, 77), (1, 2, 1, 0, 40)]
    assert codec.decode(codec.encode(row))[:2] == row[:2]
    got = codec.decode(codec.encode(row))
    assert [g for g, r in zip(got, row) if r[2]] == [r for r in row if r[2]]
    assert got[2][2] == 0                                   # disabled rows stay disabled
    with pytest.raises(ValueError, match="more than 2 input words"):
        codec.encode(row[:3] + [(2, 0, 1, 1, 77), (0, 1, 1, 0, 9)])
    legacy = StepCodec(EngineConfig(rows=3, cols=3, in_depth=256, w_depth=256, step_depth=32))
    three = [(0, 1, 1, 2, 5), (1, 1, 1, 0, 9), (2, 2, 0, 0, 0)]
    assert legacy.decode(legacy.encode(three)) == three
