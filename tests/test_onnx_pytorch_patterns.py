"""ONNX graphs in the patterns PyTorch exports and ``quantize_static`` leaves, without PyTorch:
computed view shapes, channel split (Split, Slice), ``ceil_mode`` pooling, ReduceMean and global
max pooling, the small pass-through ops, and the one-line declines.

The networks (``onnx_models.net_shufflev2``, ``net_inception``, ``net_heads``) also run in the
ONNX Runtime cross-checks of ``test_onnx_runtime_crosscheck.py`` (layer by layer, ``layer`` and
``fused``); here the ``block`` schedule is checked against ONNX Runtime run on every block.
"""
import logging
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.runtime import golden
from host.errors import UserError
from host.model.ir import ChannelSlice, Flatten, GlobalMaxPool, Permute, Pool, shuffle_perm
from host.model.onnx_compare import layer_deviations, ort_codes, ort_session, requantising_layers
from host.model.onnx_fold import evaluate_static
from host.model.onnx_import import input_quant, load_onnx, output_dequant
from host.compiler.plan import Group, Plan, PlanError, default_plan
from host.compiler.scheduler import plan_network

import onnx_models as M
from test_onnx_runtime_crosscheck import quantised

logging.getLogger().setLevel(logging.ERROR)

PATTERN_NETS = ["shufflev2", "inception", "heads"]


# ---------------------------------------------------------------------------------------------
# Folding
# ---------------------------------------------------------------------------------------------

def _one_node_model(node, inputs: dict):
    out_type = TensorProto.FLOAT if node.op_type == "Cast" else TensorProto.INT64
    g = helper.make_graph([node], "t", [], [helper.make_tensor_value_info(node.output[0], out_type, None)],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inputs.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _random_fold_case(rng):
    a = rng.integers(-20, 21, int(rng.integers(1, 6))).astype(np.int64)
    b = rng.integers(1, 7, a.size).astype(np.int64) * rng.choice([-1, 1], a.size)
    op = rng.choice(["Add", "Sub", "Mul", "Div", "Gather", "Concat", "Slice", "Unsqueeze", "Squeeze",
                     "Cast"])
    if op in ("Add", "Sub", "Mul", "Div"):
        return helper.make_node(op, ["a", "b"], ["y"]), {"a": a, "b": b}
    if op == "Gather":
        return helper.make_node(op, ["a", "i"], ["y"], axis=0), \
            {"a": a, "i": rng.integers(-a.size, a.size, int(rng.integers(1, 4))).astype(np.int64)}
    if op == "Concat":
        return helper.make_node(op, ["a", "b"], ["y"], axis=0), {"a": a, "b": b}
    if op == "Slice":
        n = a.size
        s, e = rng.integers(-n - 2, n + 2, 2)
        step = int(rng.choice([-2, -1, 1, 2]))
        return helper.make_node(op, ["a", "s", "e", "ax", "st"], ["y"]), \
            {"a": a, "s": np.array([s]), "e": np.array([e]), "ax": np.array([0]), "st": np.array([step])}
    if op == "Unsqueeze":
        return helper.make_node(op, ["a", "ax"], ["y"]), {"a": a, "ax": np.array([int(rng.choice([0, 1, -1]))])}
    if op == "Squeeze":
        return helper.make_node(op, ["a", "ax"], ["y"]), {"a": a[None, :, None], "ax": np.array([0, 2])}
    return helper.make_node("Cast", ["a"], ["y"], to=TensorProto.FLOAT), {"a": a}


@pytest.mark.parametrize("seed", range(30))
def test_folding_evaluates_shape_arithmetic_as_onnx_runtime(seed):
    """Integer Div truncates, Slice clamps and steps backwards, Gather takes negative indices."""
    node, inputs = _random_fold_case(np.random.default_rng(300 + seed))
    ref = ort_session(_one_node_model(node, inputs)).run(None, {})[0]
    ours = evaluate_static(node, [inputs[i] for i in node.input])
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


def test_computed_shapes_import_like_constant_shapes():
    """A shuffle whose view shapes come from Shape/Gather/Div/Cast/Concat imports to the same
    graph as the constant-shape form."""
    def net(computed):
        n = M._Net("s", (1, 4, 7, 7), seed=3)
        x = n.conv("x", 12, 3, act="relu")
        x = n.shuffle_computed(x, 3) if computed else n.shuffle(x, 3)
        return n.model(n.conv(x, 6, 3, groups=3, act="relu"))

    a, b = (load_onnx(M.quantize(net(c), "int8")) for c in (False, True))
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes] == ["conv", "permute", "conv"]
    np.testing.assert_array_equal(b.nodes[1].perm, shuffle_perm(12, 3))
    x = np.random.default_rng(0).integers(-128, 128, a.input_tensor.shape).astype(np.int8)
    np.testing.assert_array_equal(golden.run(a, x), golden.run(b, x))


def test_pattern_nets_import_to_the_ir_operations():
    g = load_onnx(quantised("shufflev2", "int8"))
    slices = [(n.start, n.stop) for n in g.nodes if isinstance(n, ChannelSlice)]
    assert slices == [(0, 8), (8, 16)] * 3
    perms = [n for n in g.nodes if isinstance(n, Permute)]
    assert len(perms) == 4 and all(np.array_equal(p.perm, shuffle_perm(16, 2)) for p in perms)
    assert isinstance(g.nodes[-2], Flatten) and g.tensors[g.nodes[-2].output].shape == (24,)
    g = load_onnx(quantised("heads", "int8"))
    perm = next(n for n in g.nodes if isinstance(n, Permute)).perm
    np.testing.assert_array_equal(perm, np.arange(12).reshape(2, 3, 2).transpose(2, 0, 1).ravel())
    assert any(isinstance(n, GlobalMaxPool) for n in g.nodes)
    g = load_onnx(quantised("inception", "int8"))
    pools = [n for n in g.nodes if isinstance(n, Pool)]
    assert [g.tensors[p.output].shape[1] for p in pools] == [8, 8, 3, 5, 3]
    assert [p.ceil_extra for p in pools] == [(1, 1), (0, 0), (0, 0), (1, 1), (1, 1)]


# ---------------------------------------------------------------------------------------------
# Block schedule against ONNX Runtime run on every block
# ---------------------------------------------------------------------------------------------

def _ort_per_block(model, out_name: str, x: np.ndarray, block, elem) -> np.ndarray:
    """``out_name`` of ``model`` computed by ONNX Runtime on every block of the input ``x`` as
    its own image (pruned to what ``out_name`` needs, input H and W left free), stitched."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    need, keep = {out_name}, []
    for n in reversed(m.graph.node):
        if any(o in need for o in n.output):
            keep.append(n)
            need.update(n.input)
    del m.graph.node[:]
    m.graph.node.extend(reversed(keep))
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(out_name, elem, None))
    del m.graph.value_info[:]
    for d, name in zip(m.graph.input[0].type.tensor_type.shape.dim[2:], "HW"):
        d.dim_param = name
    sess = ort_session(m)
    bh, bw = block
    rows = []
    for y0 in range(0, x.shape[2], bh):
        rows.append(np.concatenate([sess.run(None, {m.graph.input[0].name: x[:, :, y0:y0 + bh, x0:x0 + bw]})[0]
                                    for x0 in range(0, x.shape[3], bw)], axis=3))
    return np.concatenate(rows, axis=2)[0]


@pytest.mark.parametrize("name,block,ops", [("shufflev2", (16, 16), {"slice", "permute", "concat"}),
                                           ("inception", (8, 8), {"maxpool", "concat"}),
                                           ("heads", (4, 4), {"permute"})])
def test_block_schedule_matches_onnx_runtime_per_block(name, block, ops):
    """The longest run of the network's first layers that the blocks tile (including the
    pattern operators ``ops``), under ``block``, is within 1 LSB per requantising layer of ONNX
    Runtime run on each block as its own image."""
    model = quantised(name, "int8")
    g = load_onnx(model)
    x = np.random.default_rng(21).normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32)
    xq = input_quant(g, x)[0]
    first = default_plan(g, "block", block).groups[0].nodes
    for k in range(len(first), 0, -1):
        t = g.node(first[k - 1]).output
        if t not in g.onnx_names:
            continue
        plan = Plan("block", [Group(first[:k], block)] + [Group([n.name]) for n in g.nodes[k:]])
        try:
            ours = golden.run(g, xq, plan=plan, keep=True)[t]
            break
        except PlanError:
            continue
    assert ops <= {g.node(n).op for n in first[:k]}, f"only {first[:k]} tile with {block} blocks"
    ref = _ort_per_block(model, g.onnx_names[t], x, block, TensorProto.INT8)
    layers = requantising_layers(SimpleNamespace(nodes=[g.node(n) for n in first[:k]]))
    assert ref.shape == ours.shape
    assert np.abs(ours.astype(np.int16) - ref).max() <= layers
    # blocks really change the function: the whole image gives other codes at the seams
    whole = golden.run(g, xq, keep=True)[t]
    assert not np.array_equal(whole, ours)


@pytest.mark.parametrize("name", PATTERN_NETS)
def test_scheduler_plans_run_on_pattern_nets(name):
    """``blockfuse plan``'s planner accepts channel slices and global max pools; its fused and
    layer plans give the layer schedule's result exactly, its block plan runs."""
    g = load_onnx(quantised(name, "uint8"))
    x = np.random.default_rng(4).integers(-128, 128, g.input_tensor.shape).astype(np.int8)
    ref = golden.run(g, x)
    for schedule in ("layer", "fused", "block"):
        plan, report = plan_network(g, "ulx3s-12f", schedule)
        y = golden.run(g, x, plan=plan)
        if schedule != "block":
            np.testing.assert_array_equal(y, ref)
        slices = [r for r in report["layers"] if r["name"] in {n.name for n in g.nodes if isinstance(n, ChannelSlice)}]
        assert all(r["cycles"] == 0 for r in slices)


# ---------------------------------------------------------------------------------------------
# ceil_mode average pooling that counts the padding
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_ceil_mode_average_counting_padding_matches_onnx_semantics(act):
    n = M._Net("avgceil", (1, 3, 12, 12), seed=5)
    x = n.conv("x", 6, 3, act="relu")
    x = n.pool_ceil(x, "avg", 3, 2, pad=1, count_include_pad=1)        # 12 → 7 (ceil adds one)
    x = n.conv(x, 6, 3, act="relu")
    x = n.pool_ceil(x, "avg", 2, 2, count_include_pad=1)                # 7 → 4
    model = M.quantize(n.model(n.pool_ceil(x, "max", 3, 2, pad=1)), act)  # 4 → 3
    g = load_onnx(model, fold_clamps=False)
    assert [p.ceil_extra for p in g.nodes if isinstance(p, Pool)] == [(1, 1)] * 3
    xf = np.random.default_rng(8).normal(0, 1, (1, 3, 12, 12)).astype(np.float32)
    # ONNX Runtime without graph optimisations runs DequantizeLinear → float AveragePool →
    # QuantizeLinear, the graph's ONNX semantics; its fused QLinearAveragePool (the default
    # session) divides windows that overhang the end padding by the whole kernel, unlike its
    # float AveragePool and PyTorch
    codes, ref = ort_codes(model, g, xf, session=lambda m: ort_session(m, optimize=False))
    for node in g.nodes:
        ours = golden.eval_whole(g, node, [codes[i] for i in node.inputs]).astype(np.int16)
        assert np.abs(ours - codes[node.output]).max() <= 1, node.name
    for schedule in ("layer", "fused"):
        y = output_dequant(g, golden.run(g, input_quant(g, xf)[0], schedule=schedule, block=(4, 4)))
        assert np.abs(y - ref).max() / g.output_tensor.scale <= requantising_layers(g) + 1e-3


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_float_mean_reshaped_before_its_quantize_linear(act):
    """``torch.export``'s adaptive average pooling: ReduceMean (left in float by quantize_static)
    → Reshape to (N, −1) with N from a Shape of the float mean → QuantizeLinear → Gemm."""
    n = M._Net("tail", (1, 3, 9, 9), seed=6)
    x = n.conv(n.conv("x", 8, 3, act="relu"), 12, 3, stride=2, act="relu")
    model = M.quantize(n.model(n.gemm(n.view_batch_flat(n.reduce_mean(x, keepdims=1)), 7)), act)
    mean = next(d for d in model.graph.node if d.op_type == "ReduceMean").output[0]
    assert any(d.op_type == "Shape" and d.input[0] == mean for d in model.graph.node)   # float input
    g = load_onnx(model)
    assert [d.op for d in g.nodes] == ["conv", "conv", "gap", "flatten", "fc"]
    xf = np.random.default_rng(9).normal(0, 1, (1, 3, 9, 9)).astype(np.float32)
    codes, ref = ort_codes(model, g, xf)
    dev, _ = layer_deviations(g, codes)
    assert max(dev.values()) <= 1
    y = output_dequant(g, golden.run(g, input_quant(g, xf)[0]))
    assert np.abs(y - ref).max() / g.output_tensor.scale <= requantising_layers(g) + 1e-3


# ---------------------------------------------------------------------------------------------
# Declines: one line naming the node and the operator
# ---------------------------------------------------------------------------------------------

def _decline(model, *fragments):
    with pytest.raises(UserError) as e:
        load_onnx(model)
    text = str(e.value)
    assert "\n" not in text and "Traceback" not in text
    for f in fragments:
        assert f in text, text


def _net_with(op_builder):
    n = M._Net("d", (1, 3, 8, 8), seed=1)
    x = n.conv("x", 4, 3, act="relu")
    return n, n.conv(op_builder(n, x), 4, 3)


@pytest.mark.parametrize("op,fragment", [
    ("Sigmoid", "operator Sigmoid is not supported"), ("HardSigmoid", "operator HardSigmoid is not supported"),
    ("HardSwish", "operator HardSwish is not supported"), ("Mul", "Mul of two activations"),
    ("Resize", "operator Resize (upsampling) is not supported")])
def test_operators_without_hardware_are_declined(op, fragment):
    def build(n, x):
        if op == "Mul":
            return n._op("Mul", [x, n.conv(x, 4, 1)], n.shapes[x])
        if op == "Resize":
            scales = n._const("scales", np.array([1, 1, 2, 2], np.float32))
            s = n.shapes[x]
            return n._op("Resize", [x, "", scales], (s[0], s[1], 2 * s[2], 2 * s[3]), mode="nearest")
        return n._op(op, [x], n.shapes[x])
    n, y = _net_with(build)
    node = next(d for d in n.nodes if d.op_type == op)
    _decline(M.quantize(n.model(y), "int8"), f"node '{node.name}' ({op})", fragment)


def test_final_softmax_is_declined_saying_the_logits_are_its_input():
    model = M.net_head()
    model.graph.node.append(helper.make_node("Softmax", [model.graph.output[0].name], ["prob"], name="prob"))
    model.graph.output[0].name = "prob"
    _decline(M.quantize(model, "int8"), "node 'prob' (Softmax)", "logits", "without the final Softmax")


def _mutate(name, op, change):
    m = onnx.ModelProto()
    m.CopyFrom(quantised(name, "int8"))
    node = next(n for n in m.graph.node if n.op_type == op)
    change(m, node)
    return m, node


def _set(node, attr, value):
    for a in list(node.attribute):
        if a.name == attr:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(attr, value))


def _const_input(m, node, k, value):
    name = f"{node.name}_in{k}"
    while len(node.input) <= k:
        node.input.append("")
    m.graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
    node.input[k] = name


@pytest.mark.parametrize("name,op,change,fragment", [
    ("shufflev2", "Split", lambda m, n: _set(n, "axis", 2), "axis 2 is not supported"),
    ("shufflev2", "Slice", lambda m, n: (_const_input(m, n, 2, [4]), _const_input(m, n, 3, [3])),
     "only a channel range"),
    ("shufflev2", "Slice", lambda m, n: _const_input(m, n, 4, [2]), "step 2 on axis 1 is not supported"),
    ("shufflev2", "ReduceMean", lambda m, n: _set(n, "axes", [1, 2]), "axes [1, 2] are not supported"),
    ("heads", "Transpose", lambda m, n: _set(n, "perm", [0, 1, 2, 3, 5, 4]), "perm [0, 1, 2, 3, 5, 4]"),
    ("inception", "Dropout", lambda m, n: _const_input(m, n, 2, True), "training mode"),
    ("heads", "Squeeze", lambda m, n: _const_input(m, n, 1, [1]), "cannot be squeezed"),
])
def test_unsupported_variants_are_declined(name, op, change, fragment):
    m, node = _mutate(name, op, change)
    _decline(m, f"({op})", fragment)


def test_flatten_keeps_the_batch_axis_first():
    """Flatten to (N, features) for any axis whose leading dimensions are 1; else declined."""
    m, node = _mutate("heads", "Squeeze", lambda m, n: None)
    node.op_type = "Flatten"
    del node.input[1:]
    for axis, ok in ((1, True), (-3, True), (2, False), (4, False), (0, False)):
        _set(node, "axis", axis)
        if ok:                                  # (1, 24, 1, 1) → (1, 24); axis 2 gives (24, 1)
            assert load_onnx(m).nodes[-2].op == "flatten"
        else:
            _decline(m, "(Flatten)", f"axis {axis}")


def test_shape_that_onnx_shape_inference_gets_wrong_is_declined():
    """A Shape of an unquantised ceil_mode max pool whose last window is dropped: ONNX shape
    inference gives the size without the drop, the import catches it instead of folding it."""
    n = M._Net("drop", (1, 3, 8, 8), seed=2)
    x = n.conv("x", 4, 3, act="relu")
    x = n.view_batch_flat(n.pool_ceil(x, "max", 3, 3, pad=1))
    ops = ["Conv", "Gemm", "Relu"]
    model = M.quantize(n.model(n.gemm(x, 5)), "int8", op_types=ops)
    _decline(model, "(Shape)", "ONNX shape inference gives [1, 4, 4, 4]", "[1, 4, 3, 3]")
