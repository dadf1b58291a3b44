"""hw.soc.top.BoardTop's optional parts: the power-up self-test and the register slices around
the memory arbiter are there by default and gone when switched off (the iCEBreaker
accelerator's configuration switches both off: ``hw.configs``)."""
import pytest
from amaranth.hdl import Fragment

from hw.soc.top import BoardTop, make_platform


def _submodules(top, board):
    frag = Fragment.get(top, make_platform(board))
    return {sub[1] for sub in frag.subfragments}


@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_default_top_has_self_test_and_slices(board):
    names = _submodules(BoardTop(board), board)
    assert {"memtest", "mem_slice", "bus_slice0", "bus_slice1", "arb"} <= names


def test_parts_switched_off():
    names = _submodules(BoardTop("icebreaker", memtest=False, mem_slices=False), "icebreaker")
    assert "arb" in names and "link" in names
    assert not {n for n in names if n == "memtest" or "slice" in str(n)}


def test_top_with_nothing_on_its_memory_is_refused():
    with pytest.raises(ValueError, match="memory unused"):
        Fragment.get(BoardTop("icebreaker", memtest=False, link=False), make_platform("icebreaker"))
