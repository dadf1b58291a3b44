"""Synthesis smoke test: the iCEBreaker SoC without the host link (memory system, self-test,
LEDs: a small top) at 48 MHz through yosys + nextpnr-ice40 + icepack with the same flow as
``blockfuse build`` (into a temporary directory), and the report has every field."""
import json

from host.synthesis import build, source_hash


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
    assert "hw/memory/spram.py" in rep["source_files"] and "host/synthesis.py" in rep["source_files"]
    assert rep["source_hash"] == source_hash(rep["source_files"])
    assert rep["build_seconds"]["total"] > 0


def test_unknown_board_is_one_line_error():
    import pytest

    from host.errors import UserError
    with pytest.raises(UserError, match="unknown board"):
        build("nexys", quiet=True)


def test_cli_errors_are_one_line(capsys, tmp_path):
    from host.cli.main import main
    assert main(["build"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--board" in err[0]
    assert main(["build", "--check", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0]
    bad = tmp_path / "report.json"
    bad.write_text('{"source_files": ["hw/memory/memport.py"], "source_hash": "0"}')
    assert main(["build", "--check", str(bad)]) == 1
    assert "other sources" in capsys.readouterr().err


def test_committed_reports_are_complete():
    """The committed bitstream reports carry every field the README promises."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "bitstreams"
    for board, bit in (("icebreaker", "top.bin"), ("ulx3s-85f", "top.bit")):
        rep = json.loads((root / board / "report.json").read_text())
        assert (root / board / bit).exists()
        for key in ("resources", "fmax", "tools", "source_hash", "source_files",
                    "bitstream_sha256", "system_clock_mhz", "timing_met"):
            assert key in rep, (board, key)
        assert rep["timing_met"] and rep["host_link"]
        import hashlib
        assert hashlib.sha256((root / board / bit).read_bytes()).hexdigest() == \
            rep["bitstream_sha256"]
