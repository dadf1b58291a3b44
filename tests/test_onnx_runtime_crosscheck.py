"""Cross-checks of the golden model against ONNX Runtime (`docs/numerics.md`).

(a) Integer accumulators equal ``ConvInteger`` / ``MatMulInteger`` exactly on randomised shapes.
(b) QDQ models built here and quantised by ``quantize_static``, imported and run by the golden
    model: every quantised layer, fed ONNX Runtime's own int8 input codes, is within 1 LSB of
    ONNX Runtime's output codes, and the end result within 1 LSB per quantised layer.
"""
import logging

import numpy as np
import pytest
from onnx import numpy_helper, TensorProto, helper

from host.model import zoo
from host.runtime import golden
from host.model.ir import FC, Conv, UnsupportedModel
from host.model.onnx_compare import ort_codes, ort_session, requantising_layers
from host.model.onnx_import import input_quant, load_onnx, output_dequant

import onnx_models as M

logging.getLogger().setLevel(logging.ERROR)       # quantize_static's pre-processing advice


def _int_model(node, inputs, out_type=TensorProto.INT32, constants=()):
    """One integer operator; ``constants``: its initializers (weights, as in a real model)."""
    g = helper.make_graph([node], "t", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info("y", out_type, None)],
                          initializer=list(constants))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _x_codes(rng, x_int8, zx):
    """Feed int8 codes as int8, or (randomly) as uint8 with everything shifted by 128 —
    identical accumulators, exercises both of ONNX Runtime's input types."""
    if rng.integers(2):
        return x_int8, np.array(zx, np.int8), TensorProto.INT8
    return (x_int8.astype(np.int16) + 128).astype(np.uint8), np.array(zx + 128, np.uint8), TensorProto.UINT8


# ---------------------------------------------------------------------------------------------
# (a) accumulators
# ---------------------------------------------------------------------------------------------

def random_conv(rng):
    kind = rng.choice(["std", "group", "depthwise"])
    k = int(rng.choice([1, 2, 3, 5, 7, 11])) if rng.random() < 0.8 else int(rng.integers(1, 12))
    if kind == "std":
        g, cin, cout = 1, int(rng.integers(1, 6)), int(rng.integers(1, 7))
    elif kind == "group":
        g = int(rng.integers(2, 4))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    else:
        g = cin = cout = int(rng.integers(2, 7))
    pads = tuple(int(p) for p in rng.integers(0, k, 4)) if rng.random() < 0.8 else (0, 0, 0, 0)
    h = max(1, k - pads[0] - pads[2]) + int(rng.integers(0, 6))
    w = max(1, k - pads[1] - pads[3]) + int(rng.integers(0, 6))
    if rng.random() < 0.15:       # 1×1 maps
        h = w = 1
        pads = tuple(int(p) for p in rng.integers(max(0, k - 1) // 2, k, 4)) if k > 1 else (0, 0, 0, 0)
        pads = (pads[0], pads[1], max(0, k - 1 - pads[0]), max(0, k - 1 - pads[1]))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    x = rng.integers(-128, 128, (cin, h, w)).astype(np.int8)
    wt = rng.integers(-127, 128, (cout, cin // g, k, k)).astype(np.int8)
    zx = int(rng.integers(-128, 128))
    return x, wt, zx, stride, pads, g


@pytest.mark.parametrize("seed", range(40))
def test_conv_accumulators_equal_convinteger(seed):
    rng = np.random.default_rng(1000 + seed)
    x, wt, zx, stride, pads, g = random_conv(rng)
    xc, zc, xtype = _x_codes(rng, x, zx)
    node = helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], pads=[pads[0], pads[1], pads[2], pads[3]],
                            strides=list(stride), group=g, kernel_shape=list(wt.shape[2:]))
    m = _int_model(node, [("x", xtype, (1,) + x.shape), ("w", TensorProto.INT8, wt.shape), ("xz", xtype, ())])
    ref = ort_session(m).run(None, {"x": xc[None], "w": wt, "xz": zc})[0][0]
    # golden: pad with zx, Σx·w, then the zero-point fold of the bias (bias 0): −zx·Σw
    t, l, b, r = pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r)), constant_values=zx)
    conv = Conv("c", ["x"], "y", weight=wt, bias=np.zeros(wt.shape[0], np.int32))
    ours = golden.conv_acc_padded(wt, xp, stride, g) + conv.folded_bias(zx)[:, None, None]
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref.astype(np.int64))


@pytest.mark.parametrize("seed", range(12))
def test_fc_accumulators_equal_matmulinteger(seed):
    rng = np.random.default_rng(2000 + seed)
    n_in, n_out = int(rng.integers(1, 300)), int(rng.integers(1, 40))
    x = rng.integers(-128, 128, n_in).astype(np.int8)
    wt = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    zx = int(rng.integers(-128, 128))
    xc, zc, xtype = _x_codes(rng, x, zx)
    node = helper.make_node("MatMulInteger", ["x", "w", "xz"], ["y"])
    # the weights a constant, as in a model: ONNX Runtime's exact path on CPUs without VNNI
    # (``ort_session``) applies to constant weights only; fed as an input, its u8×s8 kernel
    # saturates there
    m = _int_model(node, [("x", xtype, (1, n_in)), ("xz", xtype, ())],
                   constants=[numpy_helper.from_array(np.ascontiguousarray(wt.T), "w")])
    ref = ort_session(m).run(None, {"x": xc[None], "xz": zc})[0][0]
    fc = FC("f", ["x"], "y", weight=wt, bias=np.zeros(n_out, np.int32))
    np.testing.assert_array_equal(golden.fc_acc(fc, x, zx), ref.astype(np.int64))


def test_conv_accumulator_check_detects_a_wrong_zero_point():
    """The comparison above is sensitive: forgetting the zero-point fold breaks it."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (3, 6, 6)).astype(np.int8)
    wt = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    node = helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], pads=[1, 1, 1, 1])
    m = _int_model(node, [("x", TensorProto.INT8, (1, 3, 6, 6)), ("w", TensorProto.INT8, wt.shape),
                          ("xz", TensorProto.INT8, ())])
    ref = ort_session(m).run(None, {"x": x[None], "w": wt, "xz": np.array(5, np.int8)})[0][0]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=5)
    assert not np.array_equal(golden.conv_acc_padded(wt, xp), ref)


# ---------------------------------------------------------------------------------------------
# (b) QDQ models through the importer and the golden model
# ---------------------------------------------------------------------------------------------

_MODELS = {}


#: quantise everything but Relu/Clip: they stay float ops between Q/DQ pairs (own scales)
FLOAT_ACT_OPS = ["Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Concat", "Reshape",
                 "Transpose", "Flatten", "Gemm", "MatMul"]


def quantised(name: str, act: str):
    """Cached quantize_static result for a test network (deterministic).  ``act`` is "int8" or
    "uint8", optionally with "+float_relu" (Relu/Clip not quantised), "+per_tensor" (one weight
    scale per layer) or "+symmetric" (activation zero points 0)."""
    if act not in _MODELS.setdefault(name, {}):
        base, _, variant = act.partition("+")
        ops = FLOAT_ACT_OPS if variant == "float_relu" else None
        extra = {"ActivationSymmetric": True} if variant == "symmetric" else None
        _MODELS[name][act] = M.quantize(M.NETS[name](), base, op_types=ops,
                                        per_channel=variant != "per_tensor", extra_options=extra)
    return _MODELS[name][act]


CASES = [(n, a) for n in M.NETS for a in ("int8", "uint8")] + \
    [("convs", "uint8+float_relu"), ("shuffle", "int8+float_relu"), ("flatfc", "uint8+float_relu"),
     ("convs", "int8+float_relu"), ("mobile", "uint8+per_tensor"), ("head", "int8+per_tensor"),
     ("shuffle", "int8+symmetric")]


@pytest.mark.parametrize("name,act", CASES)
def test_qdq_model_layer_by_layer_within_1_lsb(name, act):
    model = quantised(name, act)
    g = load_onnx(model, fold_clamps=False)     # keep float Relus apart: ORT has their inputs
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32)
    x.reshape(-1)[::7] *= 20                      # some inputs saturate the first QuantizeLinear
    codes, ref = ort_codes(model, g, x)
    np.testing.assert_array_equal(input_quant(g, x)[0], codes[g.input])
    # each node runs on ONNX Runtime's codes for its inputs; tensors ONNX Runtime does not have
    # (a rescale the importer inserted before a float Relu) come from our own previous node
    feed = dict(codes)
    for n in g.nodes:
        ours = golden.eval_whole(g, n, [feed[i] for i in n.inputs])
        if n.output not in codes:
            feed[n.output] = ours
            continue
        diff = np.abs(ours.astype(np.int16) - codes[n.output])
        assert diff.max() <= 1, f"{n.name}: {diff.max()} LSB from ONNX Runtime"
        if isinstance(n, (Conv, FC)) and diff.size >= 50:
            assert (diff == 0).mean() > 0.9, f"{n.name}: too many off-by-one results"
    # the model's float output (after a trailing float Relu when that was left unquantised)
    lsb = np.abs(output_dequant(g, feed[g.output]).astype(np.float64) - ref) / g.output_tensor.scale
    assert lsb.max() <= 1 + 1e-3


@pytest.mark.parametrize("name,act", CASES)
@pytest.mark.parametrize("schedule", ["layer", "fused"])
def test_qdq_model_end_to_end_within_1_lsb_per_layer(name, act, schedule):
    model = quantised(name, act)
    g = load_onnx(model)
    rng = np.random.default_rng(12)
    x = rng.normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32)
    ref = ort_session(model).run(None, {g.onnx_io[0]: x})[0]
    y = golden.run(g, input_quant(g, x)[0], schedule=schedule, block=(4, 4) if schedule == "fused" else None)
    out = output_dequant(g, y)
    assert out.shape == ref.shape and out.dtype == np.float32
    lsb = np.abs(out.astype(np.float64) - ref) / g.output_tensor.scale
    assert lsb.max() <= requantising_layers(g) + 1e-3
    assert lsb.mean() < 0.5


def test_end_to_end_check_detects_a_wrong_layer():
    """Sanity of the harness: a wrong bias in a middle layer is visible."""
    model = quantised("convs", "int8")
    g = load_onnx(model)
    x = np.random.default_rng(3).normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32)
    codes, _ = ort_codes(model, g, x)
    n = g.nodes[1]
    n.bias = n.bias + 40 * np.abs(n.weight).sum(axis=(1, 2, 3)).astype(np.int32)
    ours = golden.eval_whole(g, n, [codes[i] for i in n.inputs]).astype(np.int16)
    assert np.abs(ours - codes[n.output]).max() > 1


# ---------------------------------------------------------------------------------------------
# (c) IR graphs written as QDQ ONNX (random graphs and the model zoo) against ONNX Runtime
# ---------------------------------------------------------------------------------------------

def check_layers_against_ort(g, seed: int):
    """Export ``g``, import it back (same integers), and compare every layer, fed ONNX
    Runtime's own input codes, with ONNX Runtime's output codes: within 1 LSB."""
    from host.model.onnx_export import to_onnx

    model = to_onnx(g)
    h = load_onnx(model, fold_clamps=False)
    # a clamp over the whole int8 range (e.g. ReLU of a zero-point −128 tensor) is a no-op the
    # importer drops; every other node comes back under its own name
    from test_onnx_import import without_noop_clamps
    assert [n.name for n in h.nodes] == [n.name for n in without_noop_clamps(g).nodes]
    t = g.input_tensor
    xi = np.random.default_rng(seed).integers(-128, 128, (1,) + t.shape).astype(np.int8)
    x = ((xi.astype(np.float32) - t.zero_point) * np.float32(t.scale)).astype(np.float32)
    codes, ref = ort_codes(model, h, x)
    np.testing.assert_array_equal(codes[h.input], xi[0])
    for n in h.nodes:
        ours = golden.eval_whole(h, n, [codes[i] for i in n.inputs]).astype(np.int16)
        diff = int(np.abs(ours - codes[n.output]).max())
        assert diff <= 1, f"{n.name} ({n.op}): {diff} LSB from ONNX Runtime"
    # and the whole network on its own (differences may grow through the layers, never beyond
    # one LSB per requantising layer)
    lsb = np.abs(output_dequant(g, golden.run(g, xi[0])).astype(np.float64) - ref) / g.output_tensor.scale
    assert lsb.max() <= requantising_layers(g) + 1e-3 and lsb.mean() < 2


@pytest.mark.parametrize("seed", range(6))
def test_exported_random_graphs_layer_by_layer(seed):
    from test_onnx_import import random_graph

    check_layers_against_ort(random_graph(seed), seed)


@pytest.mark.parametrize("name", ["digits", "mobilenet_v1", "shufflenet_v1", "squeezenet1_1", "igcv",
                                  "resnet18", "vgg16"])
def test_zoo_layer_by_layer(name):
    g = zoo.get(name, None if name == "digits" else 32)
    check_layers_against_ort(g, 5)


def test_float_relu_between_differently_quantised_vectors_is_rejected():
    """Gemm → Q → DQ → Relu → Q(other scale): a vector rescale the IR cannot express."""
    with pytest.raises(UnsupportedModel) as e:
        load_onnx(quantised("head", "uint8+float_relu"))
    assert "node 'relu_8'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "mobilenet_v1", "shufflenet_v1", "squeezenet1_1", "igcv",
                                  "resnet18", "vgg16"])
def test_zoo_full_size_layer_by_layer(name):
    """As above at the published input size (make test-slow)."""
    check_layers_against_ort(zoo.get(name), 6)
