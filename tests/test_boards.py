"""Board models: the README's board names, budgets derived from the published resources (`docs/published.md`)."""
import pytest

from host.compiler.boards import BOARDS, DP16KD_BYTES, get_board, names, with_budget
from host.errors import UserError


def test_design_board_names():
    assert {"ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "icebreaker"} <= set(names())


def test_unknown_board_lists_valid_names():
    with pytest.raises(UserError) as e:
        get_board("ulx3s-99f")
    msg = str(e.value)
    assert "\n" not in msg and "ulx3s-99f" in msg
    for n in names():
        assert n in msg


def test_case_insensitive_and_passthrough():
    b = get_board("ULX3S-85F")
    assert b is get_board(b)


@pytest.mark.parametrize("name,blocks,mults", [("ulx3s-85f", 208, 156), ("ulx3s-45f", 108, 72),
                                               ("ulx3s-25f", 56, 28), ("ulx3s-12f", 56, 28)])
def test_ecp5_resources(name, blocks, mults):
    b = get_board(name)
    assert b.bram_blocks == blocks and b.multipliers == mults        # docs/published.md
    assert 0 < b.reserved_blocks < blocks
    assert b.onchip_bytes == (blocks - b.reserved_blocks) * DP16KD_BYTES
    assert b.pes <= mults
    assert b.clock_hz == 100e6
    assert b.has_offchip and b.offchip_bytes == 32 * 1024 * 1024
    # 16-bit SDR SDRAM at the system clock, derated
    assert b.offchip_bytes_per_s == pytest.approx(2 * 100e6 * b.offchip_efficiency)
    assert 0.5 <= b.offchip_efficiency < 1


def test_array_sizes():
    assert (get_board("ulx3s-85f").pe_rows, get_board("ulx3s-85f").pe_cols) == (9, 16)
    assert get_board("ulx3s-45f").pes == 64
    assert get_board("ulx3s-25f").pes == 24
    assert get_board("icebreaker").pes == 8


def test_icebreaker():
    b = get_board("icebreaker")
    assert not b.has_offchip
    assert b.onchip_bytes == (30 - b.reserved_blocks) * 512 + 128 * 1024
    assert b.clock_hz == 42e6
    assert b.offchip_bytes_per_s == b.link_bytes_per_s > 0


def test_budgets_ordered():
    order = ["ulx3s-25f", "icebreaker", "ulx3s-45f", "ulx3s-85f"]
    assert [get_board(n).onchip_bytes for n in order] == sorted(get_board(n).onchip_bytes for n in order)


@pytest.mark.parametrize("budget", [1, 1000, 4096, 50000, 200000])
def test_with_budget_exact(budget):
    for n in names():
        b = with_budget(get_board(n), budget)
        assert b.onchip_bytes == budget
        assert b.pes == get_board(n).pes


def test_to_json():
    for b in BOARDS.values():
        d = b.to_json()
        assert d["onchip_bytes"] == b.onchip_bytes and d["name"] == b.name


def test_engine_configurations_follow_the_rtl():
    """Boards with an RTL engine configuration (hw.engine.synth.CONFIGS) take it as it is (so
    the cost model follows latency and requant lanes); the others get a logic-requant engine of
    their own array shape."""
    from hw.engine.synth import CONFIGS

    for n in names():
        b = get_board(n)
        eng = b.engine
        assert (eng.rows, eng.cols) == (b.pe_rows, b.pe_cols)
        assert eng.rows * eng.cols <= b.multipliers
        if n in CONFIGS:
            assert eng is CONFIGS[n]
        else:
            assert eng.lut_requant and 1 <= eng.post_lanes <= eng.cols
        assert b.to_json()["engine"]["latency"] == eng.latency
        # a copy with another budget keeps its engine
        assert with_budget(b, 50000).engine.as_dict() == eng.as_dict()


@pytest.mark.parametrize("name", names())
def test_clock_and_link_follow_the_soc(name):
    """The scheduler's clock and link rate are those the board SoC is built for."""
    from hw.soc.top import BOARDS as SOCS, pick_baud
    from hw.link.uart import divisor_for
    b, soc = get_board(name), SOCS[name]
    assert b.clock_hz == soc.clk_hz
    baud = pick_baud(soc.clk_hz, soc.baud)
    actual = soc.clk_hz / divisor_for(int(soc.clk_hz), baud)
    assert b.link_bytes_per_s == pytest.approx(actual / 10, rel=1e-9)


@pytest.mark.parametrize("name", ["ulx3s-85f", "icebreaker"])
def test_board_tops_carry_the_host_link(name):
    """The board top's link hook finds the link gateware (a wrong import there builds a
    bitstream without a host link, silently)."""
    from hw.memory.memport import MemPortSignature
    from hw.soc.top import BOARDS as SOCS, BoardLink, default_link_factory
    spec = SOCS[name]
    link = default_link_factory(board=spec, clk_freq=spec.clk_hz,
                                mem_signature=MemPortSignature(20, 32), mem_bytes=1 << 20)
    assert isinstance(link, BoardLink)
