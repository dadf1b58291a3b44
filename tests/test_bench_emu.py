"""host.bench.emu on reduced networks: the program runs bit-exact with the golden model under
the plan `blockfuse run` executes; its counters add up (the engine's and the DMA's cycles within START to
DONE, traffic by kind equal to the bytes moved)."""
import pytest

from host.bench.emu import one


@pytest.mark.parametrize("name,schedule,until", [("vgg16", "block", "pool5"),
                                                 ("mobilenet_v1", "fused", None)])
def test_reduced_network(name, schedule, until):
    r = one(name, schedule, until, resolution=32)
    assert r["bit_exact"]
    assert 0 < r["utilisation"] <= r["engine_utilisation"] <= 1
    assert max(r["engine_cycles"], r["dma_cycles"]) <= r["cycles"] <= r["engine_cycles"] + r["dma_cycles"]
    assert sum(r["traffic"].values()) == r["read"] + r["written"] > 0
