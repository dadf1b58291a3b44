"""ONNX import/export: exact round trips of IR graphs, QDQ patterns, and one-line rejections."""
import copy
import logging

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from host.runtime import golden
from host.model.builder import GraphBuilder, smooth_input
from host.errors import UserError
from host.model.ir import FC, Add, Clamp, Conv, Permute, Pool
from host.model.onnx_export import to_onnx
from host.model.onnx_import import input_quant, load_onnx, output_dequant

import onnx_models as M
from host.model.onnx_compare import ort_session

logging.getLogger().setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------
# Seeded random IR graphs
# ---------------------------------------------------------------------------------------------

def random_graph(seed: int):
    """A small seeded network using every operator the IR has, with random clamp bounds."""
    rng = np.random.default_rng(seed)
    c0 = int(rng.choice([1, 3, 4]))
    size = int(rng.integers(9, 16))
    b = GraphBuilder(f"rand{seed}", (c0, size, size), seed=seed)
    x = b.conv(b.input, 6, int(rng.choice([1, 3, 5, 7, 11])), stride=int(rng.integers(1, 3)),
               act=rng.choice(["relu", None]))
    for _ in range(int(rng.integers(3, 7))):
        c, h, w = b.shape(x)
        op = rng.choice(["conv", "dw", "group_shuffle", "pool", "residual", "concat", "relu", "perm"])
        if op == "conv":
            k = int(rng.integers(1, 6))
            x = b.conv(x, int(rng.integers(2, 9)), k, pad=tuple(int(p) for p in rng.integers(0, k, 4)),
                       act=rng.choice(["relu", None]))
        elif op == "dw":
            x = b.conv(x, c, 3, stride=int(rng.integers(1, 3)), groups=c)
        elif op == "group_shuffle" and c % 2 == 0:
            x = b.conv(x, c, 1, groups=2, act=None)
            x = b.shuffle(x, 2)
        elif op == "pool" and min(h, w) >= 3:
            x = b.maxpool(x, 2) if rng.integers(2) else b.avgpool(x, 3, 1, pad=1)
            if b.graph.nodes[-1].kind == "avg":
                b.graph.nodes[-1].count_include_pad = bool(rng.integers(2))
        elif op == "residual":
            y = b.conv(x, c, 3, act=None)
            x = b.add(x, y, act=rng.choice(["relu", None]))
        elif op == "concat":
            y = b.conv(x, int(rng.integers(1, 5)), 1)
            x = b.concat([x, y])
        elif op == "relu":
            x = b.relu(x)
        elif op == "perm":
            x = b.permute(x, rng.permutation(c))
    if rng.integers(2):
        x = b.gap(x) if rng.integers(2) else x
        x = b.flatten(x)
        x = b.fc(x, int(rng.integers(3, 12)), act="relu")
        x = b.fc(x, int(rng.integers(2, 6)))
    g = b.build()
    for n in g.nodes:                         # exercise Clip bounds as well
        if isinstance(n, (Conv, FC, Add)) and rng.random() < 0.3:
            n.lo = int(rng.integers(-128, -20))
            n.hi = int(rng.integers(20, 128))
    return g


def without_noop_clamps(g):
    """``g`` without clamps over the whole int8 range (e.g. ReLU of a tensor whose zero point is
    −128): the importer drops those no-ops, so round trips are compared against this."""
    g = copy.deepcopy(g)
    for n in [n for n in g.nodes if isinstance(n, Clamp) and n.lo <= -128 and n.hi >= 127]:
        g.nodes.remove(n)
        for m in g.nodes:
            m.inputs = [n.inputs[0] if i == n.output else i for i in m.inputs]
        if g.output == n.output:
            g.output = n.inputs[0]
        del g.tensors[n.output]
    return g


def assert_same_integers(g, h):
    """Same operators in the same order with equal integer parameters and quantisation."""
    g = without_noop_clamps(g)
    assert [type(n) for n in g.nodes] == [type(n) for n in h.nodes]
    assert [n.name for n in g.nodes] == [n.name for n in h.nodes]
    for a, b in zip(g.nodes, h.nodes):
        for k in ("weight", "bias", "mult", "shift", "perm"):
            if getattr(a, k, None) is not None:
                np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=f"{a.name}.{k}")
        for k in ("stride", "pads", "groups", "lo", "hi", "kind", "kernel", "count_include_pad"):
            if hasattr(a, k):
                assert getattr(a, k) == getattr(b, k), f"{a.name}.{k}"
        ta, tb = g.tensors[a.output], h.tensors[b.output]
        assert (ta.shape, ta.scale, ta.zero_point) == (tb.shape, tb.scale, tb.zero_point), a.name
    ti, tj = g.input_tensor, h.input_tensor
    assert (ti.shape, ti.scale, ti.zero_point) == (tj.shape, tj.scale, tj.zero_point)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_round_trip_reproduces_integers(seed):
    g = random_graph(seed)
    h = load_onnx(to_onnx(g), fold_clamps=False)
    assert_same_integers(g, h)
    x = smooth_input(g, seed=seed + 100)
    for schedule, block in (("layer", None), ("fused", (4, 5))):
        np.testing.assert_array_equal(golden.run(g, x), golden.run(h, x, schedule=schedule, block=block))


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_uint8_activations(seed):
    g = random_graph(seed)
    g.activation_dtype = "uint8"
    m = to_onnx(g)
    zp = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer if i.name.endswith("_zero_point")}
    act_zps = [v for k, v in zp.items() if not k.endswith(("_w_zero_point", "_b_zero_point"))]
    assert act_zps and all(v.dtype == np.uint8 for v in act_zps)
    h = load_onnx(m, fold_clamps=False)
    assert h.activation_dtype == "uint8"
    assert_same_integers(g, h)


def test_round_trip_without_exact_scale_metadata_is_within_float32():
    """Without the metadata the float32 scales give (almost always) the same multipliers."""
    g = random_graph(4)
    m = to_onnx(g)
    del m.metadata_props[:]
    h = load_onnx(m, fold_clamps=False)
    g = without_noop_clamps(g)
    assert [n.name for n in g.nodes] == [n.name for n in h.nodes]
    for a, b in zip(g.nodes, h.nodes):
        if isinstance(a, (Conv, FC)):
            np.testing.assert_array_equal(a.weight, b.weight)
            assert np.all(np.abs(a.mult - b.mult) <= 2 ** 8) and np.array_equal(a.shift, b.shift)


def test_clamp_after_conv_is_folded():
    b = GraphBuilder("fold", (3, 8, 8), seed=3)
    x = b.conv(b.input, 4, 3, act=None)
    x = b.relu(x)
    x = b.conv(x, 4, 3, act=None)
    g = b.build()
    # GraphBuilder leaves a clamp's output tensor at its build-time quantisation (see report);
    # give it its input's, as a clamp in a QDQ model has
    src, out = g.tensors["conv1"], g.tensors["relu1"]
    out.scale, out.zero_point = src.scale, src.zero_point
    g.finalize()
    h = load_onnx(to_onnx(g))
    assert [n.op for n in h.nodes] == ["conv", "conv"]
    assert h.nodes[0].lo == g.nodes[1].lo and h.nodes[0].hi == 127
    x = smooth_input(g, 1)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(h, x))


def test_relu_and_clip_before_quantize_become_bounds():
    """Conv → Relu/Clip → QuantizeLinear (activation not removed by the quantiser)."""
    b = GraphBuilder("act", (2, 6, 6), seed=4)
    x = b.conv(b.input, 4, 3, act=None)
    x = b.conv(x, 4, 3, act=None)
    g = b.build()
    z = g.tensors[g.nodes[0].output].zero_point
    g.nodes[0].lo, g.nodes[0].hi = z, 127           # Relu
    g.nodes[1].lo, g.nodes[1].hi = -100, 90          # Clip(min, max)
    m = to_onnx(g)
    assert {"Relu", "Clip"} <= {n.op_type for n in m.graph.node}
    h = load_onnx(m)
    assert (h.nodes[0].lo, h.nodes[0].hi) == (z, 127)
    assert (h.nodes[1].lo, h.nodes[1].hi) == (-100, 90)


def test_shuffle_is_imported_as_permute():
    g = load_onnx(M.quantize(M.net_shuffle(), "int8"))
    perms = [n for n in g.nodes if isinstance(n, Permute)]
    assert len(perms) == 1
    np.testing.assert_array_equal(perms[0].perm, np.arange(12).reshape(3, 4).T.ravel())


def test_auto_pad_same_upper_equals_explicit_pads():
    b = GraphBuilder("same", (2, 7, 7), seed=5)
    b.conv(b.input, 3, 4, stride=2, pad=(1, 1, 2, 2), act=None)
    g = b.build()
    m = to_onnx(g)
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    _set_attr(conv, "pads", None)
    _set_attr(conv, "auto_pad", "SAME_UPPER")
    h = load_onnx(m)
    assert h.nodes[0].pads == (1, 1, 2, 2)
    x = smooth_input(g)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(h, x))


def test_dynamic_batch_is_accepted_as_one():
    m = M.quantize(M.NETS["convs"](), "int8")
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    g = load_onnx(m)
    assert g.input_tensor.shape == (3, 12, 12)


def test_input_quant_and_output_dequant_shapes():
    g = random_graph(1)
    x = np.random.default_rng(0).normal(0, 1, (2,) + g.input_tensor.shape).astype(np.float32)
    q = input_quant(g, x)
    assert q.dtype == np.int8 and q.shape == x.shape
    np.testing.assert_array_equal(q, np.clip(np.rint(x / np.float32(g.input_tensor.scale))
                                             + g.input_tensor.zero_point, -128, 127))
    y = output_dequant(g, golden.run(g, q[0]))
    assert y.shape == (1,) + tuple(g.output_tensor.shape) and y.dtype == np.float32
    with pytest.raises(UserError, match="shape"):
        input_quant(g, x[:, :, 1:])
    with pytest.raises(UserError, match="dtype"):
        input_quant(g, x.astype(np.int32))


# ---------------------------------------------------------------------------------------------
# Rejections: one line naming the node
# ---------------------------------------------------------------------------------------------

def _set_attr(node, name, value):
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    if value is not None:
        node.attribute.append(helper.make_attribute(name, value))


def _small_model():
    b = GraphBuilder("small", (3, 8, 8), seed=9)
    x = b.conv(b.input, 6, 3, name="conv_7")
    y = b.conv(x, 6, 1, groups=3, act=None)
    y = b.shuffle(y, 3)
    x = b.concat([x, y])
    x = b.gap(x)
    x = b.flatten(x)
    b.fc(x, 4)
    return to_onnx(b.build())


def _node(m, op):
    return next(n for n in m.graph.node if n.op_type == op)


def _expect_one_line(m, *fragments):
    with pytest.raises(UserError) as e:
        load_onnx(m)
    text = str(e.value)
    assert "\n" not in text and text
    for f in fragments:
        assert f in text, text
    return text


def test_small_model_loads():
    g = load_onnx(_small_model())
    assert [n.op for n in g.nodes] == ["conv", "conv", "permute", "concat", "gap", "flatten", "fc"]


def test_rejects_dilation():
    m = _small_model()
    _set_attr(_node(m, "Conv"), "dilations", [2, 2])
    _expect_one_line(m, "node 'conv_7' (Conv): dilations [2, 2] are not supported")


def test_rejects_unsupported_operator():
    m = _small_model()
    _node(m, "GlobalAveragePool").op_type = "GlobalLpPool"
    _expect_one_line(m, "(GlobalLpPool)", "operator GlobalLpPool is not supported")


def test_rejects_softmax_of_quantize_static_model():
    model = M.net_head()
    model.graph.node.append(helper.make_node("Softmax", [model.graph.output[0].name], ["prob"], name="softmax"))
    model.graph.output[0].name = "prob"
    q = M.quantize(model, "int8")
    _expect_one_line(q, "softmax", "Softmax")


def test_rejects_concat_on_other_axis():
    m = _small_model()
    _set_attr(_node(m, "Concat"), "axis", 2)
    _expect_one_line(m, "(Concat)", "axis 2")


def test_rejects_other_transpose():
    m = _small_model()
    _set_attr(_node(m, "Transpose"), "perm", [0, 1, 2, 4, 3])
    _expect_one_line(m, "(Transpose)", "perm [0, 1, 2, 4, 3]")


def test_rejects_dynamic_spatial_shape():
    m = _small_model()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    _expect_one_line(m, "dynamic dimension 2 ('H')")


def test_rejects_batch_two():
    m = _small_model()
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    _expect_one_line(m, "batch size 2")


def test_rejects_float_weights():
    m = _small_model()
    conv = _node(m, "Conv")
    m.graph.initializer.append(numpy_helper.from_array(np.ones((6, 3, 3, 3), np.float32), "wf"))
    conv.input[1] = "wf"
    _expect_one_line(m, "node 'conv_7' (Conv)", "not quantised")


def test_rejects_unquantised_output():
    m = _small_model()
    last_q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"][-1]
    gemm = _node(m, "Gemm")
    m.graph.output[0].name = gemm.output[0]
    m.graph.node.remove(last_q)
    m.graph.node.remove([n for n in m.graph.node if n.op_type == "DequantizeLinear"][-1])
    _expect_one_line(m, "not quantised")


def test_rejects_pad_not_before_conv():
    m = _small_model()
    gap = _node(m, "GlobalAveragePool")
    m.graph.initializer.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pp"))
    pad = helper.make_node("Pad", [gap.input[0], "pp"], ["padded"], name="pad_0")
    m.graph.node.insert(list(m.graph.node).index(gap), pad)
    gap.input[0] = "padded"
    _expect_one_line(m, "(GlobalAveragePool)", "only supported directly before a Conv")


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage\xff\xfe" * 10, b"not an onnx model at all"])
def test_rejects_corrupt_file(tmp_path, content):
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(UserError) as e:
        load_onnx(p)
    assert "\n" not in str(e.value)


def test_rejects_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_onnx(tmp_path / "nope.onnx")
    with pytest.raises(UserError, match="directory"):
        load_onnx(tmp_path)


def test_constant_nodes_instead_of_initializers():
    """Scales and zero points given by Constant nodes (as some exporters write them)."""
    g = random_graph(2)
    m = to_onnx(g)
    moved = [i for i in m.graph.initializer if i.name.endswith(("_scale", "_zero_point"))]
    for init in moved:
        m.graph.initializer.remove(init)
    consts = [helper.make_node("Constant", [], [i.name], name=f"const_{i.name}", value=i) for i in moved]
    nodes = consts + list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    h = load_onnx(m, fold_clamps=False)
    assert_same_integers(g, h)


def test_malformed_attribute_is_one_line_naming_the_node():
    m = _small_model()
    _set_attr(_node(m, "Conv"), "strides", [1])
    _expect_one_line(m, "node 'conv_7' (Conv)", "strides [1]")


def _with_pad_before_conv(m, pads_hw, mode="constant", value=None):
    """Move the first Conv's padding into a Pad node (pads_hw: top, left, bottom, right)."""
    conv = _node(m, "Conv")
    t, l, b, r = pads_hw
    m.graph.initializer.append(numpy_helper.from_array(np.array([0, 0, t, l, 0, 0, b, r], np.int64), "pp"))
    ins = [conv.input[0], "pp"]
    if value is not None:
        m.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), "pv"))
        ins.append("pv")
    pad = helper.make_node("Pad", ins, ["padded"], name="pad_0", mode=mode)
    m.graph.node.insert(list(m.graph.node).index(conv), pad)
    conv.input[0] = "padded"
    _set_attr(conv, "pads", [0, 0, 0, 0])
    return m


def test_zero_pad_before_conv_is_folded():
    b = GraphBuilder("padconv", (3, 7, 7), seed=6)
    b.conv(b.input, 4, 3, pad=(1, 2, 2, 1), act=None, name="conv_7")
    g = b.build()
    h = load_onnx(_with_pad_before_conv(to_onnx(g), (1, 2, 2, 1)))
    assert [n.op for n in h.nodes] == ["conv"] and h.nodes[0].pads == (1, 2, 2, 1)
    x = smooth_input(g)
    np.testing.assert_array_equal(golden.run(g, x), golden.run(h, x))


def test_quantize_static_pad_conv_matches_onnx_runtime():

    n = M._Net("pad", (1, 3, 7, 7), 0)
    n.nodes.append(helper.make_node("Pad", ["x", n._const("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))],
                                    ["xp"], name="pad_0", mode="constant"))
    n.shapes["xp"] = (1, 3, 10, 10)
    out = n.conv("xp", 4, 3, pad=(0, 0, 0, 0), act="relu")
    m = M.quantize(n.model(out), "uint8")
    g = load_onnx(m)
    assert g.nodes[0].pads == (1, 2, 2, 1)
    x = np.random.default_rng(2).normal(0, 1, (1, 3, 7, 7)).astype(np.float32)
    ref = ort_session(m).run(None, {"x": x})[0]
    y = output_dequant(g, golden.run(g, input_quant(g, x)[0]))
    assert np.abs(y - ref).max() <= g.output_tensor.scale * 1.001


@pytest.mark.parametrize("mode,value,fragment", [("reflect", None, "pads mode 'reflect' is not supported"),
                                                 ("constant", 0.5, "padding value 0.5")])
def test_rejects_other_pads(mode, value, fragment):
    m = _with_pad_before_conv(_small_model(), (1, 1, 1, 1), mode, value)
    _expect_one_line(m, "node 'pad_0' (Pad)", fragment)


def test_rejects_qoperator_format_with_a_hint():
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # noqa: F401
    import tempfile
    from pathlib import Path

    model = M.net_convs()
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        onnx.save(model, src)

        class Reader:
            def __init__(self):
                self.it = iter(M.calibration_data((1, 3, 12, 12)))

            def get_next(self):
                x = next(self.it, None)
                return None if x is None else {"x": x}

        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QOperator,
                        per_channel=True, weight_type=QuantType.QInt8)
        _expect_one_line(onnx.load(str(dst)), "QLinearConv", "QuantFormat.QDQ")


def test_rejects_asymmetric_weights():
    m = _small_model()
    zp = next(i for i in m.graph.initializer if i.name == "conv_7_w_zero_point")
    zp.CopyFrom(numpy_helper.from_array(np.full(6, 3, np.int8), zp.name))
    _expect_one_line(m, "node 'conv_7' (Conv)", "weights must be symmetric")


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_model_with_quantised_output_gives_codes_like_onnx_runtime(act):
    """A model whose output is the last QuantizeLinear (int codes, no DequantizeLinear)."""
    m = M.quantize(M.net_flat_fc(), act)
    last_dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"][-1]
    m.graph.node.remove(last_dq)
    m.graph.output[0].name = last_dq.input[0]
    m.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.UINT8 if act == "uint8" else onnx.TensorProto.INT8
    g = load_onnx(m)
    x = np.random.default_rng(1).normal(0, 1, (1, 2, 6, 6)).astype(np.float32)
    ref = ort_session(m).run(None, {"x": x})[0]
    y = output_dequant(g, golden.run(g, input_quant(g, x)[0]))
    assert y.dtype == np.float32 and np.abs(y - ref.astype(np.float32)).max() <= 1
    assert ref.dtype == (np.uint8 if act == "uint8" else np.int8)
