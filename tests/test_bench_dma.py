"""host.bench.dma: the controller's cycle model (``host/compiler/dma.py``) against the whole
simulated SoC, instruction shape by instruction shape. The SPRAM, the activation buffer and
the SDRAM's streaming transfers are deterministic enough for a few percent; the vector unit's
pools (10 %) depend on how their taps' requests meet the memory's rows, banks and credits."""
import pytest

from host.bench.dma import measure


# the 85F's whole SoC (SDRAM and activation buffer) takes ~90 s: slow tier, and bench dma
@pytest.mark.parametrize("board", ["icebreaker", pytest.param("ulx3s-85f", marks=pytest.mark.slow)])
def test_the_cycle_model_follows_the_rtl(board):
    rows = measure(board)
    assert len({r["memory"] for r in rows}) == (1 if board == "icebreaker" else 2)
    # POOL and GAP only where there is a vector unit to run them
    vector = {r["shape"].split()[0] for r in rows} & {"POOL", "GAP"}
    assert vector == (set() if board == "icebreaker" else {"POOL", "GAP"})
    for r in rows:
        tol = 0.10 if r["shape"].startswith("POOL") or (r["shape"].startswith("GAP")
                                                         and r["memory"] == "sdram") else 0.03
        model, rtl = r["model"], r["rtl"]
        if r["memory"] == "sdram" and r["shape"].split()[0] in ("STORE", "POOL", "GAP"):
            # an instruction ends when its last writes are queued (the register slices on the
            # way to the SDRAM take them), and they drain while the next one is fetched: the
            # model counts them in the instruction, so the two are compared together
            model, rtl = model + r["fetch_model"], rtl + r["fetch_rtl"]
        else:
            assert abs(r["fetch_model"] / r["fetch_rtl"] - 1) <= 0.15, r
        assert abs(model / rtl - 1) <= tol or abs(model - rtl) <= 2, r
