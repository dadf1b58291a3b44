"""Synthesis smoke test: the iCEBreaker SoC without the host link (memory system, self-test,
LEDs: a small top) at 48 MHz through yosys + nextpnr-ice40 + icepack with the same flow as
``blockfuse build`` (into a temporary directory), and the report has every field."""
import json

from host.build import build, source_hash


def test_icebreaker_build_smoke(tmp_path):
    rep = build("icebreaker", out_root=tmp_path / "bitstreams", build_root=tmp_path / "build",
                quiet=True, link=False, clk_mhz=48)
    out = tmp_path / "bitstreams" / "icebreaker"
    assert (out / "top.bin").stat().st_size > 100_000
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == rep
    for key in ("luts", "ffs", "dsps", "block_rams", "spram"):
        assert rep["resources"][key]["available"] > 0, key
    assert rep["resources"]["luts"]["used"] > 100
    assert rep["resources"]["ffs"]["used"] > 100
    assert rep["resources"]["spram"]["used"] == 4          # the 128 KB SPRAM is instantiated
    (clk,) = rep["fmax"].values()
    assert 47.9 < clk["constraint_mhz"] < 48.1 and clk["achieved_mhz"] > 0
    assert rep["system_clock_mhz"] == 48 and rep["host_link"] is False
    assert clk["met"] == (clk["achieved_mhz"] >= clk["constraint_mhz"])
    assert rep["tools"]["yosys"].startswith("Yosys") and "nextpnr" in rep["tools"]["nextpnr"]
    assert "hw/spram.py" in rep["source_files"] and "host/build.py" in rep["source_files"]
    assert rep["source_hash"] == source_hash(rep["source_files"])
    assert rep["build_seconds"]["total"] > 0


def test_unknown_board_is_one_line_error():
    import pytest

    from host.errors import UserError
    with pytest.raises(UserError, match="unknown board"):
        build("nexys", quiet=True)
