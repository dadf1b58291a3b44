"""Real data: the digits split, the NumPy trainer, and the shipped trained model (``zoo:digits``)
against ONNX Runtime and under every schedule of the golden model.  Nothing is trained here
(``python -m host.train.digits`` does that); the trainer is checked on tiny shapes."""
import numpy as np
import pytest

from host.model import datasets
from host.runtime import golden
from host.train import nn
from host.model import zoo
from host.model.ir import FC, Conv
from host.model.onnx_import import input_quant, output_dequant
from host.compiler.plan import default_plan
from host.compiler.scheduler import plan_network
from host.train.digits import DIGITS_SPECS
from host.model.onnx_compare import ort_session


@pytest.fixture(scope="module")
def data():
    return datasets.load("digits")


@pytest.fixture(scope="module")
def model():
    g = zoo.get("digits")
    return g, input_quant(g, datasets.load("digits").x_test)


def _predict(g, q, **kw):
    return np.array([golden.run(g, qi, **kw).argmax() for qi in q])


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def test_split_is_fixed_stratified_and_disjoint(data):
    again = datasets.load("digits")
    np.testing.assert_array_equal(data.x_test, again.x_test)
    assert len(data.x_train) + len(data.x_test) == 1797 and len(data.x_test) == 360
    assert data.x_test.dtype == np.float32 and data.x_test.shape[1:] == (1, 8, 8)
    assert 0 <= data.x_train.min() and data.x_train.max() == 1.0
    counts = np.bincount(data.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37            # ~20 % of every class
    train = {x.tobytes() for x in data.x_train}
    assert sum(x.tobytes() in train for x in data.x_test) <= 5  # load_digits has a few duplicates


def test_resize_keeps_constant_images_and_content(data):
    x = data.x_test[:4]
    assert datasets.resize(x, (8, 8)) is x
    big = datasets.resize(x, (32, 32))
    assert big.shape == (4, 1, 32, 32)
    np.testing.assert_allclose(datasets.resize(np.full((1, 1, 8, 8), 0.3, np.float32), (32, 32)), 0.3,
                               rtol=1e-6)
    back = big.reshape(4, 1, 8, 4, 8, 4).mean((3, 5))           # 4×4 means ≈ the original pixels
    assert np.abs(back - x).mean() < 0.3 * np.abs(x - x.mean()).mean()


# ---------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [None, (4, 4)])
def test_trainer_gradients_match_finite_differences(block):
    rng = np.random.default_rng(0)
    net = nn.Net([("conv", 3, 3, 1), ("conv", 4, 3, 2), ("flatten",), ("fc", 5), ("fc", 3)], (2, 8, 8), seed=1)
    for p in net.params:
        for k in p:
            p[k] = p[k].astype(np.float64) + (rng.normal(0, 0.1, p[k].shape) if k == "b" else 0)
    x, y = rng.normal(size=(3, 2, 8, 8)), np.array([0, 1, 2])
    cache = []
    _, dy = nn.cross_entropy(net.forward(x, block, cache), y)
    grads = net.backward(cache, dy.astype(np.float64), block)
    for i, p in enumerate(net.params):
        for k in p:
            for j in rng.choice(p[k].size, min(4, p[k].size), replace=False):
                old = p[k].flat[j]
                p[k].flat[j] = old + 1e-6
                up = nn.cross_entropy(net.forward(x, block), y)[0]
                p[k].flat[j] = old - 1e-6
                down = nn.cross_entropy(net.forward(x, block), y)[0]
                p[k].flat[j] = old
                assert grads[i][k].flat[j] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)


def test_blocks_round_trip():
    x = np.arange(2 * 3 * 8 * 12, dtype=np.float32).reshape(2, 3, 8, 12)
    b = nn.to_blocks(x, (4, 6))
    assert b.shape == (8, 3, 4, 6)
    np.testing.assert_array_equal(b[1], x[0, :, 0:4, 6:12])     # image 0, block row 0, column 1
    np.testing.assert_array_equal(nn.from_blocks(b, (2, 2)), x)


def _float_net(g):
    """host.train.nn network holding the shipped model's dequantised weights."""
    net = nn.Net(DIGITS_SPECS, g.input_tensor.shape)
    layers = iter(n for n in g.nodes if isinstance(n, (Conv, FC)))
    for p in net.params:
        if p:
            n = next(layers)
            ws = np.asarray(n.w_scale)
            p["w"] = (n.weight * ws.reshape((-1,) + (1,) * (n.weight.ndim - 1))).astype(np.float32)
            p["b"] = (n.bias * g.tensors[n.inputs[0]].scale * ws).astype(np.float32)
    return net


@pytest.mark.parametrize("block", [(4, 4), (2, 2)])
def test_trainer_blocks_are_the_golden_block_schedule(data, model, block):
    """What the trainer fine-tunes for is what ``--schedule block`` computes: with the shipped
    model's weights, host.train.nn's blocked logits equal the golden block schedule's to a few output
    LSBs, and are far from the plain network's."""
    g, q = model
    net = _float_net(g)
    lsb = g.output_tensor.scale
    fb = net.forward(data.x_test, block)
    gb = output_dequant(g, np.stack([golden.run(g, qi, schedule="block", block=block) for qi in q]))
    gl = output_dequant(g, np.stack([golden.run(g, qi, schedule="layer") for qi in q]))
    assert np.abs(fb - gb).max() <= 3 * lsb
    assert np.abs(fb - gl).mean() > 5 * lsb


# ---------------------------------------------------------------------------------------------
# The shipped model
# ---------------------------------------------------------------------------------------------

def test_shipped_model_is_the_zoo_architecture(model):
    g, _ = model
    info = zoo.info("digits")
    assert [n.name for n in g.nodes] == [layer["name"] for layer in info["layers"]]
    assert g.total_macs == info["total_macs"]
    assert g.activation_dtype == "int8"
    assert all(np.asarray(n.w_scale).size == n.weight.shape[0] for n in g.nodes if isinstance(n, (Conv, FC)))


def test_shipped_model_accuracy_and_onnx_runtime(data, model):
    """Measured 100.0 % (docs/accuracy.md); the floor is the issue's 97 %."""
    g, q = model
    pred = _predict(g, q, schedule="layer")
    assert np.mean(pred == data.y_test) >= 0.97
    s = ort_session(zoo.TRAINED["digits"])
    ref = s.run(None, {"input": data.x_test})[0].argmax(1)
    assert np.mean(ref == pred) >= 0.99


def test_layer_equals_fused_on_every_test_image(model):
    g, q = model
    plans = [default_plan(g, "fused", (3, 5)), plan_network(g, "ulx3s-85f", "fused")[0],
             plan_network(g, "icebreaker", "fused")[0]]
    for qi in q:
        want = golden.run(g, qi, schedule="layer")
        for plan in plans:
            np.testing.assert_array_equal(golden.run(g, qi, plan=plan), want)


def test_other_sizes_are_refused_and_the_stand_in_remains():
    from host.errors import UserError

    with pytest.raises(UserError, match="trained for 8x8 inputs only.*digits_random@16x16"):
        zoo.get("digits", 16)
    r = zoo.get("digits_random", 16)
    assert r.input_tensor.shape == (1, 16, 16)
    assert not np.array_equal(zoo.get("digits_random").nodes[0].weight, zoo.get("digits").nodes[0].weight)
