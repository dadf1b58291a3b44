"""Golden model: kernels against naive loops, schedules against each other."""
import copy

import numpy as np
import pytest

from host.runtime import golden
from host.model.builder import GraphBuilder, smooth_input
from host.errors import UserError
from host.model.ir import Conv, Pool
from host.compiler.plan import Group, Plan, PlanError, default_plan
from host.model.quant import requantize


def naive_conv(x, w, bias, stride, pads, groups, zx):
    """Direct six-loop convolution in Python ints (slow, obviously right)."""
    c, h, wd = x.shape
    o, i, kh, kw = w.shape
    t, l, b, r = pads
    xp = np.full((c, h + t + b, wd + l + r), zx, dtype=np.int64)
    xp[:, t:t + h, l:l + wd] = x
    ho, wo = (h + t + b - kh) // stride[0] + 1, (wd + l + r - kw) // stride[1] + 1
    og = o // groups
    out = np.zeros((o, ho, wo), dtype=np.int64)
    for oc in range(o):
        g = oc // og
        for y in range(ho):
            for xx in range(wo):
                win = xp[g * i:(g + 1) * i, y * stride[0]:y * stride[0] + kh, xx * stride[1]:xx * stride[1] + kw]
                out[oc, y, xx] = int(bias[oc]) + int((win * w[oc].astype(np.int64)).sum())
    return out


def random_conv_case(rng):
    kind = rng.choice(["std", "group", "dw"])
    cin = int(rng.integers(1, 9)) * (3 if kind != "std" else 1)
    if kind == "std":
        groups, cout = 1, int(rng.integers(1, 10))
    elif kind == "group":
        groups = 3
        cout = 3 * int(rng.integers(1, 4))
    else:
        groups, cout = cin, cin * int(rng.integers(1, 3))
    k = int(rng.choice([1, 2, 3, 5, 7, 11]))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = tuple(int(v) for v in rng.integers(0, k // 2 + 2, 4))
    h, w = int(rng.integers(max(1, k - pads[0] - pads[2]), 14)), int(rng.integers(max(1, k - pads[1] - pads[3]), 14))
    return cin, cout, groups, k, stride, pads, h, w


@pytest.mark.parametrize("seed", range(40))
def test_conv_matches_naive(seed):
    rng = np.random.default_rng(seed)
    cin, cout, groups, k, stride, pads, h, w = random_conv_case(rng)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-20, 20))
    x = rng.integers(-128, 128, (cin, h, w)).astype(np.int8)
    wgt = rng.integers(-127, 128, (cout, cin // groups, k, k)).astype(np.int8)
    bias = rng.integers(-50000, 50000, cout).astype(np.int32)
    node = Conv("c", ["x"], "y", weight=wgt, bias=bias, w_scale=np.ones(cout), stride=stride,
                pads=pads, groups=groups, lo=-100, hi=120)
    node.mult = rng.integers(1 << 30, 1 << 31, cout)
    node.shift = rng.integers(-14, -4, cout)
    got = golden.conv_layer(node, x, zx, zy)
    # naive: bias' folded with zx == padding with zx and adding the raw bias minus zx*sum(w) ...
    acc = naive_conv(x, wgt, node.folded_bias(zx), stride, pads, groups, zx)
    want = requantize(acc, node.mult[:, None, None], node.shift[:, None, None], zy, -100, 120)
    assert np.array_equal(got, want)
    # … and the fold is exact: padding with zx and subtracting zx everywhere gives the same sums
    raw = naive_conv(x.astype(np.int64) - zx, wgt, bias, stride, pads, groups, 0)
    assert np.array_equal(acc, raw)


def naive_pool(x, kind, k, s, pads, pad_value):
    c, h, w = x.shape
    t, l, b, r = pads
    ho, wo = (h + t + b - k) // s + 1, (w + l + r - k) // s + 1
    out = np.zeros((c, ho, wo), dtype=np.int64)
    cnt = np.zeros((ho, wo), dtype=np.int64)
    for y in range(ho):
        for xx in range(wo):
            ys = [yy for yy in range(y * s - t, y * s - t + k) if 0 <= yy < h]
            xs = [q for q in range(xx * s - l, xx * s - l + k) if 0 <= q < w]
            win = x[:, ys][:, :, xs].astype(np.int64)
            full_pad = len(ys) * len(xs) < k * k
            if kind == "max":
                out[:, y, xx] = win.reshape(c, -1).max(axis=1) if not full_pad else \
                    np.maximum(win.reshape(c, -1).max(axis=1), pad_value)
            else:
                out[:, y, xx] = win.reshape(c, -1).sum(axis=1)
                cnt[y, xx] = len(ys) * len(xs)
    return out, cnt


@pytest.mark.parametrize("seed", range(10))
def test_pools_match_naive(seed):
    rng = np.random.default_rng(100 + seed)
    b = GraphBuilder("p", (int(rng.integers(1, 5)), int(rng.integers(3, 12)), int(rng.integers(3, 12))), seed=seed)
    k = int(rng.integers(2, 4))
    s = int(rng.integers(1, 3))
    p = int(rng.integers(0, k // 2 + 1))
    m = b.maxpool(b.input, k, s, p)
    g = b.build(calibrate=False)
    x = rng.integers(-128, 128, g.input_tensor.shape).astype(np.int8)
    want, _ = naive_pool(x, "max", k, s, (p,) * 4, -128)
    assert np.array_equal(golden.run(g, x), want)

    b = GraphBuilder("p", g.input_tensor.shape, seed=seed, input_zero_point=int(rng.integers(-30, 30)))
    b.avgpool(b.input, k, s, p)
    g = b.build(calibrate=False)
    t = g.input_tensor
    total, cnt = naive_pool(x.astype(np.int64) - t.zero_point, "avg", k, s, (p,) * 4, 0)
    mean = total / cnt
    rounded = np.sign(mean) * np.floor(np.abs(mean) + 0.5)      # half away from zero, as gemmlowp
    want = np.clip(rounded + t.zero_point, -128, 127)             # same scale in and out
    got = golden.run(g, x).astype(np.int64)
    # with the sum shifted into int32's headroom the fixed-point quotient is the exact one
    assert np.array_equal(got, want)


def test_add_and_concat_rescale():
    rng = np.random.default_rng(3)
    b = GraphBuilder("a", (4, 5, 6), seed=0)
    c1 = b.conv(b.input, 4, 3, act=None)
    c2 = b.conv(b.input, 4, 1, act="relu")
    s = b.add(c1, c2, act=None)
    cat = b.concat([c1, c2, s])
    g = b.build()
    x = smooth_input(g, 2)
    v = golden.run(g, x, keep=True)
    t = g.tensors
    real = (v[c1].astype(float) - t[c1].zero_point) * t[c1].scale + (v[c2].astype(float) - t[c2].zero_point) * t[c2].scale
    want = np.clip(np.round(real / t[s].scale) + t[s].zero_point, -128, 127)
    assert np.max(np.abs(v[s] - want)) <= 1
    for name, part in zip([c1, c2, s], np.split(v[cat], 3)):
        real = (v[name].astype(float) - t[name].zero_point) * t[name].scale
        want = np.clip(np.round(real / t[cat].scale) + t[cat].zero_point, -128, 127)
        assert np.max(np.abs(part - want)) <= 1


def mixed_net(seed, shape=(6, 21, 17)):
    b = GraphBuilder("mixed", shape, seed=seed)
    x = b.conv(b.input, 12, 3)
    y = b.conv(x, 12, 3, groups=12)
    y = b.conv(y, 12, 1, act=None)
    z = b.add(x, y)
    z = b.maxpool(z, 2)
    z2 = b.conv(z, 18, 3, stride=2, groups=3)
    z3 = b.shuffle(z2, 3)
    a = b.avgpool(z3, 3, 1, 1)
    c = b.concat([a, z3])
    c = b.conv(c, 8, 5, pad=2)
    return b.build()


@pytest.mark.parametrize("block", [(1, 1), (3, 5), (4, 4), (7, 9), (64, 64)])
def test_fused_equals_layer(block):
    g = mixed_net(1)
    x = smooth_input(g, 4)
    ref = golden.run(g, x, schedule="layer")
    assert len(np.unique(ref)) > 20
    assert np.array_equal(golden.run(g, x, schedule="fused", block=block), ref)


def _graph_on(g, shape):
    h = copy.deepcopy(g)
    h.input_tensor.shape = tuple(shape)
    return h.finalize()


@pytest.mark.parametrize("block", [(4, 4), (8, 4), (8, 8)])
def test_block_equals_blocks_as_own_images(block):
    b = GraphBuilder("blk", (5, 16, 24), seed=2)
    x = b.conv(b.input, 8, 3)
    x = b.conv(x, 8, 3, groups=8)
    y = b.conv(x, 8, 1)
    x = b.add(x, y)
    x = b.maxpool(x, 2)
    x = b.conv(x, 6, 3)
    g = b.build()
    xin = smooth_input(g, 9)
    got = golden.run(g, xin, schedule="block", block=block)
    bh, bw = block
    rows = []
    for y0 in range(0, 16, bh):
        row = []
        for x0 in range(0, 24, bw):
            crop = xin[:, y0:y0 + bh, x0:x0 + bw]
            row.append(golden.run(_graph_on(g, crop.shape), crop, schedule="layer"))
        rows.append(np.concatenate(row, axis=2))
    assert np.array_equal(got, np.concatenate(rows, axis=1))
    # block convolution changes the function at block seams but not inside
    ref = golden.run(g, xin, schedule="layer")
    assert not np.array_equal(got, ref)
    assert np.array_equal(golden.run(g, xin, schedule="block", block=(16, 24)), ref)


def test_block_that_cannot_tile_is_a_clear_error():
    b = GraphBuilder("s2", (2, 12, 12), seed=0)
    b.conv(b.input, 2, 3, stride=2)
    g = b.build(calibrate=False)
    with pytest.raises(PlanError, match="do not tile"):
        golden.run(g, np.zeros((2, 12, 12), np.int8), schedule="block", block=(5, 5))


def test_explicit_plan_and_bad_plans():
    g = mixed_net(2)
    x = smooth_input(g, 1)
    names = [n.name for n in g.nodes]
    plan = Plan("fused", [Group(names[:4], (5, 5)), Group(names[4:7], (3, 3)), Group(names[7:], None)])
    assert np.array_equal(golden.run(g, x, plan=plan), golden.run(g, x))
    with pytest.raises(PlanError):
        golden.run(g, x, plan=Plan("fused", [Group(names[1:])]))
    with pytest.raises(PlanError):
        golden.run(g, x, schedule="tiles")


def test_input_checks():
    g = mixed_net(0)
    with pytest.raises(UserError, match="int8"):
        golden.run(g, np.zeros(g.input_tensor.shape, np.float32))
    with pytest.raises(UserError, match="shape"):
        golden.run(g, np.zeros((1, 2, 3), np.int8))


def test_fc_head_and_gap():
    b = GraphBuilder("head", (3, 9, 9), seed=5)
    x = b.conv(b.input, 8, 3, stride=2)
    g1 = b.gap(x)
    f = b.flatten(g1)
    b.fc(f, 10)
    g = b.build()
    xin = smooth_input(g, 3)
    v = golden.run(g, xin, keep=True)
    conv_out = v[x].astype(np.int64) - g.tensors[x].zero_point
    mean = conv_out.mean(axis=(1, 2)) * g.tensors[x].scale / g.tensors[g1].scale + g.tensors[g1].zero_point
    assert np.max(np.abs(v[g1].ravel() - np.clip(np.round(mean), -128, 127))) <= 1
    fc = g.nodes[-1]
    acc = fc.weight.astype(np.int64) @ v[f].astype(np.int64) + fc.folded_bias(g.tensors[f].zero_point)
    assert np.array_equal(v[g.output], requantize(acc, fc.mult, fc.shift, g.output_tensor.zero_point, fc.lo, fc.hi))
    for sched in ("fused", "block"):
        assert np.array_equal(golden.run(g, xin, schedule=sched), v[g.output])


def test_calibration_carries_quantisation_through_pass_through_layers():
    b = GraphBuilder("q", (3, 8, 8), seed=1)
    c = b.conv(b.input, 4, 3)
    p = b.maxpool(c, 2)
    s = b.shuffle(p, 2)
    a = b.avgpool(s, 2)
    f = b.flatten(a)
    r = b.relu(f)
    g = b.build()
    for t in (p, s, a, f, r):
        assert (g.tensors[t].scale, g.tensors[t].zero_point) == (g.tensors[c].scale, g.tensors[c].zero_point)


def test_vector_clamps_run_alone_under_fused():
    b = GraphBuilder("v", (2, 4, 4), seed=0)
    x = b.flatten(b.conv(b.input, 2, 3))
    x = b.relu(b.relu(b.fc(x, 6, act=None)))
    b.fc(x, 3)
    g = b.build()
    xin = smooth_input(g, 0)
    assert np.array_equal(golden.run(g, xin, schedule="fused"), golden.run(g, xin, schedule="layer"))
