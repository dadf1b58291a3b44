"""host.bench.emu on reduced networks: the engine's emulated runs are bit-exact with the golden
model; the cost model, which counts one pipeline fill per layer pass and not the extra fills of
a layer cut into tiles, stays a close lower bound of the engine's cycles."""
import pytest

from host.bench.emu import one


@pytest.mark.parametrize("name,schedule", [("vgg16", "block"), ("mobilenet_v1", "fused")])
def test_reduced_network(name, schedule):
    r = one(name, schedule, resolution=32)
    assert r["bit_exact"] and not r["on_host"]
    assert 0 < r["utilisation"] <= 1 and r["bytes_read"] > 0
    assert r["predicted_cycles"] <= r["engine_cycles"] <= 1.05 * r["predicted_cycles"]
