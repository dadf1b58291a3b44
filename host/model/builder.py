"""Build quantised graphs in code (model zoo, tests) with deterministic int8 weights.

Weights are int8 from a seeded generator with a per-output-channel scale as He initialisation
would give; activation scales and zero points are then *calibrated* by running the golden model
layer by layer on a seeded smooth input, so activations use the int8 range the way a
post-training-quantised network does (ReLU outputs asymmetric with zero point −128, others
symmetric).  The result is an ordinary :class:`host.model.ir.Graph`.
"""
from __future__ import annotations

import numpy as np

from host.model.ir import (FC, Add, Clamp, Concat, Conv, Flatten, GlobalAvgPool, Graph, Permute, Pool,
                 Tensor, UnsupportedModel, shuffle_perm)
from host.model.quant import quantize_multipliers, relu_bounds, requantize

W_STD = 40.0          # std of the int8 weight codes


class GraphBuilder:
    def __init__(self, name: str, input_shape: tuple, seed: int = 0,
                 input_scale: float = 1.0 / 64, input_zero_point: int = 0):
        self.graph = Graph(name, "input", "input")
        self.graph.tensors["input"] = Tensor("input", tuple(input_shape), input_scale, input_zero_point)
        self.rng = np.random.default_rng(seed)
        self.acts = {}            # node name -> activation kind (for calibration)
        self._count = {}

    # ---- helpers ------------------------------------------------------------------------
    @property
    def input(self) -> str:
        return "input"

    def shape(self, t: str) -> tuple:
        return self.graph.tensors[t].shape

    def _name(self, op: str, name: str | None) -> str:
        if name:
            return name
        k = self._count.get(op, 0) + 1
        self._count[op] = k
        return f"{op}{k}"

    def _add(self, node, act=None, scale=None, zero_point=None):
        ins = [self.graph.tensors[i] for i in node.inputs]
        shape = node.infer(ins)
        s = ins[0].scale if scale is None else scale
        z = ins[0].zero_point if zero_point is None else zero_point
        self.graph.tensors[node.output] = Tensor(node.output, tuple(shape), s, z)
        self.graph.nodes.append(node)
        self.graph.output = node.output
        self.acts[node.name] = act
        return node.output

    def _weights(self, shape, fan_in):
        w = np.clip(np.rint(self.rng.normal(0, W_STD, size=shape)), -127, 127).astype(np.int8)
        w_scale = np.full(shape[0], np.sqrt(2.0 / fan_in) / W_STD) * self.rng.uniform(0.8, 1.2, shape[0])
        bias = np.rint(self.rng.normal(0, 0.2 * np.sqrt(fan_in) * 30 * W_STD, shape[0])).astype(np.int32)
        return w, w_scale, bias

    # ---- layers -------------------------------------------------------------------------
    def conv(self, x, out_ch, k, stride=1, pad=None, groups=1, act="relu", name=None):
        c = self.shape(x)[0]
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        if pad is None:
            pad = (kh // 2, kw // 2, kh // 2, kw // 2)
        elif isinstance(pad, int):
            pad = (pad, pad, pad, pad)
        if c % groups or out_ch % groups:
            raise UnsupportedModel(f"conv: {c}→{out_ch} channels not divisible by {groups} groups")
        w, ws, b = self._weights((out_ch, c // groups, kh, kw), c // groups * kh * kw)
        node = Conv(self._name("conv", name), [x], "", weight=w, bias=b, w_scale=ws,
                    stride=(sh, sw), pads=tuple(pad), groups=groups)
        node.output = node.name
        return self._add(node, act)

    def fc(self, x, out, act=None, name=None):
        n = self.shape(x)[0]
        w, ws, b = self._weights((out, n), n)
        node = FC(self._name("fc", name), [x], "", weight=w, bias=b, w_scale=ws)
        node.output = node.name
        return self._add(node, act)

    def maxpool(self, x, k=2, stride=None, pad=0, name=None):
        stride = stride or k
        node = Pool(self._name("maxpool", name), [x], "", kind="max", kernel=(k, k),
                    stride=(stride, stride), pads=(pad,) * 4)
        node.output = node.name
        return self._add(node)

    def avgpool(self, x, k=2, stride=None, pad=0, name=None):
        stride = stride or k
        node = Pool(self._name("avgpool", name), [x], "", kind="avg", kernel=(k, k),
                    stride=(stride, stride), pads=(pad,) * 4)
        node.output = node.name
        return self._add(node)

    def gap(self, x, name=None):
        node = GlobalAvgPool(self._name("gap", name), [x], "")
        node.output = node.name
        return self._add(node)

    def flatten(self, x, name=None):
        node = Flatten(self._name("flatten", name), [x], "")
        node.output = node.name
        return self._add(node)

    def add(self, a, b, act="relu", name=None):
        node = Add(self._name("add", name), [a, b], "")
        node.output = node.name
        return self._add(node, act)

    def concat(self, xs, name=None):
        node = Concat(self._name("concat", name), list(xs), "")
        node.output = node.name
        return self._add(node, "concat")

    def permute(self, x, perm, name=None):
        node = Permute(self._name("permute", name), [x], "", perm=np.asarray(perm))
        node.output = node.name
        return self._add(node)

    def shuffle(self, x, groups, name=None):
        return self.permute(x, shuffle_perm(self.shape(x)[0], groups), name=name or self._name("shuffle", None))

    def relu(self, x, name=None):
        t = self.graph.tensors[x]
        lo, hi = relu_bounds(t.zero_point, t.scale, "relu")
        node = Clamp(self._name("relu", name), [x], "", lo=lo, hi=hi)
        node.output = node.name
        return self._add(node, "relu")

    # ---- finishing ----------------------------------------------------------------------
    def build(self, calibrate: bool = True, sample: np.ndarray | None = None) -> Graph:
        g = self.graph.finalize()
        if calibrate:
            calibrate_graph(g, self.acts, sample if sample is not None else smooth_input(g, seed=1))
        return g


def smooth_input(graph: Graph, seed: int = 0) -> np.ndarray:
    """A seeded image-like int8 input: smooth random field plus a little noise."""
    rng = np.random.default_rng(seed)
    shape = graph.input_tensor.shape
    if len(shape) != 3:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    c, h, w = shape
    coarse = rng.normal(0, 1, size=(c, max(2, h // 8 + 2), max(2, w // 8 + 2)))
    yi = np.linspace(0, coarse.shape[1] - 1.001, h)
    xi = np.linspace(0, coarse.shape[2] - 1.001, w)
    y0, x0 = yi.astype(int), xi.astype(int)
    fy, fx = (yi - y0)[None, :, None], (xi - x0)[None, None, :]
    img = (coarse[:, y0][:, :, x0] * (1 - fy) * (1 - fx) + coarse[:, y0 + 1][:, :, x0] * fy * (1 - fx)
           + coarse[:, y0][:, :, x0 + 1] * (1 - fy) * fx + coarse[:, y0 + 1][:, :, x0 + 1] * fy * fx)
    img = img + 0.1 * rng.normal(0, 1, size=img.shape)
    return np.clip(np.rint(img * 40), -128, 127).astype(np.int8)


def calibrate_graph(g: Graph, acts: dict, x: np.ndarray, percentile: float = 99.99) -> None:
    """Choose each tensor's scale/zero point from the values it takes on ``x`` (golden model,
    layer by layer), then set clamp bounds and requantisation multipliers accordingly."""
    from host.runtime import golden

    values = {g.input: x}
    for n in g.nodes:
        tins = [g.tensors[i] for i in n.inputs]
        tout = g.tensors[n.output]
        act = acts.get(n.name)
        xs = [values[i] for i in n.inputs]
        out = None
        if isinstance(n, (Conv, FC)):
            if isinstance(n, Conv):
                t, l, b, r = n.pads
                xp = np.pad(xs[0], ((0, 0), (t, b), (l, r)), constant_values=tins[0].zero_point)
                acc = golden.conv_acc_padded(n.weight, xp, n.stride, n.groups)
                acc = acc + n.folded_bias(tins[0].zero_point)[:, None, None]
                real = acc * (tins[0].scale * n.w_scale)[:, None, None]
            else:
                acc = golden.fc_acc(n, xs[0], tins[0].zero_point)
                real = acc * tins[0].scale * n.w_scale
            _set_scale(tout, real, act, percentile)
            n.mult, n.shift = quantize_multipliers(tins[0].scale * n.w_scale / tout.scale)
            n.lo, n.hi = relu_bounds(tout.zero_point, tout.scale, act)
            # the output from the accumulators already at hand (what golden.eval_whole computes,
            # without convolving a second time)
            m, s = (n.mult[:, None, None], n.shift[:, None, None]) if isinstance(n, Conv) else (n.mult, n.shift)
            out = requantize(acc, m, s, tout.zero_point, n.lo, n.hi)
        elif isinstance(n, Add):
            real = sum((v.astype(np.float64) - t.zero_point) * t.scale for v, t in zip(xs, tins))
            _set_scale(tout, real, act, percentile)
            n.lo, n.hi = relu_bounds(tout.zero_point, tout.scale, act)
        elif isinstance(n, Concat):
            # common output scale: the coarsest input's; zero point from the joint range
            tout.scale = max(t.scale for t in tins)
            tout.zero_point = -128 if all(t.zero_point == -128 for t in tins) else 0
        else:
            # pooling, permutation, flatten and clamp keep their input's quantisation
            tout.scale, tout.zero_point = tins[0].scale, tins[0].zero_point
            if isinstance(n, Clamp):
                n.lo, n.hi = relu_bounds(tout.zero_point, tout.scale, act)
        values[n.output] = golden.eval_whole(g, n, xs) if out is None else out


def _set_scale(t: Tensor, real: np.ndarray, act, percentile: float) -> None:
    if act == "relu":
        top = float(np.percentile(np.maximum(real, 0), percentile))
        t.scale = max(top, 1e-6) / 255.0
        t.zero_point = -128
    else:
        top = float(np.percentile(np.abs(real), percentile))
        t.scale = max(top, 1e-6) / 127.0
        t.zero_point = 0
