"""hw.soc.isa: the host's packing of instruction words is the hardware's layout (Amaranth's own
encoding of the same ``data.Struct``), decoding inverts it, and out-of-range fields are refused."""
import random

import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from hw.configs import BOARD_CONFIGS, CI_CONFIG
from hw.engine.engine import Engine
from hw.soc.isa import (WORD_ALIGN, WORD_BITS, DmaArgs, GapArgs, Insn, Op, PoolArgs, Target, pack,
                        dma_words, clash, target_word_bytes, unpack)

ARGS = {Op.LOAD: DmaArgs, Op.STORE: DmaArgs, Op.POOL: PoolArgs, Op.GAP: GapArgs}


def _random_args(rng, struct):
    out = {}
    for name, f in data.Layout.cast(struct):
        if f.shape is Target:
            out[name] = rng.choice(list(Target))
            continue
        s = Shape.cast(f.shape)
        lo, hi = (-(1 << s.width - 1), (1 << s.width - 1) - 1) if s.signed else (0, (1 << s.width) - 1)
        out[name] = rng.choice([lo, hi, rng.randint(lo, hi)])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_pack_is_amaranths_encoding_and_unpack_inverts_it(seed):
    rng = random.Random(seed)
    for op in Op:
        for _ in range(20):
            sync = {"dma": rng.randint(0, 1), "engine": rng.randint(0, 1)}
            args = _random_args(rng, ARGS[op]) if op in ARGS else {}
            word = pack(op, sync, **args)
            assert len(word) == WORD_BITS // 8
            const = {"op": op, "sync": sync}
            if args:
                const["args"] = {{DmaArgs: "dma", PoolArgs: "pool", GapArgs: "gap"}[ARGS[op]]: args}
            assert int.from_bytes(word, "little") == Insn.const(const).as_value().value
            assert unpack(word) == (op, sync, args)


def test_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="n0"):
        pack(Op.LOAD, target=Target.MAP, n0=1 << 16)
    with pytest.raises(ValueError, match="zp_in"):
        pack(Op.GAP, zp_in=128)
    with pytest.raises(ValueError, match="ext"):
        pack(Op.STORE, target=Target.OUT, ext=-1)
    with pytest.raises(ValueError, match="no field"):
        pack(Op.LOAD, target=Target.MAP, bogus=1)
    with pytest.raises(ValueError):
        unpack((7).to_bytes(32, "little"))           # an unused opcode


@pytest.mark.parametrize("cfg", [c.engine for c in BOARD_CONFIGS.values()] + [CI_CONFIG.engine])
def test_target_words_hold_the_engine_load_port_fields(cfg):
    """Each target's word is the engine load port's field for it, rounded up to whole 32-bit
    memory words."""
    eng = Engine(cfg)
    wb = target_word_bytes(cfg)
    bits = {Target.MAP: cfg.lanes * 8, Target.WEIGHTS: cfg.rows * cfg.cols * 8,
            Target.STEPS: eng.step_layout.size, Target.BLOCKS: eng.block_layout.size,
            Target.DESC: eng.desc_layout.size, Target.OUT: cfg.cols * 8}
    for t, n in bits.items():
        assert wb[t] % WORD_ALIGN == 0 and wb[t] * 8 >= n > (wb[t] - WORD_ALIGN) * 8, t


def test_dma_words_and_clash():
    load = dict(target=Target.WEIGHTS, onchip=256, n0=4, n1=3, n2=2)
    assert dma_words(Op.LOAD, load) == {Target.WEIGHTS: (256, 280)}
    assert dma_words(Op.STORE, dict(load, target=Target.OUT)) == {Target.OUT: (256, 280)}
    # the descriptor is copied when a run starts: loading the next one touches nothing
    assert dma_words(Op.LOAD, dict(load, target=Target.DESC)) == {}
    assert dma_words(Op.POOL, {}) == dma_words(Op.GAP, {}) == {}
    run = {Target.WEIGHTS: (0, 256), Target.MAP: (0, 100)}
    assert clash(dma_words(Op.LOAD, load), run) == []                 # the other half
    assert clash({Target.WEIGHTS: (255, 300)}, run) == [Target.WEIGHTS]
    assert clash({Target.MAP: (100, 200)}, run) == []                  # adjacent, no overlap
    assert clash({Target.MAP: (5, 5)}, run) == []                      # empty
    assert clash({Target.OUT: (0, 10)}, run) == []


def test_which_transfers_take_the_activation_buffers_wide_port():
    """The wide port is a row of memory-word banks as wide as a map word: on the ECP5 boards
    (map = output words), not on the iCEBreaker (no buffer); only map LOADs from the buffer and
    output STOREs into it, with every address of the pattern on a map word."""
    from hw.configs import get_config
    from hw.soc.isa import ACT_BASE, act_wide_words, wide_transfer
    assert [act_wide_words(get_config(n).engine, get_config(n).act_bytes)
            for n in ("ulx3s-85f", "ulx3s-45f", "icebreaker")] == [4, 2, 1]
    load = dict(target=Target.MAP, ext=ACT_BASE + 48, s1=160, s2=0)
    assert wide_transfer(4, Op.LOAD, load)
    assert not wide_transfer(1, Op.LOAD, load)                       # no wide port
    assert not wide_transfer(4, Op.LOAD, dict(load, ext=ACT_BASE + 40))   # half a map word
    assert not wide_transfer(4, Op.LOAD, dict(load, s1=168))
    assert not wide_transfer(4, Op.LOAD, dict(load, s2=8))
    assert not wide_transfer(4, Op.LOAD, dict(load, ext=48))         # off chip
    assert not wide_transfer(4, Op.LOAD, dict(load, target=Target.WEIGHTS))
    assert wide_transfer(4, Op.STORE, dict(load, target=Target.OUT))
    assert not wide_transfer(4, Op.STORE, load)
