"""host.bench.soc on the digits CNN: the whole simulated 85F SoC runs the program bit-exact with
the golden model, its engine cycles and data bytes equal the program emulator's, and the figures
it reports add up."""
from host.bench.soc import one


def test_digits_on_the_whole_soc():
    r = one("digits", None, "fused", None)
    assert r["bit_exact"]
    assert r["engine_cycles"] == r["emu"]["engine_cycles"] > 0
    assert (r["read"], r["written"]) == (r["emu"]["read"], r["emu"]["written"])
    assert r["cycles"] >= max(r["engine_cycles"], r["dma_cycles"])    # the units overlap
    assert 0 < r["utilisation"] < 1 and r["cycles_per_second"] > 0
