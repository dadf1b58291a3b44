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

    def flatten(self, x):
        name = self._id("flatten")
        self.nodes.append(helper.make_node("Flatten", [x], [name], name=name, axis=1))
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


NETS = {"convs": net_convs, "mobile": net_mobile, "shuffle": net_shuffle, "head": net_head,
        "matmul": net_matmul, "flatfc": net_flat_fc, "onebyone": net_onebyone}


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
