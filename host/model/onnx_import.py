"""Import quantised ONNX models in QDQ form into the blockfuse IR (:mod:`host.model.ir`).

Supported input: models as written by ``onnxruntime.quantization.quantize_static`` with
``QuantFormat.QDQ`` — every quantised operator sits between ``DequantizeLinear`` nodes (its
activation inputs and constant weights/bias) and a ``QuantizeLinear`` (its output):

    x ─Q─DQ─┐
    W ──────DQ─ Conv ─[Relu|Clip]─ Q ─ DQ ─ …
    b ──────DQ─┘

The importer walks the nodes in topological order and tracks what every ONNX tensor *is*:

* an int8/uint8 activation (output of ``QuantizeLinear``) or its dequantised float copy — both
  map to one IR :class:`~host.model.ir.Tensor`;
* a dequantised constant (weights: int8, symmetric, per output channel; bias: int32 on the scale
  ``s_x·s_w[c]``);
* the float result of an operator still waiting for its ``QuantizeLinear`` (a *pending* node:
  the IR node is created once the output scale and zero point are known, with any Relu/Clip in
  between folded into its clamp bounds);
* an intermediate *view* of a map inside a channel permutation (Reshape–Transpose–Reshape):
  its channels split into factors, maybe reordered.

Shape arithmetic on the static input shape (``Shape → Gather → … → Reshape``, as PyTorch
exports ``x.view(n, g, c // g, h, w)``) is folded to constants first (:mod:`host.model.onnx_fold`).

uint8 activations are converted exactly to int8 (value − 128, zero point − 128, `docs/numerics.md`):
``QuantizeLinear`` to uint8 then −128 equals quantising to int8 with the zero point − 128, so the
float input/output conversions of :func:`input_quant`/:func:`output_dequant` are the model's own.
The graph remembers the original type in ``graph.activation_dtype`` (``"int8"``/``"uint8"``),
the ONNX input/output names in ``graph.onnx_io`` and, per IR tensor, the ONNX QuantizeLinear
output holding its codes in ``graph.onnx_names`` (used for layer-by-layer cross-checks).

Anything outside the supported set raises :class:`~host.model.ir.UnsupportedModel` with one line
naming the node, e.g. ``node 'conv_7' (Conv): dilations [2, 2] are not supported``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from host.errors import UserError
from host.model.ir import (FC, Add, ChannelSlice, Clamp, Concat, Conv, Flatten, GlobalAvgPool, GlobalMaxPool,
                 Graph, Permute, Pool, Tensor, UnsupportedModel)
from host.model.onnx_fold import FOLDABLE, evaluate_static, fold_static_shapes, shape_value
from host.model.quant import dequantize, quantize_float, relu_bounds

#: metadata key under which :mod:`host.model.onnx_export` stores the exact (float64) scales
SCALES_METADATA = "blockfuse.scales"

ACT_TYPES = {3: "int8", 2: "uint8"}          # onnx.TensorProto.INT8 / UINT8
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")   # also accepted from ORT's com.microsoft domain


# ---------------------------------------------------------------------------------------------
# Values the importer tracks per ONNX tensor name
# ---------------------------------------------------------------------------------------------

@dataclass
class Act:
    """An IR activation tensor (the int8 codes, or their dequantised float copy)."""
    ir: str


@dataclass
class ConstQ:
    """A dequantised constant: ``(q − zero_point) · scale`` along ``axis`` (None: per tensor)."""
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None

    def real(self) -> np.ndarray:
        shape = [1] * self.q.ndim
        if self.axis is not None and self.scale.size > 1:
            shape[self.axis] = -1
        s = self.scale.astype(np.float64).reshape(shape if self.scale.size > 1 else ())
        z = self.zero_point.astype(np.int64).reshape(shape if self.zero_point.size > 1 else ())
        return (self.q.astype(np.int64) - z) * s


@dataclass
class View:
    """Map ``ir`` seen as (1, *factors, *spatial): its C channels reshaped into factors, maybe
    transposed.  ``index`` (the factors' shape, in their current order) holds the source channel
    at each position; ``spatial`` (product H·W) is never reordered."""
    ir: str
    index: np.ndarray
    spatial: tuple

    @property
    def shape(self) -> tuple:
        return (1,) + tuple(self.index.shape) + tuple(self.spatial)


@dataclass
class Padded:
    """Map ``ir`` padded with its zero point (a constant-0 ``Pad``): folded into the next Conv."""
    ir: str
    pads: tuple             # top, left, bottom, right


@dataclass
class Pending:
    """The float output of an operator awaiting its QuantizeLinear.

    ``build(out_name, scale, zero_point)`` creates the IR node(s) once the output quantisation is
    known; ``clips`` collects Relu/Clip bounds (real values) applied before quantisation.
    """
    onnx_node: object
    build: object
    clips: list = field(default_factory=list)
    realized: tuple | None = None          # (scale, zero_point, ir name) once quantised
    source: str | None = None              # pass-through ops: the IR tensor whose codes they move


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def load_onnx(src, fold_clamps: bool = True) -> Graph:
    """Load a QDQ-quantised ONNX model (path or ``onnx.ModelProto``) as a finalised IR graph.

    ``fold_clamps`` folds a stand-alone Relu/Clip that directly follows a convolution, FC or add
    (same quantisation, sole consumer) into that node's clamp bounds.
    """
    model = _read_model(src)
    folded_shapes: dict = {}
    model = fold_static_shapes(model, folded_shapes)
    graph = _Importer(model, folded_shapes).run()
    if fold_clamps:
        fold_clamps_into_producers(graph)
    return graph.finalize()


def input_quant(graph: Graph, x) -> np.ndarray:
    """Float input (N, C, H, W) or (C, H, W) → int8 codes (N, C, H, W), as the model's first
    QuantizeLinear would produce them (for uint8 models: its codes − 128)."""
    t = graph.input_tensor
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"input must be floating point (float32 NCHW), got dtype {x.dtype}")
    if x.ndim == len(t.shape):
        x = x[None]
    if x.ndim != len(t.shape) + 1 or tuple(x.shape[1:]) != tuple(t.shape):
        raise UserError(f"input shape {tuple(x.shape)} does not match the model's "
                        f"(N, {', '.join(map(str, t.shape))})")
    return quantize_float(x.astype(np.float32), t.scale, t.zero_point)


def output_dequant(graph: Graph, y) -> np.ndarray:
    """int8 output codes (N, *shape) or (*shape) → float32 (N, *shape) as ONNX Runtime outputs
    them after the model's last DequantizeLinear (or, for a model whose output is the int8/uint8
    QuantizeLinear result itself, those codes as float32)."""
    t = graph.output_tensor
    y = np.asarray(y)
    if y.ndim == len(t.shape):
        y = y[None]
    shape = (y.shape[0],) + tuple(t.shape)
    codes = getattr(graph, "output_codes", None)
    if codes is not None:      # the model outputs its QuantizeLinear's codes: so does ORT
        return (y.astype(np.float32) + (128 if codes == "uint8" else 0)).reshape(shape)
    return dequantize(y, t.scale, t.zero_point).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Reading and validating the file
# ---------------------------------------------------------------------------------------------

def _read_model(src):
    import onnx

    if isinstance(src, onnx.ModelProto):
        model = src
    else:
        path = os.fspath(src)
        if not os.path.exists(path):
            raise UserError(f"model file {path!r} does not exist")
        if os.path.isdir(path):
            raise UserError(f"model path {path!r} is a directory, not an ONNX file")
        try:
            model = onnx.load(path)
        except Exception as e:          # protobuf DecodeError, external data errors, …
            raise UserError(f"cannot read ONNX model {path!r}: {_one_line(e) or 'not a valid ONNX file'}")
        if not model.graph.node:
            raise UserError(f"{path!r} is not a valid ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise UserError(f"invalid ONNX model: {_one_line(e)}")
    return model


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300]


def _node_desc(node) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


def _fail(node, msg: str):
    raise UnsupportedModel(f"{_node_desc(node)}: {msg}")


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _check_attrs(node, attrs: dict, allowed: set):
    extra = sorted(set(attrs) - allowed)
    if extra:
        _fail(node, f"attribute {extra[0]!r} is not supported")


# ---------------------------------------------------------------------------------------------
# The importer
# ---------------------------------------------------------------------------------------------

class _Importer:
    def __init__(self, model, folded_shapes: dict | None = None):
        from onnx import numpy_helper

        self.model = model
        self.folded_shapes = folded_shapes or {}   # tensor -> (Shape node, shape it was folded to)
        self.g = model.graph
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.exact = self._exact_scales(model)
        self.values: dict = {}          # onnx tensor name -> Act | ConstQ | View | Pending
        self.graph: Graph | None = None
        self.names: dict = {}
        self.act_dtypes: set = set()
        self.onnx_names: dict = {}      # IR tensor -> ONNX QuantizeLinear output holding its codes
        self.passthrough: set = set()   # IR tensors written by max pool/flatten/permute/clamp
        self.dequantised: set = set()   # IR tensors already read through a DequantizeLinear
        self.uses: dict = {}
        for n in self.g.node:
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for o in self.g.output:
            self.uses[o.name] = self.uses.get(o.name, 0) + 1

    # ---- entry ------------------------------------------------------------------------------
    def run(self) -> Graph:
        opsets = {o.domain: o.version for o in self.model.opset_import}
        inputs = [i for i in self.g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise UnsupportedModel(f"model must have exactly one input, it has {len(inputs)}")
        if len(self.g.output) != 1:
            raise UnsupportedModel(f"model must have exactly one output, it has {len(self.g.output)}")
        self.q_outputs: dict = {}       # ONNX QuantizeLinear output -> "int8" | "uint8"
        self.in_name = inputs[0].name
        self.in_shape = self._input_shape(inputs[0])
        self.graph = Graph(self.g.name or "onnx", "", "")
        for node in self.g.node:
            contrib_qdq = node.domain == "com.microsoft" and node.op_type in QDQ_OPS
            if node.domain not in ("", "ai.onnx") and not contrib_qdq:
                _fail(node, f"operator domain {node.domain!r} is not supported")
            if self._fold(node):
                continue
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                hint = " (quantise in QDQ format: quant_format=QuantFormat.QDQ)" \
                    if node.op_type.startswith("QLinear") or node.op_type.endswith("Integer") else ""
                _fail(node, f"operator {node.op_type} is not supported{hint}")
            for i in node.input:
                if i and i not in self.values and i not in self.consts and i != self.in_name:
                    _fail(node, f"input {i!r} is not produced by an earlier node")
            try:
                handler(node)
            except UserError:
                raise
            except Exception as e:          # malformed attribute/initializer the checks missed
                _fail(node, f"cannot be imported ({type(e).__name__}: {_one_line(e)})")
        self._set_output(self.g.output[0].name)
        self._check_folded_shapes()
        self.graph.activation_dtype = "uint8" if self.act_dtypes == {"uint8"} else "int8"
        if len(self.act_dtypes) > 1:
            self.graph.activation_dtype = "mixed"
        self.graph.opset = opsets.get("", opsets.get("ai.onnx", 0))
        self.graph.onnx_names = dict(self.onnx_names)
        self.graph.onnx_io = (self.in_name, self.g.output[0].name)
        return self.graph

    def _fold(self, node) -> bool:
        """Fold shape arithmetic the pre-pass left (e.g. behind com.microsoft Q/DQ, which ONNX
        shape inference does not know) with the shapes found here; True when folded."""
        if node.domain not in ("", "ai.onnx") or node.op_type not in FOLDABLE or \
                node.op_type == "Constant" or len(node.output) != 1:
            return False
        value = None
        if node.op_type == "Shape":
            v = self.values.get(node.input[0])
            if isinstance(v, Act):
                value = shape_value(node, (1,) + tuple(self.graph.tensors[v.ir].shape))
            elif isinstance(v, View):
                value = shape_value(node, v.shape)
        elif all(i == "" or i in self.consts for i in node.input):
            value = evaluate_static(node, [self.consts[i] if i else None for i in node.input])
        if value is None:
            return False
        self.consts[node.output[0]] = value
        return True

    def _check_folded_shapes(self):
        """ONNX shape inference, which the folding used, against the shapes the import found
        (they can differ, e.g. for ceil_mode pools whose last window starts in the padding)."""
        for name, (shape_node, shape) in self.folded_shapes.items():
            v = self.values.get(name)
            if isinstance(v, Pending) and v.realized is not None:
                v = Act(v.realized[2])
            if isinstance(v, Act):
                have = (1,) + tuple(self.graph.tensors[v.ir].shape)
            elif isinstance(v, View):
                have = v.shape
            else:
                continue
            if have != tuple(shape):
                raise UnsupportedModel(f"node {shape_node!r} (Shape): ONNX shape inference gives "
                                       f"{list(shape)} for {name!r} but the model computes "
                                       f"{list(have)}; the shape arithmetic cannot be folded")

    def _input_shape(self, vi) -> tuple:
        tt = vi.type.tensor_type
        if tt.elem_type != 1:
            raise UnsupportedModel(f"input {vi.name!r} must be float32")
        if not tt.HasField("shape"):
            raise UnsupportedModel(f"input {vi.name!r} has no shape")
        dims = list(tt.shape.dim)
        if len(dims) != 4:
            raise UnsupportedModel(f"input {vi.name!r} must be NCHW (4-D), it has {len(dims)} dimensions")
        n = dims[0]
        if n.HasField("dim_value") and n.dim_value not in (0, 1):
            raise UnsupportedModel(f"input {vi.name!r}: batch size {n.dim_value} is not supported "
                                   f"(use N = 1 or a dynamic N)")
        shape = []
        for k, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                what = d.dim_param or "?"
                raise UnsupportedModel(f"input {vi.name!r}: dynamic dimension {k} ({what!r}) is not "
                                       f"supported (only the batch may be dynamic)")
            shape.append(int(d.dim_value))
        return tuple(shape)

    def _set_output(self, name: str):
        v = self.values.get(name)
        if isinstance(v, Act):
            self.graph.output = v.ir
            if name in self.q_outputs:
                self.graph.output_codes = self.q_outputs[name]
            return
        if isinstance(v, Pending) and v.source is not None and self._exact_in_float(v):
            # a trailing float max pool / flatten / Relu on dequantised codes is exactly the
            # dequantised result of the same op on the codes
            t = self.graph.tensors[v.source]
            self.graph.output = self._realize(v, name, t.scale, t.zero_point)
            return
        if isinstance(v, Pending):
            hint = "; quantize_static leaves ReduceMean in float: export the global average pool " \
                "as GlobalAveragePool (torch.onnx.export(..., dynamo=False))" \
                if any(n.op_type == "ReduceMean" for n in self.g.node) else ""
            raise UnsupportedModel(f"model output {name!r} is not quantised (no QuantizeLinear after "
                                   f"{_node_desc(v.onnx_node)}){hint}")
        raise UnsupportedModel(f"model output {name!r} is not a quantised feature map or vector")

    def _exact_in_float(self, p: Pending) -> bool:
        """Whether every Relu/Clip bound of ``p`` lies on its source's quantisation grid."""
        t = self.graph.tensors[p.source]
        for bound in (b for clip in p.clips for b in clip):
            if bound is None or not np.isfinite(bound):
                continue
            steps = bound / t.scale
            if not (steps + t.zero_point < -128 or steps + t.zero_point > 127
                    or abs(steps - round(steps)) < 1e-6):
                return False
        return True

    # ---- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _exact_scales(model) -> dict:
        for p in model.metadata_props:
            if p.key == SCALES_METADATA:
                try:
                    return {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(p.value).items()}
                except (ValueError, TypeError, AttributeError):
                    return {}
        return {}

    def _const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            _fail(node, f"{what} {name!r} must be a constant (an initializer, or shape arithmetic "
                        f"on the static input shape)")
        return self.consts[name]

    def _scale(self, node, name: str) -> np.ndarray:
        s = self._const(node, name, "scale").astype(np.float64)
        exact = self.exact.get(name)
        if exact is not None and exact.shape == s.shape and \
                np.array_equal(exact.astype(np.float32), s.astype(np.float32)):
            s = exact
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            _fail(node, f"scale {name!r} must be positive and finite")
        return s

    def _zero_point(self, node, name: str | None, default_type: int = 2):
        """(values, onnx elem type) of a zero point input (absent → 0 of ``default_type``)."""
        from onnx import helper

        if not name:
            return np.zeros((), dtype=np.int64), default_type
        z = self._const(node, name, "zero point")
        return z.astype(np.int64), helper.np_dtype_to_tensor_dtype(z.dtype)

    def _unique(self, base: str, space: str = "node") -> str:
        """A fresh IR name (node and tensor names are separate name spaces)."""
        used = self.names.setdefault(space, set())
        name = base or space
        k = 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    def _tensor(self, name: str, scale: float, zp: int, shape=()) -> str:
        name = self._unique(name, "tensor")
        self.graph.tensors[name] = Tensor(name, tuple(shape), float(scale), int(zp))
        return name

    def _add_node(self, node):
        """Append an IR node, infer its output shape now (later ops need it)."""
        ins = [self.graph.tensors[i] for i in node.inputs]
        self.graph.tensors[node.output].shape = tuple(int(s) for s in node.infer(ins))
        self.graph.nodes.append(node)

    def _act(self, node, name: str) -> Tensor:
        v = self.values.get(name)
        if isinstance(v, Act):
            return self.graph.tensors[v.ir]
        if name == self.in_name:
            _fail(node, "the model input is used without QuantizeLinear (model is not quantised)")
        if isinstance(v, Pending) and v.source is not None and self._exact_in_float(v):
            # a float max pool / reshape / Relu of dequantised codes feeding another op: exactly
            # the dequantised codes of the same op in its source's quantisation
            t = self.graph.tensors[v.source]
            return self.graph.tensors[self._realize(v, name, t.scale, t.zero_point)]
        if isinstance(v, Pending):
            _fail(node, f"input {name!r} is a float result that was never quantised")
        if isinstance(v, ConstQ) or name in self.consts:
            _fail(node, f"constant input {name!r} is not supported here")
        if isinstance(v, Padded):
            _fail(node, f"input {name!r} comes from a Pad, which is only supported directly before a Conv")
        _fail(node, f"input {name!r} is not a quantised activation")

    def _pending(self, node, build, out: str | None = None):
        if out is None and len(node.output) != 1:
            _fail(node, "only one output is supported")
        self.values[out or node.output[0]] = Pending(node, build)

    # ---- QuantizeLinear / DequantizeLinear --------------------------------------------------
    def _qparams(self, node, attrs) -> tuple:
        _check_attrs(node, attrs, {"axis", "saturate", "output_dtype", "block_size"})
        if attrs.get("block_size", 0):
            _fail(node, "blocked quantisation is not supported")
        s = self._scale(node, node.input[1])
        if s.size != 1:
            _fail(node, "per-channel activation quantisation is not supported")
        z, ztype = self._zero_point(node, node.input[2] if len(node.input) > 2 else None,
                                    attrs.get("output_dtype") or 2)
        if ztype not in ACT_TYPES:
            _fail(node, f"activations must be int8 or uint8, not ONNX type {ztype}")
        if z.size != 1:
            _fail(node, "per-channel activation zero points are not supported")
        self.act_dtypes.add(ACT_TYPES[ztype])
        self._last_act_type = ACT_TYPES[ztype]
        zp = int(z.reshape(-1)[0]) - (128 if ztype == 2 else 0)
        return float(s.reshape(-1)[0]), zp

    def op_QuantizeLinear(self, node):
        attrs = _attrs(node)
        scale, zp = self._qparams(node, attrs)
        x, out = node.input[0], node.output[0]
        self.q_outputs[out] = self._last_act_type
        if x == self.in_name:
            if self.graph.input:
                _fail(node, "the model input is quantised twice")
            name = self._tensor("input", scale, zp, self.in_shape)
            self.graph.input = name
            self.values[out] = Act(name)
            self.onnx_names[name] = out
            return
        v = self.values.get(x)
        if isinstance(v, Pending):
            self.values[out] = Act(self._realize(v, x, scale, zp))
        elif isinstance(v, Act):
            self.values[out] = Act(self._requantize(node, v.ir, scale, zp))
        elif isinstance(v, (View, Padded)):
            t = self.graph.tensors[v.ir]
            if t.zero_point != zp or not _close(t.scale, scale):
                what = "channel shuffle steps" if isinstance(v, View) else "a Pad"
                _fail(node, f"{what} must keep the quantisation of its input")
            self.values[out] = v
        else:
            _fail(node, f"input {x!r} is not a float activation")
        if isinstance(self.values[out], Act):
            self.onnx_names.setdefault(self.values[out].ir, out)

    def op_DequantizeLinear(self, node):
        attrs = _attrs(node)
        x = node.input[0]
        if x in self.consts:
            self._dequant_const(node, attrs)
            return
        v = self.values.get(x)
        if not isinstance(v, (Act, View, Padded)):
            _fail(node, f"input {x!r} is neither a constant nor a quantised activation")
        scale, zp = self._qparams(node, attrs)
        t = self.graph.tensors[v.ir]
        if t.zero_point != zp or not _close(t.scale, scale):
            self._reinterpret(node, v, t, scale, zp)
        self.dequantised.add(v.ir)
        self.values[node.output[0]] = v

    def _reinterpret(self, node, v, t: Tensor, scale: float, zp: int):
        """DequantizeLinear in other parameters than its QuantizeLinear reinterprets the codes.
        That is representable when the codes come fresh from a pass-through node (max pool,
        flatten, permute, clamp: codes copied unchanged): its output tensor takes the new
        parameters.  Anything else is rejected."""
        if not isinstance(v, Act) or v.ir not in self.passthrough or v.ir in self.dequantised:
            _fail(node, "DequantizeLinear parameters differ from those of its QuantizeLinear")
        t.scale, t.zero_point = float(scale), int(zp)

    def _dequant_const(self, node, attrs):
        _check_attrs(node, attrs, {"axis", "block_size"})
        if attrs.get("block_size", 0):
            _fail(node, "blocked quantisation is not supported")
        q = self.consts[node.input[0]]
        s = self._scale(node, node.input[1])
        z, _ = self._zero_point(node, node.input[2] if len(node.input) > 2 else None)
        axis = attrs.get("axis", 1) if s.size > 1 else None
        if axis is not None:
            axis = axis + q.ndim if axis < 0 else axis
            if not 0 <= axis < q.ndim or q.shape[axis] != s.size:
                _fail(node, f"scale of size {s.size} does not fit axis {axis} of shape {list(q.shape)}")
        self.values[node.output[0]] = ConstQ(q, s.reshape(-1), z.reshape(-1), axis)

    def _realize(self, p: Pending, onnx_name: str, scale: float, zp: int) -> str:
        if p.realized is not None:
            s0, z0, ir = p.realized
            if z0 == zp and _close(s0, scale):
                return ir
            if p.source is None:
                _fail(p.onnx_node, "output is quantised twice with different parameters")
            return self._rescale(p.onnx_node.name or onnx_name, ir, scale, zp)
        ir = p.build(p.onnx_node.name or onnx_name, scale, zp, p.clips)
        p.realized = (scale, zp, ir)
        return ir

    def _requantize(self, node, src: str, scale: float, zp: int) -> str:
        """QuantizeLinear of an already quantised activation: alias, or a rescale node."""
        t = self.graph.tensors[src]
        if t.zero_point == zp and _close(t.scale, scale):
            return src
        return self._rescale(node.name or node.output[0], src, scale, zp)

    def _rescale(self, base: str, src: str, scale: float, zp: int) -> str:
        """A one-input Concat moves a map to another scale/zero point."""
        t = self.graph.tensors[src]
        if not t.is_map:
            raise UnsupportedModel(f"node {base!r}: requantising a flat vector (shape {list(t.shape)}) "
                                   f"is not supported (quantise Relu/Clip together with the model)")
        out = self._tensor(f"{base}_rescale", scale, zp)
        self._add_node(Concat(self._unique(f"{base}_rescale"), [src], out))
        return out

    # ---- same-quantisation ops (max pool, clamp, flatten, permute, identity) ----------------
    def _same_scale(self, node, src: str, make, out: str | None = None, label: str | None = None):
        """Pending for an op that keeps the int8 codes' meaning: requantise its input first if
        the output QuantizeLinear differs, then ``make(name, input, output) -> IR node | None``.
        ``out``/``label``: the ONNX output and IR name base when the node has several outputs."""
        def build(onnx_out, scale, zp, clips):
            x = self._requantize(node, src, scale, zp)
            out = self._tensor(label or onnx_out, scale, zp)
            name = self._unique(label or node.name or onnx_out)
            ir = make(name, x, out)
            if ir is None:                          # identity: release the names again
                del self.graph.tensors[out]
                self.names["node"].discard(name)
                self.names["tensor"].discard(out)
                return self._apply_clips(node, x, clips, own=True)
            self._add_node(ir)
            self.passthrough.add(out)
            return self._apply_clips(node, out, clips)
        self._pending(node, build, out)
        self.values[out or node.output[0]].source = src

    def _apply_clips(self, node, ir: str, clips: list, own: bool = False) -> str:
        """Relu/Clip after an op without clamp bounds: a Clamp node in the same quantisation
        (``own``: ``node`` is the Relu/Clip itself and names the Clamp)."""
        if not clips:
            return ir
        t = self.graph.tensors[ir]
        lo, hi = _clip_bounds(t, clips)
        if (lo, hi) == (-128, 127):                 # the int8 range already saturates there
            return ir
        base = (node.name or ir) if own else f"{node.name or ir}_clamp"
        out = self._tensor(base, t.scale, t.zero_point)
        self._add_node(Clamp(self._unique(base), [ir], out, lo=lo, hi=hi))
        self.passthrough.add(out)
        return out

    # ---- operators --------------------------------------------------------------------------
    def op_Constant(self, node):
        from onnx import numpy_helper

        attrs = node.attribute
        if len(attrs) != 1 or attrs[0].name != "value":
            _fail(node, "only tensor constants ('value') are supported")
        self.consts[node.output[0]] = numpy_helper.to_array(attrs[0].t)

    def op_Identity(self, node):
        x = node.input[0]
        if x in self.consts:
            self.consts[node.output[0]] = self.consts[x]
            return
        v = self.values.get(x)
        if v is None:
            _fail(node, f"input {x!r} is not supported here")
        self.values[node.output[0]] = v

    def op_Dropout(self, node):
        """Inference: the identity (the mask output must be unused)."""
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"seed", "ratio", "is_test"})
        if len(node.input) > 2 and node.input[2]:
            mode = self._const(node, node.input[2], "training_mode")
            if np.any(mode):
                _fail(node, "training mode is not supported (export the model in eval mode)")
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1], 0):
            _fail(node, "the mask output is not supported")
        self.op_Identity(node)

    # ---- shape computations that stayed dynamic ---------------------------------------------
    def op_Shape(self, node):
        _fail(node, f"the shape of {node.input[0]!r} is not static (ONNX shape inference does not "
                    f"know it), so the shape arithmetic that uses it cannot be folded")

    def op_Unsqueeze(self, node):
        self._squeeze(node, 1)

    def op_Squeeze(self, node):
        self._squeeze(node, -1)

    def _squeeze(self, node, sign: int):
        """Squeeze/Unsqueeze of an activation: a reshape (e.g. (1, C, 1, 1) → (1, C))."""
        axes = _attrs(node).get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = self._const(node, node.input[1], "axes").astype(np.int64).tolist()

        def new_shape(cur):
            if sign < 0:
                drop = [i for i, d in enumerate(cur) if d == 1] if axes is None else axes
                drop = {a + len(cur) if a < 0 else a for a in drop}
                if 0 in drop or any(a >= len(cur) or cur[a] != 1 for a in drop):
                    _fail(node, f"axes {sorted(drop)} cannot be squeezed from {list(cur)}")
                return tuple(d for i, d in enumerate(cur) if i not in drop)
            rank = len(cur) + len(axes or ())
            add = sorted(a + rank if a < 0 else a for a in axes or ())
            if not add or add[0] < 1:
                _fail(node, f"axes {add} are not supported (the batch stays the first axis)")
            new = list(cur)
            for a in add:
                new.insert(a, 1)
            return tuple(new)
        self._reshape(node, new_shape)

    def op_Relu(self, node):
        self._activation(node, (0.0, None))

    def op_Clip(self, node):
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"min", "max"})
        lo, hi = attrs.get("min"), attrs.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = self._float_scalar(node, node.input[1])
        if len(node.input) > 2 and node.input[2]:
            hi = self._float_scalar(node, node.input[2])
        self._activation(node, (lo, hi))

    def _float_scalar(self, node, name: str) -> float:
        v = self.values.get(name)
        if isinstance(v, ConstQ):
            arr = v.real()
        elif name in self.consts:
            arr = self.consts[name]
        else:
            _fail(node, f"bound {name!r} must be a constant")
        if np.size(arr) != 1:
            _fail(node, f"bound {name!r} must be a scalar")
        return float(np.asarray(arr).reshape(-1)[0])

    def _activation(self, node, clip: tuple):
        x = node.input[0]
        v = self.values.get(x)
        if isinstance(v, Pending) and self.uses.get(x, 0) == 1:
            v.clips.append(clip)
            self.values[node.output[0]] = v
            return
        t = self._act(node, x)
        self._same_scale(node, t.name, lambda name, i, o: None)
        self.values[node.output[0]].clips.append(clip)

    def op_MaxPool(self, node):
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                   "storage_order", "strides"})
        if len(node.output) > 1 and node.output[1]:
            _fail(node, "the indices output is not supported")
        if attrs.get("storage_order", 0):
            _fail(node, "storage_order 1 is not supported")
        t = self._act(node, node.input[0])
        k, s, pads, extra = self._window(node, attrs, t)
        self._same_scale(node, t.name, lambda name, i, o: Pool(name, [i], o, kind="max", kernel=k,
                                                                stride=s, pads=pads, ceil_extra=extra))

    def op_AveragePool(self, node):
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                   "kernel_shape", "pads", "strides"})
        t = self._act(node, node.input[0])
        k, s, pads, extra = self._window(node, attrs, t)
        cip = bool(attrs.get("count_include_pad", 0))

        def build(onnx_out, scale, zp, clips):
            out = self._tensor(onnx_out, scale, zp)
            self._add_node(Pool(self._unique(node.name or onnx_out), [t.name], out, kind="avg",
                                kernel=k, stride=s, pads=pads, count_include_pad=cip,
                                ceil_extra=extra))
            return self._apply_clips(node, out, clips)
        self._pending(node, build)

    def op_GlobalAveragePool(self, node):
        self._global_avg(node, keepdims=True)

    def op_ReduceMean(self, node):
        """The mean over H and W (``x.mean([2, 3])``): a global average pool, followed by a
        flatten without ``keepdims``."""
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"axes", "keepdims", "noop_with_empty_axes"})
        axes = attrs.get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = self._const(node, node.input[1], "axes").astype(np.int64).tolist()
        if sorted(a % 4 for a in axes or ()) != [2, 3]:
            _fail(node, f"axes {axes} are not supported (only the spatial axes [2, 3])")
        self._global_avg(node, keepdims=bool(attrs.get("keepdims", 1)))

    def _global_avg(self, node, keepdims: bool):
        t = self._act(node, node.input[0])
        if not t.is_map:
            _fail(node, f"needs a feature map, got shape {list(t.shape)}")

        def build(onnx_out, scale, zp, clips):
            base = onnx_out if keepdims else f"{onnx_out}_gap"
            out = self._tensor(base, scale, zp)
            self._add_node(GlobalAvgPool(self._unique(node.name or onnx_out), [t.name], out))
            if not keepdims:
                flat = self._tensor(onnx_out, scale, zp)
                self._add_node(Flatten(self._unique(f"{node.name or onnx_out}_flatten"), [out], flat))
                out = flat
            return self._apply_clips(node, out, clips)
        self._pending(node, build)

    def op_GlobalMaxPool(self, node):
        t = self._act(node, node.input[0])
        if not t.is_map:
            _fail(node, f"needs a feature map, got shape {list(t.shape)}")
        self._same_scale(node, t.name, lambda name, i, o: GlobalMaxPool(name, [i], o))

    # ---- channel split ------------------------------------------------------------------------
    def op_Split(self, node):
        """Along the channels (``torch.chunk``/``split`` on dim 1): one channel slice per output."""
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"axis", "split", "num_outputs"})
        t = self._act(node, node.input[0])
        if not t.is_map or attrs.get("axis", 0) not in (1, -3):
            _fail(node, f"axis {attrs.get('axis', 0)} is not supported (only the channel axis 1 of "
                        f"a feature map)")
        c, n = t.shape[0], len(node.output)
        sizes = attrs.get("split")
        if len(node.input) > 1 and node.input[1]:
            sizes = self._const(node, node.input[1], "split").astype(np.int64).tolist()
        if sizes is None:                               # equal parts, the last one smaller
            part = -(-c // n)
            sizes = [min(part, c - i * part) for i in range(n)]
        if len(sizes) != n or sum(sizes) != c or min(sizes) < 1:
            _fail(node, f"split {list(sizes)} does not cut {c} channels into {n} parts")
        start = 0
        for i, (out, size) in enumerate(zip(node.output, sizes)):
            if out:
                self._channel_slice(node, t, start, start + size, out, f"{node.name or out}_{i}")
            start += size

    def op_Slice(self, node):
        """Static bounds, step 1, cutting only the channel axis: a channel slice."""
        t = self._act(node, node.input[0])
        cur = (1,) + tuple(t.shape)
        if len(node.input) < 3:
            _fail(node, "Slice with attributes (opset < 10) is not supported")
        starts, ends = (self._const(node, node.input[i], w).astype(np.int64).tolist()
                        for i, w in ((1, "starts"), (2, "ends")))
        axes = self._const(node, node.input[3], "axes").astype(np.int64).tolist() \
            if len(node.input) > 3 and node.input[3] else list(range(len(starts)))
        steps = self._const(node, node.input[4], "steps").astype(np.int64).tolist() \
            if len(node.input) > 4 and node.input[4] else [1] * len(starts)
        lo, hi = [0] * len(cur), list(cur)
        for b, e, a, st in zip(starts, ends, axes, steps):
            a = a + len(cur) if a < 0 else a
            if st != 1 or not 0 <= a < len(cur):
                _fail(node, f"step {st} on axis {a} is not supported (only step 1)")
            n = cur[a]
            lo[a] = min(max(b + n if b < 0 else b, 0), n)
            hi[a] = min(max(e + n if e < 0 else e, 0), n)
        cut = [a for a in range(len(cur)) if (lo[a], hi[a]) != (0, cur[a])]
        if any(a != 1 for a in cut) or (cut and not t.is_map):
            _fail(node, f"slicing {list(cur)} to {[h - l for l, h in zip(lo, hi)]} is not supported "
                        f"(only a channel range of a feature map)")
        if not cut:
            self._same_scale(node, t.name, lambda name, i, o: None)
        else:
            self._channel_slice(node, t, lo[1], hi[1], node.output[0], node.name or None)

    def _channel_slice(self, node, t: Tensor, start: int, stop: int, out: str, label):
        if stop <= start:
            _fail(node, f"channel range {start}..{stop} of {t.shape[0]} channels is empty")
        if (start, stop) == (0, t.shape[0]):
            self._same_scale(node, t.name, lambda name, i, o: None, out, label)
            return
        self._same_scale(node, t.name, lambda name, i, o: ChannelSlice(name, [i], o, start=start, stop=stop),
                         out, label)

    # ---- operators without hardware: declined with the reason -------------------------------
    def op_Sigmoid(self, node):
        self._no_activation(node)

    def op_HardSigmoid(self, node):
        self._no_activation(node)

    def op_HardSwish(self, node):
        self._no_activation(node)

    def _no_activation(self, node):
        _fail(node, f"operator {node.op_type} is not supported (the only activations are ReLU, "
                    f"ReLU6 and Clip)")

    def op_Mul(self, node):
        if all(i in self.consts for i in node.input):
            _fail(node, "multiplication of constants that could not be folded")
        if sum(i not in self.consts for i in node.input) == 2:
            _fail(node, "operator Mul of two activations (SiLU/Swish, squeeze-and-excitation "
                        "gating) is not supported")
        _fail(node, "operator Mul of an activation by a constant is not supported")

    def op_Resize(self, node):
        _fail(node, "operator Resize (upsampling) is not supported")

    def op_Softmax(self, node):
        if self._feeds_output(node.output[0]):
            _fail(node, "operator Softmax is not supported; the model's output before it is the "
                        "logits (same top-1): export the model without the final Softmax")
        _fail(node, "operator Softmax is not supported")

    op_LogSoftmax = op_Softmax

    def _feeds_output(self, name: str) -> bool:
        """Whether ``name`` reaches the model output through Q/DQ, Identity or Dropout only."""
        out = self.g.output[0].name
        seen = set()
        while name != out and name not in seen:
            seen.add(name)
            nxt = [n for n in self.g.node if name in n.input[:1]]
            if len(nxt) != 1 or nxt[0].op_type not in QDQ_OPS + ("Identity", "Dropout"):
                return False
            name = nxt[0].output[0]
        return name == out

    def op_Add(self, node):
        a, b = (self._act(node, i) for i in node.input)
        if a.shape != b.shape:
            _fail(node, f"broadcasting add of shapes {list(a.shape)} and {list(b.shape)} is not supported")
        if not a.is_map:
            _fail(node, "add of vectors is not supported")

        def build(onnx_out, scale, zp, clips):
            out = self._tensor(onnx_out, scale, zp)
            n = Add(self._unique(node.name or onnx_out), [a.name, b.name], out)
            n.lo, n.hi = _clip_bounds(self.graph.tensors[out], clips)
            self._add_node(n)
            return out
        self._pending(node, build)

    def op_Concat(self, node):
        attrs = _attrs(node)
        ts = [self._act(node, i) for i in node.input]
        if any(not t.is_map for t in ts):
            _fail(node, "only concatenation of feature maps is supported")
        if attrs.get("axis") not in (1, -3):
            _fail(node, f"axis {attrs.get('axis')} is not supported (only the channel axis 1)")

        def build(onnx_out, scale, zp, clips):
            out = self._tensor(onnx_out, scale, zp)
            self._add_node(Concat(self._unique(node.name or onnx_out), [t.name for t in ts], out))
            return self._apply_clips(node, out, clips)
        self._pending(node, build)

    def op_Flatten(self, node):
        """Any axis ≥ 1 whose result is (N, features): the dimensions between the batch and
        the axis are 1."""
        axis = _attrs(node).get("axis", 1)

        def new_shape(cur):
            a = axis + len(cur) if axis < 0 else axis
            if not 1 <= a <= len(cur) or int(np.prod(cur[1:a])) != 1:
                _fail(node, f"axis {axis} of shape {list(cur)} is not supported (the result must be "
                            f"(N, features))")
            return (1, int(np.prod(cur[1:])))
        self._reshape(node, new_shape)

    def op_Reshape(self, node):
        attrs = _attrs(node)
        target = self._const(node, node.input[1], "shape").astype(np.int64).tolist()
        if attrs.get("allowzero", 0) and 0 in target:     # without a 0 allowzero changes nothing
            _fail(node, "allowzero with a 0 in the shape is not supported")
        self._reshape(node, lambda cur: _resolve_shape(node, cur, target))

    def _reshape(self, node, new_shape):
        """Reshape-like ``node`` (Reshape, Flatten, Squeeze, Unsqueeze) of its first input to
        ``new_shape(current shape with the batch)``: of a view, an activation, or a float
        result quantised only after the reshape."""
        v = self.values.get(node.input[0])
        if isinstance(v, View):
            self._reshape_view(node, v, new_shape(v.shape))
        elif isinstance(v, Pending) and v.source is None:
            self._defer_reshape(node, v, new_shape)
        else:
            t = self._act(node, node.input[0])
            self._reshape_act(node, t, new_shape((1,) + tuple(t.shape)))

    def _defer_reshape(self, node, p: Pending, new_shape):
        """Flatten of a float result whose QuantizeLinear comes after the reshape (e.g.
        ReduceMean → Reshape → QuantizeLinear, as ``torch.export`` writes adaptive pooling):
        quantise the result with those parameters, then flatten the codes (exact)."""
        def build(onnx_out, scale, zp, clips):
            src = self._realize(p, node.input[0], scale, zp)
            t = self.graph.tensors[src]
            cur = (1,) + tuple(t.shape)
            new = new_shape(cur)
            out = src
            if new != cur:
                if not (len(new) == 2 and new[0] == 1 and t.is_map):
                    _fail(node, f"reshape {list(cur)} → {list(new)} of a float result is not "
                                f"supported (only a flatten to (N, features))")
                out = self._tensor(onnx_out, scale, zp)
                self._add_node(Flatten(self._unique(node.name or onnx_out), [src], out))
            return self._apply_clips(node, out, clips)
        self._pending(node, build)

    def _reshape_act(self, node, t: Tensor, new: tuple):
        """A reshape of activation ``t`` (shape (1, *t.shape)) to ``new``: the identity, a
        flatten to (1, features), or the start of a channel permutation (a :class:`View`)."""
        cur = (1,) + tuple(t.shape)
        if new == cur or not t.is_map and new == (1, t.size):
            self._same_scale(node, t.name, lambda name, i, o: None)
        elif len(new) == 2 and new[0] == 1 and t.is_map:
            self._same_scale(node, t.name, lambda name, i, o: Flatten(name, [i], o))
        elif t.is_map and _split_view(t.shape, new) is not None:
            k = _split_view(t.shape, new)
            self.values[node.output[0]] = View(t.name, np.arange(t.shape[0]).reshape(new[1:1 + k]),
                                               new[1 + k:])
        else:
            _fail(node, f"reshape {list(cur)} → {list(new)} is not supported (only flatten to "
                        f"(N, features) and channel permutations)")

    def _reshape_view(self, node, v: View, new: tuple):
        t = self.graph.tensors[v.ir]
        k = _split_view(t.shape, new)
        if k is None:
            _fail(node, f"reshape {list(v.shape)} → {list(new)} is not supported (only channel "
                        f"permutations)")
        if new != (1,) + tuple(t.shape):
            self.values[node.output[0]] = View(v.ir, v.index.reshape(new[1:1 + k]), new[1 + k:])
            return
        perm = v.index.reshape(-1).copy()
        if np.array_equal(perm, np.arange(perm.size)):
            self._same_scale(node, t.name, lambda name, i, o: None)
        else:
            self._same_scale(node, t.name, lambda name, i, o: Permute(name, [i], o, perm=perm))

    def op_Transpose(self, node):
        """A transpose of a :class:`View`'s channel factors (the batch and spatial axes stay in
        place); the identity on anything."""
        attrs = _attrs(node)
        v = self.values.get(node.input[0])
        perm = [int(p) for p in attrs.get("perm", [])]
        if isinstance(v, View):
            k = v.index.ndim
            if sorted(perm) == list(range(len(v.shape))) and perm[0] == 0 and \
                    perm[k + 1:] == list(range(k + 1, len(v.shape))):
                self.values[node.output[0]] = View(v.ir, v.index.transpose([p - 1 for p in perm[1:k + 1]]),
                                                   v.spatial)
                return
        elif isinstance(v, Act) and perm == list(range(len(self.graph.tensors[v.ir].shape) + 1)):
            self._same_scale(node, v.ir, lambda name, i, o: None)
            return
        _fail(node, f"transpose with perm {perm} is not supported (only permutations of channel "
                    f"groups between Reshapes, e.g. a channel shuffle)")

    def op_Gather(self, node):
        attrs = _attrs(node)
        t = self._act(node, node.input[0])
        idx = self._const(node, node.input[1], "indices").astype(np.int64)
        c = t.shape[0] if t.is_map else -1
        if attrs.get("axis", 0) not in (1, -3) or idx.ndim != 1 or sorted(idx.tolist()) != list(range(c)):
            _fail(node, "only a channel permutation (axis 1, constant permutation indices) is supported")
        self._same_scale(node, t.name, lambda name, i, o: Permute(name, [i], o, perm=idx.copy()))

    def op_Pad(self, node):
        """Constant padding with real 0 (= the zero point's code) on H/W, folded into the Conv
        that consumes it; reflect/edge modes and other values are rejected."""
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"mode", "pads", "value"})
        mode = attrs.get("mode", "constant")
        if mode != "constant":
            _fail(node, f"pads mode {mode!r} is not supported (only constant)")
        t = self._act(node, node.input[0])
        if not t.is_map:
            _fail(node, f"needs a feature map, got shape {list(t.shape)}")
        if len(node.input) > 3 and node.input[3]:
            _fail(node, "the axes input is not supported")
        pads = attrs.get("pads") if len(node.input) < 2 or not node.input[1] else \
            self._const(node, node.input[1], "pads").astype(np.int64).tolist()
        value = attrs.get("value", 0.0)
        if len(node.input) > 2 and node.input[2]:
            value = self._float_scalar(node, node.input[2])
        if pads is None or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            _fail(node, f"pads {pads} are not supported (only non-negative padding of H and W)")
        if value != 0.0:
            _fail(node, f"padding value {value} is not supported (only 0)")
        self.values[node.output[0]] = Padded(t.name, (pads[2], pads[3], pads[6], pads[7]))

    # ---- Conv / Gemm / MatMul ---------------------------------------------------------------
    def op_Conv(self, node):
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
        v = self.values.get(node.input[0])
        if isinstance(v, Padded):                   # Pad → Conv: the pads add up
            t, pre = self.graph.tensors[v.ir], v.pads
        else:
            t, pre = self._act(node, node.input[0]), (0, 0, 0, 0)
        if not t.is_map:
            _fail(node, f"needs a feature map, got shape {list(t.shape)}")
        wq = self._weight(node, node.input[1], out_axis=0)
        if wq.q.ndim != 4:
            _fail(node, f"only 2-D convolution is supported (weight shape {list(wq.q.shape)})")
        groups = int(attrs.get("group", 1))
        ks = attrs.get("kernel_shape")
        if ks is not None and list(ks) != list(wq.q.shape[2:]):
            _fail(node, f"kernel_shape {list(ks)} does not match the weight {list(wq.q.shape)}")
        if t.shape[0] != wq.q.shape[1] * groups or wq.q.shape[0] % groups:
            _fail(node, f"weight {list(wq.q.shape)} with group {groups} does not fit "
                        f"{t.shape[0]} input channels")
        c, h, w = t.shape
        padded = Tensor(t.name, (c, h + pre[0] + pre[2], w + pre[1] + pre[3]), t.scale, t.zero_point)
        k, stride, pads, _ = self._window(node, attrs, padded, kernel=tuple(wq.q.shape[2:]))
        pads = tuple(a + b for a, b in zip(pads, pre))
        w_scale = _per_channel(wq, 0)
        bias = self._bias(node, node.input[2] if len(node.input) > 2 else "", t.scale, w_scale)

        def build(onnx_out, scale, zp, clips):
            out = self._tensor(onnx_out, scale, zp)
            n = Conv(self._unique(node.name or onnx_out), [t.name], out,
                     weight=wq.q.astype(np.int8), bias=bias, w_scale=w_scale, stride=stride,
                     pads=pads, groups=groups)
            n.lo, n.hi = _clip_bounds(self.graph.tensors[out], clips)
            self._add_node(n)
            return out
        self._pending(node, build)

    def op_Gemm(self, node):
        attrs = _attrs(node)
        _check_attrs(node, attrs, {"alpha", "beta", "transA", "transB"})
        if attrs.get("transA", 0):
            _fail(node, "transA = 1 is not supported")
        if attrs.get("alpha", 1.0) != 1.0 or (attrs.get("beta", 1.0) != 1.0 and len(node.input) > 2):
            _fail(node, "alpha and beta other than 1 are not supported")
        trans = bool(attrs.get("transB", 0))
        self._fc(node, node.input[1], trans, node.input[2] if len(node.input) > 2 else "")

    def op_MatMul(self, node):
        self._fc(node, node.input[1], False, "")

    def _fc(self, node, wname: str, trans_b: bool, bname: str):
        t = self._act(node, node.input[0])
        if t.is_map:
            _fail(node, f"needs a flat vector (Flatten first), got shape {list(t.shape)}")
        wq = self._weight(node, wname, out_axis=0 if trans_b else 1)
        if wq.q.ndim != 2:
            _fail(node, f"weight must be 2-D, got shape {list(wq.q.shape)}")
        w = wq.q if trans_b else wq.q.T
        if w.shape[1] != t.shape[0]:
            _fail(node, f"weight {list(wq.q.shape)} does not fit {t.shape[0]} inputs")
        w_scale = _per_channel(wq, 0 if trans_b else 1)
        bias = self._bias(node, bname, t.scale, w_scale)

        def build(onnx_out, scale, zp, clips):
            out = self._tensor(onnx_out, scale, zp)
            n = FC(self._unique(node.name or onnx_out), [t.name], out,
                   weight=np.ascontiguousarray(w).astype(np.int8), bias=bias, w_scale=w_scale)
            n.lo, n.hi = _clip_bounds(self.graph.tensors[out], clips)
            self._add_node(n)
            return out
        self._pending(node, build)

    def _weight(self, node, name: str, out_axis: int) -> ConstQ:
        v = self.values.get(name)
        if not isinstance(v, ConstQ):
            _fail(node, f"weight {name!r} is not quantised (expected DequantizeLinear of int8 constants)")
        if v.q.dtype != np.int8:
            _fail(node, f"weights must be int8, got {v.q.dtype}")
        if np.any(v.zero_point != 0):
            _fail(node, "weights must be symmetric (zero point 0)")
        if v.axis is not None and v.axis != out_axis:
            _fail(node, f"per-channel weight scales must be along the output axis {out_axis}, "
                        f"not axis {v.axis}")
        return v

    def _bias(self, node, name: str, sx: float, w_scale: np.ndarray) -> np.ndarray:
        """int32 bias on the scale sx·sw[c]: taken as is when the model's bias scale is that,
        otherwise rounded from its real value."""
        o = w_scale.size
        if not name:
            return np.zeros(o, dtype=np.int32)
        want = sx * w_scale
        v = self.values.get(name)
        if isinstance(v, ConstQ):
            if v.q.size != o:
                _fail(node, f"bias has {v.q.size} values for {o} output channels")
            if v.q.dtype == np.int32 and np.all(v.zero_point == 0) and \
                    np.allclose(np.broadcast_to(v.scale, (o,)), want, rtol=1e-5, atol=0):
                return v.q.reshape(o).astype(np.int32)
            real = v.real().reshape(o)
        elif name in self.consts:
            real = self.consts[name].astype(np.float64).reshape(-1)
            if real.size != o:
                _fail(node, f"bias has {real.size} values for {o} output channels")
        else:
            _fail(node, f"bias {name!r} must be a constant")
        q = np.rint(real / want)
        if np.any(np.abs(q) > 2**31 - 1):
            _fail(node, "bias does not fit int32 on the scale s_x·s_w")
        return q.astype(np.int32)

    def _window(self, node, attrs, t: Tensor, kernel=None):
        """(kernel, stride, pads, ceil_extra) of a Conv/pool, resolving auto_pad; rejects
        dilation.  ``ceil_mode`` becomes extra bottom/right padding (``ceil_extra``, included in
        ``pads``) that gives ONNX's output size."""
        if not t.is_map:
            _fail(node, f"needs a feature map, got shape {list(t.shape)}")
        k = tuple(int(v) for v in (kernel or attrs.get("kernel_shape", ())))
        if len(k) != 2:
            _fail(node, f"kernel_shape {list(k)} is not 2-D")
        dil = list(attrs.get("dilations", [1, 1]))
        if dil != [1, 1]:
            _fail(node, f"dilations {dil} are not supported")
        s = tuple(int(v) for v in attrs.get("strides", [1, 1]))
        if len(s) != 2 or min(s) < 1:
            _fail(node, f"strides {list(s)} are not supported")
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or min(pads) < 0:
            _fail(node, f"pads {pads} are not supported")
        auto = attrs.get("auto_pad", "NOTSET")
        h, w = t.shape[1:]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0] * 4
            for d, size in enumerate((h, w)):
                total = max(0, (-(-size // s[d]) - 1) * s[d] + k[d] - size)
                small, big = total // 2, total - total // 2
                pads[d], pads[d + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto == "VALID":
            pads = [0] * 4
        elif auto != "NOTSET":
            _fail(node, f"auto_pad {auto!r} is not supported")
        top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
        extra = [0, 0]
        if attrs.get("ceil_mode", 0):
            for d, (size, p0, p1) in enumerate(((h, top, bottom), (w, left, right))):
                extra[d] = _ceil_extra(size, k[d], s[d], p0, p1)
        return k, s, (top, left, bottom + extra[0], right + extra[1]), tuple(extra)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def _ceil_extra(size: int, k: int, s: int, p0: int, p1: int) -> int:
    """Padding to add at the end so that the floor output size is ONNX's ``ceil_mode`` size:
    ceil((size + p0 + p1 − k) / s) + 1, less one when that last window would start in the end
    padding (ONNX Runtime's and PyTorch's rule)."""
    out = -(-(size + p0 + p1 - k) // s) + 1
    if (out - 1) * s >= size + p0:
        out -= 1
    return max(0, (out - 1) * s + k - (size + p0 + p1))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def _per_channel(wq: ConstQ, out_axis: int) -> np.ndarray:
    o = wq.q.shape[out_axis]
    return np.broadcast_to(wq.scale.astype(np.float64), (o,)).copy() if wq.scale.size == 1 \
        else wq.scale.astype(np.float64).copy()


def _clip_bounds(t: Tensor, clips: list) -> tuple:
    """Intersect Relu/Clip ranges (real values) as int8 clamp bounds in ``t``'s quantisation."""
    lo, hi = -128, 127
    for cmin, cmax in clips:
        a, b = relu_bounds(t.zero_point, t.scale, "clip", (cmin, cmax))
        lo, hi = max(lo, a), min(hi, b)
    return lo, hi


def _split_view(chw: tuple, new: tuple) -> int | None:
    """How many axes after the batch of ``new`` are channel factors of a (C, H, W) map when
    ``new`` = (1, *factors, *spatial) with Π factors = C and Π spatial = H·W (the most such
    axes), else None."""
    c, h, w = chw
    if len(new) < 3 or new[0] != 1:
        return None
    for k in range(len(new) - 2, 0, -1):
        if int(np.prod(new[1:1 + k])) == c and int(np.prod(new[1 + k:])) == h * w:
            return k
    return None


def _resolve_shape(node, cur: tuple, target: list) -> tuple:
    """ONNX Reshape target (0 = copy, −1 = infer) against the current shape ``cur``."""
    out = [cur[i] if d == 0 and i < len(cur) else d for i, d in enumerate(target)]
    total = int(np.prod(cur))
    if out.count(-1) > 1 or any(d < -1 for d in out):
        _fail(node, f"shape {target} is not valid")
    if -1 in out:
        rest = int(np.prod([d for d in out if d != -1]))
        if rest == 0 or total % rest:
            _fail(node, f"cannot reshape {list(cur)} to {target}")
        out[out.index(-1)] = total // rest
    if int(np.prod(out)) != total:
        _fail(node, f"cannot reshape {list(cur)} to {target}")
    return tuple(int(d) for d in out)


def fold_clamps_into_producers(graph: Graph) -> None:
    """Fold a Clamp into the Conv/FC/Add producing its input when it is that tensor's only
    consumer (same quantisation by construction): the producer's bounds become the
    intersection, the Clamp disappears and the producer writes the Clamp's output tensor."""
    changed = True
    while changed:
        changed = False
        for c in list(graph.nodes):
            if not isinstance(c, Clamp):
                continue
            src = c.inputs[0]
            p = graph.producer(src)
            if not isinstance(p, (Conv, FC, Add)) or src == graph.output or \
                    len(graph.consumers(src)) != 1:
                continue
            ts, tc = graph.tensors[src], graph.tensors[c.output]
            if ts.zero_point != tc.zero_point or ts.scale != tc.scale:
                continue
            p.lo, p.hi = max(p.lo, c.lo), min(p.hi, c.hi)
            p.output = c.output
            graph.nodes.remove(c)
            del graph.tensors[src]
            changed = True
