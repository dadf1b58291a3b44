"""Write a blockfuse IR graph as a QDQ ONNX model (the form ``quantize_static`` produces).

Used to cross-check the golden model (and zoo networks) against ONNX Runtime and to let users
look at a network in ONNX tools.  Every IR tensor ``t`` becomes ``QuantizeLinear → t_q`` (int8,
or uint8 when ``graph.activation_dtype == "uint8"``) and ``DequantizeLinear → t`` (float);
every IR node reads the dequantised floats of its inputs:

* Conv / FC → ``Conv`` / ``Gemm(transB=1)`` on DequantizeLinear'd int8 weights (per output
  channel, axis 0) and int32 bias (scale s_x·s_w[c]); clamp bounds other than the full int8
  range become a ``Relu`` (lower bound = zero point) or a ``Clip`` before the output's Q;
* max/average pooling, global average pooling, add (+Relu/Clip), concat (axis 1), flatten;
* a channel permutation that is a shuffle → ``Reshape–Transpose–Reshape``; any other
  permutation → ``Gather(axis=1)``; a stand-alone clamp → ``Relu``/``Clip``.

ONNX stores scales as float32.  So that ``load_onnx(to_onnx(g))`` reproduces ``g``'s integers
(multipliers derive from the scales), the exact float64 scales are also stored in the model's
metadata under ``blockfuse.scales``; the importer uses them only where they round to the stored
float32 values.

Operators whose codes pass through unchanged (max pool, flatten, permute, clamp, channel slice,
global max pool) are written with
the output ``QuantizeLinear`` in the *input's* quantisation, and the ``DequantizeLinear`` in the
output tensor's: that is exactly what the golden model computes, even if a graph gives the two
tensors different scales.
"""
from __future__ import annotations

import json

import numpy as np

from host.model.ir import (FC, Add, ChannelSlice, Clamp, Concat, Conv, Flatten, GlobalAvgPool, GlobalMaxPool,
                 Graph, Permute, Pool, UnsupportedModel, shuffle_perm)
from host.model.onnx_import import SCALES_METADATA

OPSET = 17
PASS_THROUGH = (Flatten, Permute, Clamp, ChannelSlice, GlobalMaxPool)


def to_onnx(graph: Graph, opset: int = OPSET) -> "onnx.ModelProto":
    """The QDQ ONNX model of ``graph`` (finalised).  Input/output are float32 with a batch axis."""
    return _Exporter(graph, opset).run()


def save_onnx(graph: Graph, path) -> None:
    """Write :func:`to_onnx` of ``graph`` to ``path``."""
    import onnx

    onnx.save(to_onnx(graph), str(path))


class _Exporter:
    def __init__(self, graph: Graph, opset: int):
        from onnx import TensorProto

        self.g = graph
        self.opset = opset
        self.nodes, self.inits, self.exact = [], [], {}
        self.uint8 = getattr(graph, "activation_dtype", "int8") == "uint8"
        self.act_type = TensorProto.UINT8 if self.uint8 else TensorProto.INT8
        self.in_name = f"{graph.input}_float"
        self.out_name = f"{graph.output}_float"

    # ---- building blocks ------------------------------------------------------------------
    def _init(self, name: str, arr) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def _node(self, op: str, inputs: list, outputs: list, name: str, **attrs):
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

    def _qparams(self, tensor_name: str, like: str | None = None) -> tuple:
        """(scale, zero point) initializer names for IR tensor ``like or tensor_name``."""
        t = self.g.tensors[like or tensor_name]
        s_name, z_name = f"{t.name}_scale", f"{t.name}_zero_point"
        if not any(i.name == s_name for i in self.inits):
            self._init(s_name, np.float32(t.scale))
            self.exact[s_name] = float(t.scale)
            z = np.uint8(t.zero_point + 128) if self.uint8 else np.int8(t.zero_point)
            self._init(z_name, z)
        return s_name, z_name

    def _quantize(self, float_in: str, tensor: str, params_of: str | None = None):
        """float_in → Q (in ``params_of``'s quantisation) → ``tensor_q`` → DQ → ``tensor``."""
        s, z = self._qparams(tensor, params_of)
        self._node("QuantizeLinear", [float_in, s, z], [f"{tensor}_q"], f"{tensor}_quantize")
        s2, z2 = self._qparams(tensor)
        out = self.out_name if tensor == self.g.output else tensor
        self._node("DequantizeLinear", [f"{tensor}_q", s2, z2], [out], f"{tensor}_dequantize")

    def _activation(self, x: str, tensor: str, lo: int, hi: int, name: str) -> str:
        """Relu/Clip for clamp bounds [lo, hi] of ``tensor``'s codes (nothing for the full range)."""
        t = self.g.tensors[tensor]
        if lo <= -128 and hi >= 127:
            return x
        out = f"{name}_act"
        own = isinstance(self.g.node(name), Clamp)        # a stand-alone clamp keeps its name
        if lo == t.zero_point and hi >= 127:
            self._node("Relu", [x], [out], name if own else f"{name}_relu")
            return out
        cmin = self._init(f"{name}_min", np.float32((lo - t.zero_point) * t.scale)) if lo > -128 else ""
        cmax = self._init(f"{name}_max", np.float32((hi - t.zero_point) * t.scale)) if hi < 127 else ""
        self._node("Clip", [x, cmin, cmax], [out], name if own else f"{name}_clip")
        return out

    def _weights(self, n, w: np.ndarray, x_scale: float) -> tuple:
        """DequantizeLinear'd int8 weights (axis 0) and int32 bias; returns their float names."""
        o = w.shape[0]
        ws = np.asarray(n.w_scale, dtype=np.float64).reshape(o)
        self._init(f"{n.name}_w_q", w.astype(np.int8))
        self._init(f"{n.name}_w_scale", ws.astype(np.float32))
        self.exact[f"{n.name}_w_scale"] = ws.tolist()
        self._init(f"{n.name}_w_zero_point", np.zeros(o, np.int8))
        self._node("DequantizeLinear", [f"{n.name}_w_q", f"{n.name}_w_scale", f"{n.name}_w_zero_point"],
                   [f"{n.name}_w"], f"{n.name}_w_dequantize", axis=0)
        bs = x_scale * ws
        self._init(f"{n.name}_b_q", np.asarray(n.bias, dtype=np.int32).reshape(o))
        self._init(f"{n.name}_b_scale", bs.astype(np.float32))
        self.exact[f"{n.name}_b_scale"] = bs.tolist()
        self._init(f"{n.name}_b_zero_point", np.zeros(o, np.int32))
        self._node("DequantizeLinear", [f"{n.name}_b_q", f"{n.name}_b_scale", f"{n.name}_b_zero_point"],
                   [f"{n.name}_b"], f"{n.name}_b_dequantize", axis=0)
        return f"{n.name}_w", f"{n.name}_b"

    # ---- nodes ----------------------------------------------------------------------------
    def _emit(self, n):
        x = self.g.tensors[n.inputs[0]]
        f = f"{n.output}_f"
        if isinstance(n, Conv):
            w, b = self._weights(n, n.weight, x.scale)
            kh, kw = n.kernel
            self._node("Conv", [n.inputs[0], w, b], [f], n.name, kernel_shape=[kh, kw],
                       strides=list(n.stride), pads=list(n.pads), group=n.groups)
            f = self._activation(f, n.output, n.lo, n.hi, n.name)
        elif isinstance(n, FC):
            w, b = self._weights(n, n.weight, x.scale)
            self._node("Gemm", [self._as_matrix(n.inputs[0]), w, b], [f], n.name, transB=1)
            f = self._activation(f, n.output, n.lo, n.hi, n.name)
        elif isinstance(n, Pool):
            t, l, b, r = n.pads
            eb, er = n.ceil_extra
            attrs = dict(kernel_shape=list(n.kernel), strides=list(n.stride), pads=[t, l, b - eb, r - er])
            if eb or er:                    # the padding ceil_mode adds
                attrs["ceil_mode"] = 1
            if n.kind == "avg":
                attrs["count_include_pad"] = int(n.count_include_pad)
            self._node("MaxPool" if n.kind == "max" else "AveragePool", [n.inputs[0]], [f], n.name, **attrs)
            if n.kind == "max":
                return self._quantize(f, n.output, params_of=n.inputs[0])
        elif isinstance(n, GlobalAvgPool):
            self._node("GlobalAveragePool", [n.inputs[0]], [f], n.name)
        elif isinstance(n, GlobalMaxPool):
            self._node("GlobalMaxPool", [n.inputs[0]], [f], n.name)
        elif isinstance(n, ChannelSlice):
            bounds = [self._init(f"{n.name}_{k}", np.array([v], np.int64))
                      for k, v in (("starts", n.start), ("ends", n.stop), ("axes", 1))]
            self._node("Slice", [n.inputs[0], *bounds], [f], n.name)
        elif isinstance(n, Add):
            self._node("Add", list(n.inputs), [f], n.name)
            f = self._activation(f, n.output, n.lo, n.hi, n.name)
        elif isinstance(n, Concat):
            self._node("Concat", list(n.inputs), [f], n.name, axis=1)
        elif isinstance(n, Flatten):
            self._node("Flatten", [n.inputs[0]], [f], n.name, axis=1)
        elif isinstance(n, Permute):
            return self._permute(n)
        elif isinstance(n, Clamp):
            f = self._activation(n.inputs[0], n.inputs[0], n.lo, n.hi, n.name)
            if f == n.inputs[0]:
                self._node("Identity", [f], [f"{n.output}_f"], n.name)
                f = f"{n.output}_f"
        else:
            raise UnsupportedModel(f"{n.name}: {n.op} cannot be written as ONNX")
        self._quantize(f, n.output, params_of=n.inputs[0] if isinstance(n, PASS_THROUGH) else None)

    def _as_matrix(self, tensor: str) -> str:
        """FC inputs are (N,) vectors in the IR and (1, N) in ONNX — already so after Flatten;
        a map (C, 1, 1) is flattened here."""
        if self.g.tensors[tensor].is_map:
            self._node("Flatten", [tensor], [f"{tensor}_flat"], f"{tensor}_flatten", axis=1)
            return f"{tensor}_flat"
        return tensor

    def _permute(self, n: Permute):
        c, h, w = self.g.tensors[n.inputs[0]].shape
        perm = np.asarray(n.perm)
        groups = next((g for g in range(2, c) if c % g == 0 and np.array_equal(perm, shuffle_perm(c, g))), None)
        if groups is None:
            idx = self._init(f"{n.name}_indices", perm.astype(np.int64))
            self._node("Gather", [n.inputs[0], idx], [f"{n.output}_f"], n.name, axis=1)
            return self._quantize(f"{n.output}_f", n.output, params_of=n.inputs[0])
        # as quantize_static writes it: every step between Q/DQ in the input's quantisation
        src = n.inputs[0]
        s1 = self._init(f"{n.name}_shape1", np.array([1, groups, c // groups, h, w], np.int64))
        s2 = self._init(f"{n.name}_shape2", np.array([1, c, h, w], np.int64))
        steps = [("Reshape", [s1], {}, f"{n.name}_reshape1"),
                 ("Transpose", [], {"perm": [0, 2, 1, 3, 4]}, f"{n.name}_transpose"),
                 ("Reshape", [s2], {}, n.name)]
        for k, (op, extra, attrs, name) in enumerate(steps):
            self._node(op, [src] + extra, [f"{name}_f"], name, **attrs)
            if k < 2:
                s, z = self._qparams(n.inputs[0])
                self._node("QuantizeLinear", [f"{name}_f", s, z], [f"{name}_q"], f"{name}_quantize")
                self._node("DequantizeLinear", [f"{name}_q", s, z], [f"{name}_dq"], f"{name}_dequantize")
                src = f"{name}_dq"
        self._quantize(f"{n.name}_f", n.output, params_of=n.inputs[0])

    # ---- whole model ----------------------------------------------------------------------
    def run(self):
        import onnx
        from onnx import TensorProto, helper

        g = self.g
        tin, tout = g.input_tensor, g.output_tensor
        self._quantize(self.in_name, g.input)
        if g.input == g.output:
            raise UnsupportedModel("a graph without nodes cannot be written as ONNX")
        for n in g.nodes:
            self._emit(n)
        graph = helper.make_graph(
            self.nodes, g.name,
            [helper.make_tensor_value_info(self.in_name, TensorProto.FLOAT, (1,) + tuple(tin.shape))],
            [helper.make_tensor_value_info(self.out_name, TensorProto.FLOAT, (1,) + tuple(tout.shape))],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="blockfuse")
        model.ir_version = 8
        helper.set_model_props(model, {SCALES_METADATA: json.dumps(self.exact)})
        onnx.checker.check_model(model)
        return model
