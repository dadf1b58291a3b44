"""host.bench.soc_place reads nextpnr's post-placement clock estimates from its log (the
placement itself, ~20 minutes, is the benchmark's, not CI's)."""
from host.bench.soc_place import estimate
from host.cli.bench import BENCHES

LOG = """\
Info: SA placement time 822.76s

Info: Max frequency for clock '$glbnet$clkgen.sdram_clk': 524.93 MHz (PASS at 100.00 MHz)
Info: Max frequency for clock          '$glbnet$arb.clk': 40.56 MHz (FAIL at 100.00 MHz)

Info: Max delay <async>                 -> posedge $glbnet$arb.clk: 1.12 ns
"""


def test_the_estimates_of_every_clock_are_read():
    assert estimate(LOG) == {"$glbnet$clkgen.sdram_clk": 524.93, "$glbnet$arb.clk": 40.56}
    assert estimate("Info: routing\n") == {}
    assert BENCHES["soc-place"] == ("host.bench.soc_place", "bench")
