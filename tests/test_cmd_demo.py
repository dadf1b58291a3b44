"""``blockfuse demo``: a zoo network on the accelerator RTL, compared with the golden model."""

import pytest

from host.cli.main import main


def test_demo_digits_is_bit_exact_and_reports_cycles(capsys):
    """The default: the ulx3s-85f board's own configuration as the whole simulated SoC, with
    the controller's counters and its frame rate; per layer the emulator's split adds up to the
    engine cycles the RTL counted."""
    code = main(["demo", "--model", "zoo:digits"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "bit-exact with the golden model: YES" in out
    assert "engine: ulx3s-85f — 9×16 PEs at 100 MHz" in out and "whole SoC" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in ("conv1", "conv2", "fc")}
    assert set(rows) == {"conv1", "conv2", "fc"}
    engine = sum(int(rows[k][2].replace(",", "")) for k in rows)
    total = next(line for line in out.splitlines() if line.startswith("total:"))
    assert f"({engine:,} engine," in total
    assert "frames/s" in out and "cycles/s" in out


def test_demo_unknown_model_is_one_line_error(capsys):
    code = main(["demo", "--model", "zoo:nope"])
    out, err = capsys.readouterr()
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "nope" in err


@pytest.mark.slow                  # a simulation-only engine of its own (~90 s); make test-slow
def test_demo_line_mode_reports_map_reads(capsys):
    """``--line-mode``: the same network with the row feeder; each layer's map words read are
    reported and the result is still bit-exact."""
    code = main(["demo", "--model", "zoo:digits", "--line-mode"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "bit-exact with the golden model: YES" in out
    assert "map words read" in out
    # a simulation-only engine is labelled as such and gets no frame rate
    assert "sim-8x8-line" in out and "fits no board" in out and "frames/s" not in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and line.split()[0] in ("conv1", "conv2", "total")}
    reads = {k: int(v[3].replace(",", "")) for k, v in rows.items()}
    assert reads["conv1"] > 0 and reads["conv2"] > 0 and reads["total"] >= reads["conv1"] + reads["conv2"]
