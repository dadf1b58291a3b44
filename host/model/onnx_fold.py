"""Constant folding of static shape arithmetic in an ONNX graph, before import.

PyTorch exports compute reshape targets from the input's shape at run time:
``x.view(n, g, c // g, h, w)`` becomes ``Shape → Gather → Div → Unsqueeze → Concat → Reshape``.
With the model's input shape fixed (a dynamic batch counts as 1: blockfuse runs one image at a
time) every such value is a constant.  :func:`fold_static_shapes` evaluates them and replaces
the nodes by initializers, so the importer sees the constant-shape form it already understands
(e.g. a channel shuffle's ``Reshape–Transpose–Reshape``).

The folding rule: a node of a type in :data:`FOLDABLE` is replaced by its value when every input
is a constant (an initializer, a ``Constant`` or an already folded value), a ``Shape`` node when
its input's shape is static.  Nothing else is folded (in particular no ``DequantizeLinear`` of
weights, and no operator on activations).  The importer does the same as it walks the graph,
with the shapes it has found itself; it folds every ``Shape`` of a quantised activation (a
``DequantizeLinear`` output).  This pass takes the other ``Shape`` nodes (of the float input, or
of a float result that is not quantised) from ONNX shape inference, which the importer checks
against its own shapes afterwards (ONNX shape inference misses e.g. the ``ceil_mode`` rule that
drops a last window starting in the padding).  What stays is declined by the importer, naming
the node.
"""
from __future__ import annotations

import numpy as np

#: operators evaluated when all their inputs are constants (``Shape``: when its input's shape is)
FOLDABLE = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Add", "Sub", "Mul",
            "Div", "Cast", "Identity", "Constant")

#: initializers up to this many elements stay in the model given to shape inference (they may
#: be reshape targets or Slice bounds); larger ones (weights) are given by their shape only
_SMALL = 64


def fold_static_shapes(model, inferred: dict | None = None):
    """A copy of ``model`` with its static shape arithmetic folded into initializers (``model``
    itself when there is nothing to fold).  ``inferred`` (optional) receives, per tensor whose
    ``Shape`` was folded, ``(Shape node name, inferred shape)`` so the importer can check it."""
    import onnx

    consts = _const_names(model)
    dq = _dequantized(model)
    if not any(n.op_type == "Shape" and n.input[0] not in dq or n.op_type in FOLDABLE
               and n.op_type not in ("Shape", "Constant") and _all_const(n, consts)
               for n in model.graph.node):
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    while _fold_pass(m, {} if inferred is None else inferred):
        pass
    return m


def _const_names(model) -> set:
    names = {i.name for i in model.graph.initializer}
    names.update(n.output[0] for n in model.graph.node if n.op_type == "Constant")
    return names


def _dequantized(model) -> set:
    """Outputs of DequantizeLinear nodes (the importer knows their shapes exactly)."""
    return {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}


def _all_const(node, consts) -> bool:
    return node.op_type == "Constant" or (
        bool(node.input) and all(i == "" or i in consts for i in node.input))


def _fold_pass(m, inferred: dict) -> bool:
    """Fold every node that can be folded now; True when anything was folded."""
    from onnx import numpy_helper

    g = m.graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    dq = _dequantized(m)
    shapes = _static_shapes(m) if any(n.op_type == "Shape" and n.input[0] not in dq
                                      for n in g.node) else {}
    folded, keep = [], []
    for node in g.node:
        value = None
        if node.op_type in FOLDABLE and len(node.output) == 1:
            if node.op_type == "Shape":
                shape = None if node.input[0] in dq else shapes.get(node.input[0])
                value = shape_value(node, shape)
                if value is not None:
                    inferred[node.input[0]] = (node.name or node.output[0], shape)
            elif _all_const(node, values):
                value = evaluate_static(node, [values[i] if i else None for i in node.input])
        if value is None:
            keep.append(node)
            continue
        values[node.output[0]] = value
        folded.append(node)
    if not [n for n in folded if n.op_type != "Constant"]:
        return False
    used = {i for n in keep for i in n.input} | {o.name for o in g.output}
    have = {i.name for i in g.initializer}
    new_inits = [numpy_helper.from_array(np.asarray(values[n.output[0]]), n.output[0])
                 for n in folded if n.output[0] in used and n.output[0] not in have]
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(new_inits)
    del g.value_info[:]
    return True


def _static_shapes(m) -> dict:
    """Fully known tensor shapes from ONNX shape inference, batch fixed to 1 and big
    initializers given by their shape only (inference needs no weight values)."""
    import onnx
    from onnx import helper, shape_inference

    s = onnx.ModelProto()
    s.ir_version, s.producer_name = m.ir_version, m.producer_name
    s.opset_import.extend(m.opset_import)
    g = s.graph
    g.node.extend(m.graph.node)
    g.output.extend(m.graph.output)
    inits = {i.name for i in m.graph.initializer}
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        x = g.input.add()
        x.CopyFrom(vi)
        dims = x.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
    for init in m.graph.initializer:
        if int(np.prod(init.dims)) <= _SMALL:
            g.initializer.append(init)
        else:
            g.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    try:
        inferred = shape_inference.infer_shapes(s, check_type=False, strict_mode=False, data_prop=True)
    except Exception:               # inference gives up on this graph: nothing is known
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    return shapes


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def shape_value(node, shape):
    """The value of ``Shape`` node ``node`` (its ``start``/``end``) of a tensor of ``shape``."""
    if shape is None:
        return None
    a = _attrs(node)
    r = len(shape)
    start, end = a.get("start", 0), a.get("end", r)
    return np.array(shape[slice(start, end)], dtype=np.int64)


def evaluate_static(node, xs):
    """The value of a :data:`FOLDABLE` ``node`` (not ``Shape``) on constant inputs ``xs``
    (None: not foldable, left to the importer)."""
    from onnx import helper, numpy_helper

    op, a = node.op_type, _attrs(node)
    try:
        if op == "Constant":
            if "value" not in a:
                return None
            return numpy_helper.to_array(a["value"])
        if op == "Identity":
            return xs[0]
        if op == "Cast":
            return xs[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))
        if op in ("Add", "Sub", "Mul", "Div"):
            x, y = xs
            if op == "Div" and np.issubdtype(np.result_type(x, y), np.integer):
                q = np.abs(x) // np.abs(y)                    # ONNX integer Div truncates
                return (np.sign(x) * np.sign(y) * q).astype(np.result_type(x, y))
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            return f(x, y).astype(np.result_type(x, y))
        if op == "Gather":
            return np.take(xs[0], xs[1].astype(np.int64), axis=a.get("axis", 0))
        if op == "Concat":
            return np.concatenate([np.atleast_1d(x) for x in xs], axis=a.get("axis", 0))
        if op in ("Unsqueeze", "Squeeze"):
            axes = a.get("axes") if len(xs) < 2 or xs[1] is None else xs[1].tolist()
            x = xs[0]
            if op == "Squeeze":
                return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))
            out_rank = x.ndim + len(axes)
            for ax in sorted(d + out_rank if d < 0 else d for d in axes):
                x = np.expand_dims(x, ax)
            return x
        if op == "Slice":
            return _slice(a, xs)
    except (ValueError, IndexError, KeyError, TypeError):
        return None                   # malformed: the importer reports the node
    return None


def _slice(a: dict, xs):
    x = xs[0]
    if len(xs) > 1:                   # opset ≥ 10: starts, ends, axes, steps are inputs
        starts, ends = xs[1].tolist(), xs[2].tolist()
        axes = xs[3].tolist() if len(xs) > 3 and xs[3] is not None else list(range(len(starts)))
        steps = xs[4].tolist() if len(xs) > 4 and xs[4] is not None else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes = a.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        n = x.shape[ax]
        lo, hi = (-1, n - 1) if st < 0 else (0, n)       # ONNX clamps out-of-range bounds
        s = min(max(s + n if s < 0 else s, lo), hi)
        e = min(max(e + n if e < 0 else e, lo), hi)
        index[ax] = slice(s, e if e >= 0 else None, st)
    return x[tuple(index)]
