"""hw.soc.vector_unit in the Amaranth simulator on a block-RAM memory: POOL against the golden
max pool (random sizes, strides, padding, both lane widths) and GAP against the golden global
average (both requantisation lanes); the byte counters against what the emulator reports."""
import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from host.model.quant import quantize_multiplier
from host.runtime.golden import ADD_LEFT_SHIFT, maxpool_padded
from hw.memory.bram import BRAMTarget
from hw.soc.isa import Op, pack
from hw.soc.vector_unit import VectorUnit
from sim.amsim import run

SRC, DST, WORDS = 256, 6144, 2048


class _Top(wiring.Component):
    def __init__(self, lanes, image, serial=False):
        self.vu = VectorUnit(lanes, 11, 32, serial=serial)
        words = [int.from_bytes(image[i:i + 4].tobytes(), "little") for i in range(0, len(image), 4)]
        self.ram = BRAMTarget(WORDS, 32, init=words)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.vu, m.submodules.ram = self.vu, self.ram
        wiring.connect(m, self.vu.mem, self.ram.bus)
        return m


def _execute(lanes, image, op, args, nbytes, serial=False):
    """Run one POOL/GAP on the unit; returns (bytes at DST, bytes read, bytes written)."""
    top = _Top(lanes, image, serial)
    raw = int.from_bytes(pack(op, **args), "little") >> 8
    out = {}

    async def tb(ctx):
        ctx.set(top.vu.args, raw)
        ctx.set(top.vu.gap, op == Op.GAP)
        ctx.set(top.vu.go, 1)
        await ctx.tick()
        ctx.set(top.vu.go, 0)
        await ctx.tick().until(top.vu.idle)
        out["words"] = [ctx.get(top.ram.mem.data[i]) for i in range(DST // 4, (DST + nbytes) // 4)]
        out["rw"] = ctx.get(top.vu.bytes_read), ctx.get(top.vu.bytes_written)
    run(top, tb)
    return b"".join(v.to_bytes(4, "little") for v in out["words"]), out["rw"]


@pytest.mark.parametrize("lanes,nb,h,w,k,s,pad", [(4, 2, 5, 7, 2, 2, 0), (16, 1, 6, 5, 3, 2, 1),
                                                  (8, 3, 4, 4, 3, 1, 1), (4, 1, 1, 3, 2, 2, 0)])
def test_pool(lanes, nb, h, w, k, s, pad):
    rng = np.random.default_rng(h * w + k)
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    if ho < 1:
        ho, pad = 1, 1
    x = rng.integers(-128, 128, (nb, h, w, lanes)).astype(np.int8)
    image = np.zeros(WORDS * 4, np.uint8)
    image[SRC:SRC + x.size] = x.view(np.uint8).reshape(-1)
    got, (rd, wr) = _execute(lanes, image, Op.POOL, dict(
        src=SRC, dst=DST, nb=nb, h=h, w=w, ho=ho, wo=wo, src_row=w, src_plane=h * w,
        dst_row=wo, dst_plane=ho * wo, kh=k, kw=k, sh=s, sw=s, pt=pad, pl=pad),
        nb * ho * wo * lanes)
    node = type("P", (), {"kernel": (k, k), "stride": (s, s)})
    xp = np.pad(x.transpose(0, 3, 1, 2).reshape(-1, h, w), ((0, 0), (pad, k), (pad, k)),
                constant_values=-128)
    want = maxpool_padded(node, xp)[:, :ho, :wo].reshape(nb, lanes, ho, wo).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(np.frombuffer(got, np.int8).reshape(nb, ho, wo, lanes), want)
    taps = sum(0 <= oy * s - pad + ky < h and 0 <= ox * s - pad + kx < w
               for oy in range(ho) for ox in range(wo) for ky in range(k) for kx in range(k))
    assert (rd, wr) == (nb * taps * lanes, nb * ho * wo * lanes)


@pytest.mark.parametrize("serial", [False, True])
@pytest.mark.parametrize("lanes,nb,hw,s_ratio,zp_in,zp_out", [(4, 2, 9, 0.7, -5, 3),
                                                              (16, 1, 49, 1.9, 12, -128)])
def test_gap(serial, lanes, nb, hw, s_ratio, zp_in, zp_out):
    from host.runtime.golden import avg_requant
    rng = np.random.default_rng(hw)
    x = rng.integers(-128, 128, (nb, hw, lanes)).astype(np.int8)
    image = np.zeros(WORDS * 4, np.uint8)
    image[SRC:SRC + x.size] = x.view(np.uint8).reshape(-1)
    headroom = max(0, min(ADD_LEFT_SHIFT, 30 - int(np.ceil(np.log2(hw * 256)))))
    m, sh = quantize_multiplier(s_ratio / hw / (1 << headroom))
    got, (rd, wr) = _execute(lanes, image, Op.GAP, dict(
        src=SRC, dst=DST, nb=nb, hw=hw, zp_in=zp_in, zp_out=zp_out, mult=m, shift=sh,
        headroom=headroom), nb * lanes, serial)
    total = (x.astype(np.int64) - zp_in).sum(axis=1)
    want = avg_requant(total, np.full(total.shape, hw), s_ratio, 1.0, zp_out)
    np.testing.assert_array_equal(np.frombuffer(got, np.int8).reshape(nb, lanes), want)
    assert (rd, wr) == (x.size, nb * lanes)
