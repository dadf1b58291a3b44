"""Golden model: bit-exact integer execution of a :class:`host.model.ir.Graph` (`docs/numerics.md`; schedules: `docs/scheduler.md`).

Every operator is computed on a *region* of its output map: ``(y0, y1, x0, x1)``.  The input
window a region needs is cut from whatever part of the input has been computed, and anything
outside the map's *bounds* is filled with padding (the input zero point for convolutions, −128
for max pooling, excluded from the count for average pooling).  One code path thus serves the
three schedules:

* ``layer``  — every node on its whole map;
* ``fused``  — a group of nodes per output block, each node computing just the region its
  consumers need (overlapping halos, recomputed at block seams): identical to ``layer``;
* ``block``  — block convolution (DATE 2018): every block of the group's input runs through the
  group as its own image, padded at its own borders; the output blocks are stitched.

Convolutions use float64 BLAS: int8 products summed over ≤ 2^30 terms stay far below 2^53, so
the result is exact.
"""
from __future__ import annotations

import numpy as np

from host.errors import UserError
from host.model.ir import (FC, Add, ChannelSlice, Clamp, Concat, Conv, Flatten, GlobalAvgPool, GlobalMaxPool,
                 Graph, Node, Permute, Pool, Tensor, UnsupportedModel)
from host.compiler.plan import Group, Plan, PlanError, default_plan
from host.model.quant import multiply_by_quantized_multiplier, quantize_multiplier, requantize

ADD_LEFT_SHIFT = 20      # TFLite's headroom for the residual add


# ---------------------------------------------------------------------------------------------
# Kernels on explicitly padded inputs
# ---------------------------------------------------------------------------------------------

def prepare_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """float64 weights laid out (kh, kw, groups, O/groups, I) so every tap is one contiguous
    matrix for BLAS."""
    o, i, kh, kw = weight.shape
    wf = weight.astype(np.float64).reshape(groups, o // groups, i, kh, kw)
    return np.ascontiguousarray(wf.transpose(3, 4, 0, 1, 2))


def _prepared(node: Conv) -> np.ndarray:
    """The node's weights in :func:`prepare_weight` layout, computed once per node."""
    cached = node.__dict__.get("_prepared_weight")
    if cached is None or cached[0] is not node.weight:
        cached = (node.weight, prepare_weight(node.weight, node.groups))
        node.__dict__["_prepared_weight"] = cached
    return cached[1]


def conv_acc_padded(weight: np.ndarray, xp: np.ndarray, stride=(1, 1), groups: int = 1,
                    prepared: np.ndarray | None = None) -> np.ndarray:
    """Σ x·w for an already padded int8 input ``xp`` (C, Hp, Wp): int64 (O, Ho, Wo), no bias.
    ``prepared`` is ``prepare_weight(weight, groups)`` when the caller has it cached."""
    o, i, kh, kw = weight.shape
    c, hp, wp = xp.shape
    sh, sw = stride
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    g = groups
    og = o // g
    xf = xp.astype(np.float64).reshape(g, i, hp, wp)
    wf = prepare_weight(weight, groups) if prepared is None else prepared
    acc = np.zeros((g, og, ho * wo), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xf[:, :, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw]
            patch = patch.reshape(g, i, ho * wo)
            if i == 1:
                acc += wf[ky, kx, :, :, 0][:, :, None] * patch       # depthwise: no GEMM needed
            else:
                acc += np.matmul(wf[ky, kx], patch)
    return np.rint(acc).astype(np.int64).reshape(o, ho, wo)


def conv_requant(node: Conv, acc: np.ndarray, zx: int, zy: int) -> np.ndarray:
    """Add the folded bias and requantise int64 accumulators (O, H, W) to int8."""
    acc = acc + node.folded_bias(zx)[:, None, None]
    return requantize(acc, node.mult[:, None, None], node.shift[:, None, None], zy, node.lo, node.hi)


def conv_layer(node: Conv, x: np.ndarray, zx: int, zy: int) -> np.ndarray:
    """A whole convolution layer on an unpadded int8 map: pads with ``zx``, convolves, requantises."""
    t, l, b, r = node.pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r)), constant_values=zx)
    acc = conv_acc_padded(node.weight, xp, node.stride, node.groups, _prepared(node))
    return conv_requant(node, acc, zx, zy)


def fc_acc(node: FC, x: np.ndarray, zx: int, rows: int = 512) -> np.ndarray:
    """W·x + bias' in int64; the weight is widened to float64 a slice of rows at a time (a VGG
    head is 100 M weights: widening it whole would take 800 MB)."""
    xf = x.astype(np.float64)
    acc = np.concatenate([node.weight[r:r + rows].astype(np.float64) @ xf
                          for r in range(0, node.weight.shape[0], rows)])
    return np.rint(acc).astype(np.int64) + node.folded_bias(zx)


def fc_layer(node: FC, x: np.ndarray, zx: int, zy: int) -> np.ndarray:
    return requantize(fc_acc(node, x, zx), node.mult, node.shift, zy, node.lo, node.hi)


def _windows(xp: np.ndarray, kh, kw, sh, sw):
    """All (kh·kw) strided views of a padded map, each (C, Ho, Wo)."""
    c, hp, wp = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    for ky in range(kh):
        for kx in range(kw):
            yield xp[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw]


def maxpool_padded(node: Pool, xp: np.ndarray) -> np.ndarray:
    kh, kw = node.kernel
    out = None
    for win in _windows(xp, kh, kw, *node.stride):
        out = win.copy() if out is None else np.maximum(out, win)
    return out.astype(np.int8)


def avg_requant(total: np.ndarray, count: np.ndarray, s_in: float, s_out: float, zy: int,
                lo: int = -128, hi: int = 127) -> np.ndarray:
    """round(total · s_in / (s_out · count)) + zy with a fixed-point multiplier per count.

    The sum is first shifted left into the headroom int32 leaves it (up to 20 bits, as TFLite's
    add), so the double rounding of the high multiply and the shift almost never shows."""
    out = np.empty(total.shape, dtype=np.int64)
    n_max = int(np.max(count))
    headroom = max(0, min(ADD_LEFT_SHIFT, 30 - int(np.ceil(np.log2(n_max * 256)))))
    shifted = np.asarray(total, dtype=np.int64) << headroom
    for n in np.unique(count):
        m, s = quantize_multiplier(s_in / (s_out * int(n)) / (1 << headroom))
        sel = count == n
        out[sel] = multiply_by_quantized_multiplier(shifted[sel], m, s)
    return np.clip(out + zy, lo, hi).astype(np.int8)


def avgpool_padded(node: Pool, xp: np.ndarray, valid: np.ndarray, tin: Tensor, tout: Tensor,
                   counted: np.ndarray | None = None) -> np.ndarray:
    """Average pool of a padded map; ``valid`` (Hp, Wp) marks real (non-padding) pixels,
    ``counted`` the pixels a ``count_include_pad`` average counts (None: all of them)."""
    kh, kw = node.kernel
    centred = (xp.astype(np.int64) - tin.zero_point) * valid[None]
    total = sum(w for w in _windows(centred, kh, kw, *node.stride))
    if node.count_include_pad and counted is None:
        count = np.full(total.shape[1:], kh * kw)
    else:
        mask = counted if node.count_include_pad else valid
        count = sum(w for w in _windows(mask[None].astype(np.int64), kh, kw, *node.stride))[0]
    count = np.broadcast_to(count, total.shape)
    return avg_requant(total, count, tin.scale, tout.scale, tout.zero_point)


def global_avgpool(x: np.ndarray, tin: Tensor, tout: Tensor) -> np.ndarray:
    c, h, w = x.shape
    total = (x.astype(np.int64) - tin.zero_point).sum(axis=(1, 2)).reshape(c, 1, 1)
    return avg_requant(total, np.full(total.shape, h * w), tin.scale, tout.scale, tout.zero_point)


def add_int8(a: np.ndarray, b: np.ndarray, ta: Tensor, tb: Tensor, ty: Tensor, lo=-128, hi=127) -> np.ndarray:
    """TFLite's quantised add: both inputs to a common scale with 20 bits of headroom."""
    twice_max = 2.0 * max(ta.scale, tb.scale)
    ma, sa = quantize_multiplier(ta.scale / twice_max)
    mb, sb = quantize_multiplier(tb.scale / twice_max)
    my, sy = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * ty.scale))
    xa = (a.astype(np.int64) - ta.zero_point) << ADD_LEFT_SHIFT
    xb = (b.astype(np.int64) - tb.zero_point) << ADD_LEFT_SHIFT
    total = multiply_by_quantized_multiplier(xa, ma, sa) + multiply_by_quantized_multiplier(xb, mb, sb)
    y = multiply_by_quantized_multiplier(total, my, sy) + ty.zero_point
    return np.clip(y, lo, hi).astype(np.int8)


def rescale_int8(x: np.ndarray, tin: Tensor, tout: Tensor) -> np.ndarray:
    """Move an int8 map to another scale/zero point (concat inputs); identity when they agree."""
    if tin.scale == tout.scale and tin.zero_point == tout.zero_point:
        return x
    m, s = quantize_multiplier(tin.scale / tout.scale)
    y = multiply_by_quantized_multiplier(x.astype(np.int64) - tin.zero_point, m, s) + tout.zero_point
    return np.clip(y, -128, 127).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# Region evaluation: one node, one output region, inputs available on regions
# ---------------------------------------------------------------------------------------------

def need_region(node: Node, out_region):
    """Input region (y0, y1, x0, x1), possibly extending past the map, an output region needs."""
    y0, y1, x0, x1 = out_region
    kh, kw, sh, sw, pt, pl, _, _ = node.window()
    return (y0 * sh - pt, (y1 - 1) * sh - pt + kh, x0 * sw - pl, (x1 - 1) * sw - pl + kw)


def intersect(a, b):
    return (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))


class Available:
    """A computed part of a map: ``data`` covers ``region``; ``bounds`` is the map (or block)
    extent outside which padding applies."""

    def __init__(self, data: np.ndarray, region, bounds):
        self.data, self.region, self.bounds = data, tuple(region), tuple(bounds)

    @classmethod
    def whole(cls, x: np.ndarray) -> "Available":
        """A map that is its own image: computed everywhere, padded at its own borders."""
        full = (0, x.shape[1], 0, x.shape[2])
        return cls(x, full, full)

    def cut(self, want, pad_value):
        """The window ``want`` with padding outside ``bounds`` and a validity mask."""
        y0, y1, x0, x1 = want
        c = self.data.shape[0]
        out = np.full((c, y1 - y0, x1 - x0), pad_value, dtype=self.data.dtype)
        valid = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        inside = intersect(want, self.bounds)
        if inside[1] > inside[0] and inside[3] > inside[2]:
            r = self.region
            if not (r[0] <= inside[0] and inside[1] <= r[1] and r[2] <= inside[2] and inside[3] <= r[3]):
                raise AssertionError(f"window {want} not covered by computed region {r}")
            out[:, inside[0] - y0:inside[1] - y0, inside[2] - x0:inside[3] - x0] = \
                self.data[:, inside[0] - r[0]:inside[1] - r[0], inside[2] - r[2]:inside[3] - r[2]]
            valid[inside[0] - y0:inside[1] - y0, inside[2] - x0:inside[3] - x0] = True
        return out, valid


def eval_region(graph: Graph, node: Node, ins: list, out_region, conv_fn=None) -> np.ndarray:
    """Compute ``node`` on ``out_region`` from :class:`Available` inputs ``ins``."""
    tins = [graph.tensors[i] for i in node.inputs]
    tout = graph.tensors[node.output]
    if isinstance(node, Conv):
        zx = tins[0].zero_point
        xp, _ = ins[0].cut(need_region(node, out_region), zx)
        if conv_fn is not None:
            return conv_fn(node, xp, zx, tout.zero_point)
        acc = conv_acc_padded(node.weight, xp, node.stride, node.groups, _prepared(node))
        return conv_requant(node, acc, zx, tout.zero_point)
    if isinstance(node, Pool):
        want = need_region(node, out_region)
        if node.kind == "max":
            xp, _ = ins[0].cut(want, -128)
            return maxpool_padded(node, xp)
        xp, valid = ins[0].cut(want, tins[0].zero_point)
        return avgpool_padded(node, xp, valid, tins[0], tout, _counted(node, want, ins[0].bounds))
    # point-wise nodes: the same region of every input
    xs = [a.cut(out_region, 0)[0] for a in ins]
    if isinstance(node, Add):
        return add_int8(xs[0], xs[1], tins[0], tins[1], tout, node.lo, node.hi)
    if isinstance(node, Concat):
        return np.concatenate([rescale_int8(x, t, tout) for x, t in zip(xs, tins)], axis=0)
    if isinstance(node, Permute):
        return xs[0][np.asarray(node.perm)]
    if isinstance(node, ChannelSlice):
        return xs[0][node.start:node.stop]
    if isinstance(node, Clamp):
        return np.clip(xs[0], node.lo, node.hi).astype(np.int8)
    raise UnsupportedModel(f"{node.name}: {node.op} cannot run on a block")


def _counted(node: Pool, want, bounds):
    """The pixels of window ``want`` an average with ``count_include_pad`` counts: the map (or
    block) ``bounds`` and its declared padding, not the padding ``ceil_mode`` adds; None when
    that is every pixel."""
    if not node.count_include_pad or not any(node.ceil_extra):
        return None
    t, l, b, r = node.pads
    eb, er = node.ceil_extra
    y = np.arange(want[0], want[1])
    x = np.arange(want[2], want[3])
    in_y = (y >= bounds[0] - t) & (y < bounds[1] + b - eb)
    in_x = (x >= bounds[2] - l) & (x < bounds[3] + r - er)
    return in_y[:, None] & in_x[None, :]


def fusable_pool(graph: Graph, node: Node):
    """The 2×2/2 unpadded max-pool that is the only consumer of convolution ``node``'s output,
    or None.  An engine with a fused output pool runs the two as one layer (the convolution's
    map is never stored)."""
    if not isinstance(node, Conv) or node.output == graph.output:
        return None
    consumers = graph.consumers(node.output)
    if len(consumers) != 1:
        return None
    p = consumers[0]
    if (isinstance(p, Pool) and p.kind == "max" and tuple(p.kernel) == (2, 2)
            and tuple(p.stride) == (2, 2) and tuple(p.pads) == (0, 0, 0, 0)):
        return p
    return None


def eval_conv_pool(graph: Graph, conv: Conv, pool: Pool, ins: list, pool_region,
                   conv_pool_fn, conv_fn=None) -> np.ndarray:
    """``pool`` (see :func:`fusable_pool`) of ``conv`` on ``pool_region``, from the conv's
    :class:`Available` input: ``conv_pool_fn(conv, pool, x_padded, zx, zy)`` computes both at
    once; when it returns None (the engine cannot fuse this shape) the two run one after the
    other.  The convolution region is exactly twice the pool region, so the result is the same."""
    conv_region = need_region(pool, pool_region)
    zx = graph.tensors[conv.inputs[0]].zero_point
    zy = graph.tensors[conv.output].zero_point
    xp, _ = ins[0].cut(need_region(conv, conv_region), zx)
    y = conv_pool_fn(conv, pool, xp, zx, zy)
    if y is not None:
        return y
    mid = eval_region(graph, conv, ins, conv_region, conv_fn)
    return maxpool_padded(pool, mid)


def eval_whole(graph: Graph, node: Node, xs: list, conv_fn=None, fc_fn=None) -> np.ndarray:
    """Compute ``node`` on whole maps/vectors ``xs``."""
    tins = [graph.tensors[i] for i in node.inputs]
    tout = graph.tensors[node.output]
    if isinstance(node, FC):
        if fc_fn is not None:
            return fc_fn(node, xs[0], tins[0].zero_point, tout.zero_point)
        return fc_layer(node, xs[0], tins[0].zero_point, tout.zero_point)
    if isinstance(node, GlobalAvgPool):
        return global_avgpool(xs[0], tins[0], tout)
    if isinstance(node, GlobalMaxPool):
        return xs[0].max(axis=(1, 2), keepdims=True)
    if isinstance(node, Flatten):
        return xs[0].reshape(-1)
    if isinstance(node, Clamp) and xs[0].ndim == 1:
        return np.clip(xs[0], node.lo, node.hi).astype(np.int8)
    h, w = tout.shape[1:]
    full = (0, h, 0, w)
    ins = [Available.whole(x) for x in xs]
    return eval_region(graph, node, ins, full, conv_fn)


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------

def _group_io(graph: Graph, group: Group):
    names = set(group.nodes)
    nodes = [graph.node(n) for n in group.nodes]
    produced = {n.output for n in nodes}
    ext_inputs = []
    for n in nodes:
        for i in n.inputs:
            if i not in produced and i not in ext_inputs:
                ext_inputs.append(i)
    outputs = [n.output for n in nodes
               if n.output == graph.output or any(c.name not in names for c in graph.consumers(n.output))]
    return nodes, ext_inputs, outputs


def block_grid(size: int, block: int | None) -> list:
    """Cut [0, size) into consecutive ranges of length ``block`` (the last may be shorter)."""
    if block is None or block >= size:
        return [(0, size)]
    return [(s, min(s + block, size)) for s in range(0, size, block)]


def _scale_range(rng, src: int, dst: int, what: str):
    a, b = rng
    if (a * dst) % src or (b * dst) % src:
        raise PlanError(f"block edge {a}..{b} of a {src}-pixel map does not map onto the "
                        f"{dst}-pixel map of {what}")
    return a * dst // src, b * dst // src


def _fused_pools(graph: Graph, nodes: list, conv_pool_fn) -> dict:
    """conv name → its fusable pool, for pools that are in ``nodes`` too."""
    if conv_pool_fn is None:
        return {}
    names = {n.name for n in nodes}
    pairs = {}
    for n in nodes:
        p = fusable_pool(graph, n)
        if p is not None and p.name in names:
            pairs[n.name] = p
    return pairs


def run_group_fused(graph: Graph, group: Group, values: dict, conv_fn=None,
                    conv_pool_fn=None) -> None:
    """Exact fusion with halos: for each output block, compute back-to-front the regions every
    tensor of the group must provide, then front-to-back just those regions."""
    nodes, ext_inputs, outputs = _group_io(graph, group)
    pools = _fused_pools(graph, nodes, conv_pool_fn)
    pooled = {p.name for p in pools.values()}
    first_in = graph.tensors[nodes[0].inputs[0]]
    main_out = graph.tensors[nodes[-1].output]
    _, H, W = first_in.shape
    _, Ho, Wo = main_out.shape
    bh, bw = group.block or (H, W)
    # output block grid: the input grid shrunk by the group's total downsampling
    oy = block_grid(Ho, max(1, -(-bh * Ho // H)))
    ox = block_grid(Wo, max(1, -(-bw * Wo // W)))
    results = {t: np.zeros(graph.tensors[t].shape, dtype=np.int8) for t in outputs}
    for (ya, yb) in oy:
        for (xa, xb) in ox:
            need = {}
            for t in outputs:
                _, th, tw = graph.tensors[t].shape
                need[t] = (ya * th // Ho, -(-yb * th // Ho), xa * tw // Wo, -(-xb * tw // Wo))
            for n in reversed(nodes):
                if n.output not in need:
                    continue
                out_r = need[n.output]
                for i in n.inputs:
                    _, ih, iw = graph.tensors[i].shape
                    r = need_region(n, out_r) if isinstance(n, (Conv, Pool)) else out_r
                    r = intersect(r, (0, ih, 0, iw))
                    old = need.get(i)
                    need[i] = r if old is None else (min(old[0], r[0]), max(old[1], r[1]),
                                                     min(old[2], r[2]), max(old[3], r[3]))
            avail = {}
            for i in ext_inputs:
                if i not in need:
                    continue
                _, ih, iw = graph.tensors[i].shape
                r = need[i]
                avail[i] = Available(values[i][:, r[0]:r[1], r[2]:r[3]], r, (0, ih, 0, iw))
            for n in nodes:
                if n.name in pooled:
                    continue                      # computed with its convolution
                p = pools.get(n.name)
                if p is not None and p.output in need:
                    r = need[p.output]
                    _, th, tw = graph.tensors[p.output].shape
                    data = eval_conv_pool(graph, n, p, [avail[i] for i in n.inputs], r,
                                          conv_pool_fn, conv_fn)
                    avail[p.output] = Available(data, r, (0, th, 0, tw))
                    continue
                if n.output not in need:
                    continue
                r = need[n.output]
                _, th, tw = graph.tensors[n.output].shape
                data = eval_region(graph, n, [avail[i] for i in n.inputs], r, conv_fn)
                avail[n.output] = Available(data, r, (0, th, 0, tw))
            for t in outputs:
                a = avail[t]
                r = need[t]
                results[t][:, r[0]:r[1], r[2]:r[3]] = a.data
    values.update(results)


def run_group_block(graph: Graph, group: Group, values: dict, conv_fn=None,
                    conv_pool_fn=None) -> None:
    """Block convolution: each input block runs through the group as its own image."""
    nodes, ext_inputs, outputs = _group_io(graph, group)
    pools = _fused_pools(graph, nodes, conv_pool_fn)
    pooled = {p.name for p in pools.values()}
    first = nodes[0].inputs[0]
    _, H, W = graph.tensors[first].shape
    bh, bw = group.block or (H, W)
    ys, xs = block_grid(H, bh), block_grid(W, bw)
    pieces = {t: [[None] * len(xs) for _ in ys] for t in outputs}
    for by, yr in enumerate(ys):
        for bx, xr in enumerate(xs):
            local = {}
            for i in ext_inputs:
                _, ih, iw = graph.tensors[i].shape
                ry = _scale_range(yr, H, ih, i)
                rx = _scale_range(xr, W, iw, i)
                local[i] = values[i][:, ry[0]:ry[1], rx[0]:rx[1]]
            for n in nodes:
                if n.name in pooled:
                    continue                      # computed with its convolution
                p = pools.get(n.name)
                if p is not None:
                    x = local[n.inputs[0]]
                    ph, pw = _block_out(p, _block_out(n, x.shape[1:]))   # errors as unfused
                    local[p.output] = eval_conv_pool(graph, n, p, [Available.whole(x)],
                                                     (0, ph, 0, pw), conv_pool_fn, conv_fn)
                    continue
                local[n.output] = _eval_block_node(graph, n, [local[i] for i in n.inputs], conv_fn)
            for t in outputs:
                pieces[t][by][bx] = local[t]
    for t in outputs:
        grid = pieces[t]
        try:
            out = np.concatenate([np.concatenate(row, axis=2) for row in grid], axis=1)
        except ValueError:
            out = None
        if out is None or out.shape != tuple(graph.tensors[t].shape):
            raise PlanError(f"blocks of {bh}x{bw} do not tile the output {t} "
                            f"{graph.tensors[t].shape} (pick a block size the strides divide)")
        values[t] = out


def _block_out(node: Node, hw) -> tuple:
    """Output size of a windowed node on an ``hw`` block treated as a whole image."""
    kh, kw, sh, sw, pt, pl, pb, pr = node.window()
    h, w = hw
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise PlanError(f"{node.name}: a {h}x{w} block is too small for its "
                        f"{kh}x{kw} window (use larger blocks)")
    return ho, wo


def _eval_block_node(graph: Graph, node: Node, xs: list, conv_fn=None) -> np.ndarray:
    """A node on one block treated as a whole image (its borders padded like image borders)."""
    ins = [Available.whole(x) for x in xs]
    if isinstance(node, (Conv, Pool)):
        ho, wo = _block_out(node, xs[0].shape[1:])
        return eval_region(graph, node, ins, (0, ho, 0, wo), conv_fn)
    h, w = xs[0].shape[1:]
    return eval_region(graph, node, ins, (0, h, 0, w), conv_fn)


def run(graph: Graph, x: np.ndarray, plan: Plan | None = None, schedule: str = "layer",
        block: tuple | None = None, conv_fn=None, fc_fn=None, keep: bool = False, progress=None,
        conv_pool_fn=None):
    """Run ``graph`` on the int8 input map ``x`` under ``plan`` (or the default plan for
    ``schedule``/``block``).  Returns the int8 output, or every tensor when ``keep`` is set.

    ``conv_fn(node, x_padded, zx, zy) -> int8`` and ``fc_fn(node, x, zx, zy) -> int8`` replace the
    NumPy convolution / FC (used to run layers on the RTL engine with the same scheduling).
    ``conv_pool_fn(conv, pool, x_padded, zx, zy) -> int8 or None`` runs a convolution and the
    2×2/2 max-pool that alone consumes it as one layer (an engine with a fused output pool;
    None: not this shape, run them apart).  Ignored with ``keep`` (the convolution's map is
    never formed).
    """
    if keep:
        conv_pool_fn = None
    tin = graph.input_tensor
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise UserError(f"input must be int8, got {x.dtype}")
    if tuple(x.shape) != tuple(tin.shape):
        raise UserError(f"input shape {tuple(x.shape)} does not match the model's {tuple(tin.shape)}")
    plan = (plan or default_plan(graph, schedule, block)).check(graph)
    values = {graph.input: x}
    remaining = {}
    for n in graph.nodes:
        for i in n.inputs:
            remaining[i] = remaining.get(i, 0) + 1
    groups = list(plan.groups)
    fused_next = False                   # this group's pool was computed with the convolution
    for k, group in enumerate(groups):
        nodes = [graph.node(name) for name in group.nodes]
        spatial = all(n.spatial for n in nodes) and graph.tensors[nodes[0].inputs[0]].is_map
        whole = len(nodes) == 1 and (not spatial or group.block is None)
        if fused_next:
            fused_next = False
        elif whole:
            n = nodes[0]
            p = fusable_pool(graph, n) if conv_pool_fn is not None else None
            nxt = groups[k + 1] if k + 1 < len(groups) else None
            if p is not None and nxt is not None and list(nxt.nodes) == [p.name] \
                    and nxt.block is None:
                x = values[n.inputs[0]]
                _, ph, pw = graph.tensors[p.output].shape
                values[p.output] = eval_conv_pool(graph, n, p, [Available.whole(x)],
                                                  (0, ph, 0, pw), conv_pool_fn, conv_fn)
                fused_next = True
            else:
                values[n.output] = eval_whole(graph, n, [values[i] for i in n.inputs],
                                              conv_fn, fc_fn)
        elif not spatial:
            raise PlanError(f"group starting at {nodes[0].name} mixes block-wise and whole-map layers")
        elif plan.schedule == "block":
            run_group_block(graph, group, values, conv_fn, conv_pool_fn)
        else:
            run_group_fused(graph, group, values, conv_fn, conv_pool_fn)
        if not keep:
            for n in nodes:
                for i in n.inputs:
                    remaining[i] -= 1
                    if remaining[i] == 0 and i != graph.output:
                        values.pop(i, None)
        if progress is not None:
            progress(len(nodes))
    return values if keep else values[graph.output]
