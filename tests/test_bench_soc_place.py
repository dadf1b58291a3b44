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


def test_the_report_says_when_the_estimate_is_short_of_the_clock(tmp_path):
    from host.bench.soc_place import write
    r = dict(estimate_mhz=46.1, net="$glbnet$arb.clk", clocks={}, board="ulx3s-85f", seed=1,
             clock_mhz=100.0, yosys={}, seconds=1636,
             placed=dict(TRELLIS_COMB=57882, TRELLIS_FF=47780, DP16KD=206, MULT18X18D=144))
    text = write(r, tmp_path)[0].read_text()
    assert "| ulx3s-85f | 1 | 57,882 / 47,780 / 206 / 144 | 100 MHz | **46.1 MHz** | 27 min |" in text
    assert "short of the configuration's clock" in text
    assert text.startswith("# The ulx3s-85f SoC placed (not routed)\n\nThe ulx3s-85f SoC with")
    text = write(dict(r, estimate_mhz=104.0), tmp_path)[0].read_text()
    assert "reaches the configuration's clock" in text


def test_the_report_names_the_slow_paths(tmp_path):
    from host.bench.soc_place import write
    r = dict(estimate_mhz=43.1, net="n", clocks={}, board="ulx3s-85f", seed=1, clock_mhz=100.0,
             yosys={}, seconds=1600, placed={},
             slow_paths=[dict(ns=15.5, logic_cells=7, from_unit="link.engine.controller",
                              to_unit="link.engine.engine", from_cell="x.fsm",
                              to_cell="link.engine.engine.ld_data_FF_99.CE")])
    text = write(r, tmp_path)[0].read_text()
    assert "## Where the time goes" in text
    assert ("| 15.5 ns | 7 | `link.engine.controller` | `link.engine.engine` | `CE` of "
            "`link.engine.engine.ld_data_FF_99` |") in text
    assert "Where the time goes" not in write(dict(r, slow_paths=[]), tmp_path)[0].read_text()
