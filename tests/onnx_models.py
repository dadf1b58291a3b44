"""Float ONNX test networks built with ``onnx.helper`` and quantised by ``quantize_static``.

Shared by the ONNX import, ONNX Runtime cross-check and CLI tests.  Everything is seeded: the
same arguments give the same model bytes.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class _Net:
    """Tiny helper to append float layers with seeded weights to an ONNX graph."""

    def __init__(self, name: str, input_shape: tuple, seed: int = 0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.input_shape = tuple(input_shape)
        self.shapes = {"x": tuple(input_shape)}
        self._n = 0

    def _id(self, op: str) -> str:
        self._n += 1
        return f"{op.lower()}_{self._n}"

    def _const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def conv(self, x, cout, k, stride=1, pad=None, groups=1, act=None):
        c, h, w = self.shapes[x][1:]
        kh, kw = (k, k) if isinstance(k, int) else k
        pad = (kh // 2, kw // 2, kh // 2, kw // 2) if pad is None else pad
        name = self._id("conv")
        fan = c // groups * kh * kw
        wt = self.rng.normal(0, np.sqrt(2.0 / fan), (cout, c // groups, kh, kw)).astype(np.float32)
        b = self.rng.normal(0, 0.1, cout).astype(np.float32)
        self.nodes.append(helper.make_node(
            "Conv", [x, self._const(name + "_w", wt), self._const(name + "_b", b)], [name], name=name,
            kernel_shape=[kh, kw], strides=[stride, stride], pads=[pad[0], pad[1], pad[2], pad[3]],
            group=groups))
        ho = (h + pad[0] + pad[2] - kh) // stride + 1
        wo = (w + pad[1] + pad[3] - kw) // stride + 1
        self.shapes[name] = (1, cout, ho, wo)
        return self.act(name, act)

    def act(self, x, act):
        if act is None:
            return x
        name = self._id(act)
        if act == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [name], name=name))
        elif act == "relu6":
            lo = self._const(name + "_lo", np.array(0.0, np.float32))
            hi = self._const(name + "_hi", np.array(6.0, np.float32))
            self.nodes.append(helper.make_node("Clip", [x, lo, hi], [name], name=name))
        else:
            raise ValueError(act)
        self.shapes[name] = self.shapes[x]
        return name

    def pool(self, x, kind="max", k=2, stride=2, pad=0, count_include_pad=0):
        n, c, h, w = self.shapes[x]
        name = self._id(kind + "pool")
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        if kind == "avg":
            attrs["count_include_pad"] = count_include_pad
        self.nodes.append(helper.make_node("MaxPool" if kind == "max" else "AveragePool", [x], [name],
                                           name=name, **attrs))
        self.shapes[name] = (n, c, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        return name

    def gap(self, x):
        name = self._id("gap")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [name], name=name))
        self.shapes[name] = self.shapes[x][:2] + (1, 1)
        return name

    def add(self, a, b, act=None):
        name = self._id("add")
        self.nodes.append(helper.make_node("Add", [a, b], [name], name=name))
        self.shapes[name] = self.shapes[a]
        return self.act(name, act)

    def concat(self, xs):
        name = self._id("concat")
        self.nodes.append(helper.make_node("Concat", list(xs), [name], name=name, axis=1))
        s = self.shapes[xs[0]]
        self.shapes[name] = (s[0], sum(self.shapes[x][1] for x in xs), s[2], s[3])
        return name

    def shuffle(self, x, groups):
        n, c, h, w = self.shapes[x]
        name = self._id("shuffle")
        s1 = self._const(name + "_s1", np.array([n, groups, c // groups, h, w], np.int64))
        s2 = self._const(name + "_s2", np.array([n, c, h, w], np.int64))
        self.nodes += [
            helper.make_node("Reshape", [x, s1], [name + "_r"], name=name + "_reshape1"),
            helper.make_node("Transpose", [name + "_r"], [name + "_t"], name=name + "_transpose",
                             perm=[0, 2, 1, 3, 4]),
            helper.make_node("Reshape", [name + "_t", s2], [name], name=name + "_reshape2"),
        ]
        self.shapes[name] = (n, c, h, w)
        return name

    # ---- PyTorch export patterns: shapes computed at run time, channel split, pooling -------
    def _op(self, op, inputs, shape=None, **attrs):
        name = self._id(op)
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        if shape is not None:
            self.shapes[name] = tuple(shape)
        return name

    def dims(self, x):
        """(n, c, h, w) as 1-element int64 tensors, as PyTorch exports ``x.size(i)``:
        Shape → Gather → Unsqueeze."""
        s = self._op("Shape", [x])
        axes = self._const(self._id("axes"), np.array([0], np.int64))
        return [self._op("Unsqueeze", [self._op("Gather", [s, self._const(self._id("i"), np.array(i, np.int64))],
                                                axis=0), axes]) for i in range(4)]

    def shuffle_computed(self, x, groups, flat_spatial=False):
        """``x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, -1, h, w)`` with computed
        shapes (Div, Cast, Mul); ``flat_spatial`` views h·w as one axis."""
        n, c, h, w = self.dims(x)
        g = self._const(self._id("g"), np.array([groups], np.int64))
        cg = self._op("Cast", [self._op("Div", [self._op("Cast", [c], to=TensorProto.FLOAT),
                                                self._op("Cast", [g], to=TensorProto.FLOAT)])],
                      to=TensorProto.INT64)
        sp = [self._op("Mul", [h, w])] if flat_spatial else [h, w]
        r = self._op("Reshape", [x, self._op("Concat", [n, g, cg, *sp], axis=0)])
        t = self._op("Transpose", [r], perm=[0, 2, 1] + list(range(3, 3 + len(sp))))
        minus1 = self._const(self._id("m1"), np.array([-1], np.int64))
        y = self._op("Reshape", [t, self._op("Concat", [n, minus1, h, w], axis=0)])
        self.shapes[y] = self.shapes[x]
        return y

    def split(self, x, parts, sizes_input=True):
        """``x.chunk(parts, dim=1)`` as Split (sizes as an input, or equal parts)."""
        n, c, h, w = self.shapes[x]
        name = self._id("split")
        outs = [f"{name}_{i}" for i in range(parts)]
        ins = [x, self._const(name + "_sizes", np.full(parts, c // parts, np.int64))] if sizes_input else [x]
        self.nodes.append(helper.make_node("Split", ins, outs, name=name, axis=1))
        for o in outs:
            self.shapes[o] = (n, c // parts, h, w)
        return outs

    def halves_sliced(self, x):
        """``x[:, :c // 2]`` and ``x[:, c // 2:]`` as Slice with bounds computed from the shape."""
        n, c, h, w = self.shapes[x]
        _, cc, _, _ = self.dims(x)
        half = self._op("Div", [cc, self._const(self._id("two"), np.array([2], np.int64))])
        zero = self._const(self._id("zero"), np.array([0], np.int64))
        one = self._const(self._id("ax"), np.array([1], np.int64))
        big = self._const(self._id("end"), np.array([2**63 - 1], np.int64))
        a = self._op("Slice", [x, zero, self._op("Add", [half, zero]), one], shape=(n, c // 2, h, w))
        b = self._op("Slice", [x, self._op("Sub", [cc, self._op("Sub", [cc, half])]), big, one],
                     shape=(n, c - c // 2, h, w))
        return a, b

    def pool_ceil(self, x, kind, k, stride, pad=0, count_include_pad=0):
        """Max/average pooling with ``ceil_mode=1`` (ONNX's size rule, incl. the dropped last
        window that would start in the padding)."""
        n, c, h, w = self.shapes[x]
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, ceil_mode=1)
        if kind == "avg":
            attrs["count_include_pad"] = count_include_pad

        def size(d):
            o = -(-(d + 2 * pad - k) // stride) + 1
            return o - 1 if (o - 1) * stride >= d + pad else o
        return self._op("MaxPool" if kind == "max" else "AveragePool", [x], (n, c, size(h), size(w)), **attrs)

    def reduce_mean(self, x, keepdims):
        n, c = self.shapes[x][:2]
        return self._op("ReduceMean", [x], (n, c, 1, 1) if keepdims else (n, c), axes=[2, 3],
                        keepdims=keepdims)

    def passthrough(self, x, op, **attrs):
        """Identity / Dropout (inference) / GlobalMaxPool / Squeeze: shape as ONNX defines it."""
        n, c, *hw = self.shapes[x]
        if op == "GlobalMaxPool":
            shape = (n, c, 1, 1)
        elif op == "Squeeze":
            shape = (n, c)
            return self._op("Squeeze", [x, self._const(self._id("axes"), np.array([2, 3], np.int64))], shape)
        else:
            shape = self.shapes[x]
        return self._op(op, [x], shape, **attrs)

    def view_batch_flat(self, x):
        """``x.view(x.size(0), -1)``: Reshape to (N, −1) with N taken from the shape."""
        n, *_ = self.dims(x)
        minus1 = self._const(self._id("m1"), np.array([-1], np.int64))
        s = self.shapes[x]
        return self._op("Reshape", [x, self._op("Concat", [n, minus1], axis=0)],
                        (s[0], int(np.prod(s[1:]))))

    def flatten(self, x, axis=1):
        name = self._id("flatten")
        self.nodes.append(helper.make_node("Flatten", [x], [name], name=name, axis=axis))
        s = self.shapes[x]
        self.shapes[name] = (s[0], int(np.prod(s[1:])))
        return name

    def gemm(self, x, out, act=None):
        n, i = self.shapes[x]
        name = self._id("gemm")
        wt = self.rng.normal(0, np.sqrt(1.0 / i), (out, i)).astype(np.float32)
        b = self.rng.normal(0, 0.1, out).astype(np.float32)
        self.nodes.append(helper.make_node(
            "Gemm", [x, self._const(name + "_w", wt), self._const(name + "_b", b)], [name], name=name,
            transB=1))
        self.shapes[name] = (n, out)
        return self.act(name, act)

    def matmul(self, x, out):
        n, i = self.shapes[x]
        name = self._id("matmul")
        wt = self.rng.normal(0, np.sqrt(1.0 / i), (i, out)).astype(np.float32)
        self.nodes.append(helper.make_node("MatMul", [x, self._const(name + "_w", wt)], [name], name=name))
        self.shapes[name] = (n, out)
        return name

    def model(self, out: str, batch: int | str = 1) -> onnx.ModelProto:
        ishape = (batch,) + self.input_shape[1:]
        oshape = (batch,) + self.shapes[out][1:]
        g = helper.make_graph(self.nodes, self.name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ishape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, oshape)],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------

def net_convs(seed=0, size=12):
    """Conv stack: 5×5 stride 2, 3×3, 1×1, 11×11, ReLU/ReLU6 present, max pool."""
    n = _Net("convs", (1, 3, size, size), seed)
    x = n.conv("x", 8, 5, stride=2, act="relu")
    x = n.conv(x, 8, 3, act="relu6")
    x = n.conv(x, 6, 1, act=None)
    x = n.pool(x, "max", 2, 2)
    x = n.conv(x, 5, 11, pad=(5, 5, 5, 5), act="relu")
    return n.model(x)


def net_mobile(seed=0, size=10):
    """Depthwise separable blocks, average pooling with and without counted padding."""
    n = _Net("mobile", (1, 4, size, size), seed)
    x = n.conv("x", 8, 3, stride=2, act="relu")
    x = n.conv(x, 8, 3, groups=8, act="relu")
    x = n.conv(x, 16, 1, act="relu6")
    x = n.pool(x, "avg", 3, 1, pad=1, count_include_pad=0)
    x = n.conv(x, 16, 3, stride=2, groups=16, act="relu")
    x = n.pool(x, "avg", 2, 1, pad=1, count_include_pad=1)
    return n.model(x)


def net_shuffle(seed=0, size=9):
    """Group conv + channel shuffle (Reshape–Transpose–Reshape), residual add, concat."""
    n = _Net("shuffle", (1, 6, size, size), seed)
    x0 = n.conv("x", 12, 3, act="relu")
    x = n.conv(x0, 12, 1, groups=3, act="relu")
    x = n.shuffle(x, 3)
    x = n.conv(x, 12, 3, groups=12, act=None)
    x = n.conv(x, 12, 1, groups=3, act=None)
    a = n.add(x, x0, act="relu")
    p = n.pool(a, "avg", 3, 2, pad=1)
    q = n.conv(a, 6, 3, stride=2, act="relu")
    x = n.concat([p, q])
    return n.model(x)


def net_head(seed=0, size=8, head="gemm"):
    """Conv, global average pool, Flatten, Gemm (transB) or MatMul classifier head."""
    n = _Net("head", (1, 3, size, size), seed)
    x = n.conv("x", 16, 3, stride=1, act="relu")
    x = n.conv(x, 24, 3, stride=2, act="relu")
    x = n.gap(x)
    x = n.flatten(x)
    if head == "gemm":
        x = n.gemm(x, 20, act="relu")
        x = n.gemm(x, 10)
    else:
        x = n.matmul(x, 10)
    return n.model(x)


def net_flat_fc(seed=0, size=6):
    """Conv → max pool → Flatten of a whole map → Gemm (VGG-style head)."""
    n = _Net("flatfc", (1, 2, size, size), seed)
    x = n.conv("x", 4, 3, act="relu")
    x = n.pool(x, "max", 2, 2)
    x = n.flatten(x)
    x = n.gemm(x, 7)
    return n.model(x)


def net_onebyone(seed=0):
    """Convolutions on 1×1 maps: a 1×1 input, a padded 3×3 and a 1×1 conv, then a Gemm."""
    n = _Net("onebyone", (1, 5, 1, 1), seed)
    x = n.conv("x", 8, 3, act="relu")
    x = n.conv(x, 6, 1, act=None)
    x = n.flatten(x)
    x = n.gemm(x, 4)
    return n.model(x)


def net_matmul(seed=0, size=8):
    """As :func:`net_head` with a MatMul (no bias) classifier."""
    return net_head(seed, size, head="matmul")


def net_shufflev2(seed=0, size=32):
    """ShuffleNetV2 units as PyTorch exports them: ``chunk`` as Split (sizes input, or equal
    parts) and as Slice with computed bounds, channel shuffles with computed view shapes,
    ``x.mean([2, 3])`` (ReduceMean without keepdims) before the classifier."""
    n = _Net("shufflev2", (1, 3, size, size), seed)
    x = n.conv("x", 8, 3, stride=2, act="relu")
    b1 = n.conv(n.conv(x, 8, 3, stride=2, groups=8), 8, 1, act="relu")
    b2 = n.conv(n.conv(n.conv(x, 8, 1, act="relu"), 8, 3, stride=2, groups=8), 8, 1, act="relu")
    x = n.shuffle_computed(n.concat([b1, b2]), 2)
    for k, halves in enumerate([lambda t: n.split(t, 2), lambda t: n.split(t, 2, sizes_input=False),
                                n.halves_sliced]):
        a, b = halves(x)
        b = n.conv(n.conv(n.conv(b, 8, 1, act="relu"), 8, 3, groups=8), 8, 1, act="relu")
        x = n.shuffle_computed(n.concat([a, b]), 2, flat_spatial=k == 1)
    x = n.conv(x, 24, 1, act="relu")
    return n.model(n.gemm(n.reduce_mean(x, keepdims=0), 10))


def net_inception(seed=0, size=16):
    """GoogLeNet-style: ``ceil_mode`` max pools (one changing the size, one whose last window
    would start in the padding), an inception block, ``ceil_mode`` average pools counting the
    padding and not, global average pool, ``x.view(x.size(0), -1)``, Dropout, Gemm."""
    n = _Net("inception", (1, 3, size, size), seed)
    x = n.conv("x", 8, 3, act="relu")
    x = n.pool_ceil(x, "max", 3, 2)
    b1 = n.conv(x, 4, 1, act="relu")
    b2 = n.conv(n.conv(x, 4, 1, act="relu"), 6, 3, act="relu")
    b3 = n.conv(n.conv(x, 2, 1, act="relu"), 4, 5, act="relu")
    b4 = n.conv(n.pool_ceil(x, "max", 3, 1, pad=1), 4, 1, act="relu")
    x = n.concat([b1, b2, b3, b4])
    p = n.conv(n.pool_ceil(x, "max", 3, 3, pad=1), 8, 1, act="relu")
    q = n.pool_ceil(n.pool_ceil(x, "avg", 3, 2, pad=1), "avg", 2, 2)
    # (ONNX shape inference misses the dropped window: p's branches meet after the global pool)
    x = n.concat([n.gap(p), n.gap(n.conv(q, 8, 1, act="relu"))])
    x = n.passthrough(n.view_batch_flat(x), "Dropout")
    return n.model(n.gemm(x, 10))


def net_heads(seed=0, size=10):
    """A channel permutation through a 6-D view with computed spatial sizes, Identity, global
    max pool beside ReduceMean with keepdims, Squeeze to (N, C), MatMul."""
    n = _Net("heads", (1, 4, size, size), seed)
    x = n.passthrough(n.conv("x", 12, 3, stride=2, act="relu"), "Identity")
    shape = n.shapes[x]
    nn, c, h, w = n.dims(x)
    factors = n._const(n._id("f"), np.array([2, 3, 2], np.int64))
    v = n._op("Reshape", [x, n._op("Concat", [nn, factors, h, w], axis=0)])
    t = n._op("Transpose", [v], perm=[0, 3, 1, 2, 4, 5])
    x = n._op("Reshape", [t, n._op("Concat", [nn, c, h, w], axis=0)], shape)
    x = n.conv(x, 12, 3, groups=12, act="relu6")
    x = n.concat([n.passthrough(x, "GlobalMaxPool"), n.reduce_mean(x, keepdims=1)])
    return n.model(n.matmul(n.passthrough(x, "Squeeze"), 10))


NETS = {"convs": net_convs, "mobile": net_mobile, "shuffle": net_shuffle, "head": net_head,
        "matmul": net_matmul, "flatfc": net_flat_fc, "onebyone": net_onebyone,
        "shufflev2": net_shufflev2, "inception": net_inception, "heads": net_heads}


# ---------------------------------------------------------------------------------------------
# Quantisation
# ---------------------------------------------------------------------------------------------

def calibration_data(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, shape).astype(np.float32) for _ in range(n)]


def quantize(model: onnx.ModelProto, act: str = "int8", seed: int = 0, tmpdir=None,
             op_types=None, per_channel: bool = True, extra_options=None) -> onnx.ModelProto:
    """QDQ-quantise ``model`` with ``quantize_static`` (per-channel int8 weights, int8/uint8
    activations) calibrated on seeded random inputs; returns the quantised ModelProto.
    ``op_types`` restricts the operator types quantised (e.g. leave Relu in float)."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    shape = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration_data(shape, seed=seed))

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {model.graph.input[0].name: x}

    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        src, dst = Path(d) / "float.onnx", Path(d) / "q.onnx"
        onnx.save(model, src)
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QInt8 if act == "int8" else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=op_types,
                        extra_options=extra_options)
        return onnx.load(str(dst))
