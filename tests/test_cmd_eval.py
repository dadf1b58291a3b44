"""``blockfuse eval MODEL --dataset digits``: the report and its JSON/PNG, every target ``run``
has (sim on a few images), and one-line errors that write nothing."""
import json

import numpy as np
import pytest

from host.train import nn
from host.model import zoo
from host.cli.main import main


def _eval(capsys, *argv):
    code = main(["eval", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_shipped_model_writes_consistent_json_and_plot(tmp_path, capsys):
    js, png = tmp_path / "e.json", tmp_path / "e.png"
    code, out, err = _eval(capsys, "zoo:digits", "--dataset", "digits", "--json", js, "--plot", png)
    assert code == 0, err
    r = json.loads(js.read_text())
    assert r["images"] == 360 and r["target"] == "golden" and r["schedule"] == "fused"
    m = np.array(r["confusion"])
    labels, pred = np.array(r["labels"]), np.array(r["predictions"])
    assert m.sum() == 360 and np.trace(m) == r["correct"] == np.sum(labels == pred)
    assert np.array_equal(m.sum(1), np.bincount(labels, minlength=10))
    assert r["top1"] >= 0.97                                  # measured 100.0 %
    assert r["onnxruntime"]["agreement"] >= 0.99 and r["images_per_second"] > 0
    assert f"top-1 accuracy: {r['top1']:.2%}" in out and "confusion matrix" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_of_the_onnx_file_equals_the_zoo_name(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _eval(capsys, "zoo:digits", "--dataset", "digits", "--schedule", "layer", "--limit", "40",
                 "--json", a)[0] == 0
    assert _eval(capsys, zoo.TRAINED["digits"], "--dataset", "digits", "--limit", "40",
                 "--schedule", "block", "--block", "8", "8", "--json", b)[0] == 0
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ra["images"] == rb["images"] == 40
    assert ra["predictions"] == rb["predictions"]             # one 8x8 block: the plain network


def test_block_schedule_changes_predictions(tmp_path, capsys):
    """2×2 blocks of an 8×8 digit: the plain-trained model must lose accuracy (the study's
    reason to upsample); ONNX Runtime, which knows no blocks, then disagrees."""
    js = tmp_path / "b.json"
    assert _eval(capsys, "zoo:digits", "--dataset", "digits", "--schedule", "block", "--block", "2", "2",
                 "--json", js)[0] == 0
    r = json.loads(js.read_text())
    assert r["top1"] < 0.6 and r["onnxruntime"]["agreement"] < 0.6


def test_model_of_another_size_gets_resized_images(tmp_path, capsys):
    js = tmp_path / "r.json"
    code, out, err = _eval(capsys, "zoo:digits_random@16", "--dataset", "digits", "--limit", "20",
                           "--json", js)
    assert code == 0, err
    assert "resized bilinearly from 8x8 to 16x16" in out
    r = json.loads(js.read_text())
    assert r["onnxruntime"]["agreement"] >= 0.9              # ORT on the exported random network


def test_sim_target_agrees_with_golden(tmp_path, capsys):
    pytest.importorskip("sim.engine_layers")
    js = tmp_path / "s.json"
    code, out, err = _eval(capsys, "zoo:digits", "--dataset", "digits", "--target", "sim", "--limit", "2",
                           "--json", js)
    assert code == 0, err
    r = json.loads(js.read_text())
    assert r["images"] == 2 and r["golden_agreement"] == 1.0
    assert "predictions equal to the golden model's (same plan): 100.00%" in out


def test_emu_target_matches_golden(tmp_path, capsys):
    """``--target emu``: the board engine's runs through its NumPy model, through ``run``'s
    target dispatch; every prediction equals the golden model's."""
    js = tmp_path / "emu.json"
    code, _, err = _eval(capsys, "zoo:digits", "--dataset", "digits", "--target", "emu", "--limit", "20",
                         "--json", js)
    assert code == 0, err
    r = json.loads(js.read_text())
    assert r["golden_agreement"] == 1.0 and r["target"] == "emu"


@pytest.fixture(scope="module")
def eleven_classes(tmp_path_factory):
    """A 1×8×8 QDQ model with 11 outputs (not a digits classifier)."""
    path = tmp_path_factory.mktemp("m") / "eleven.onnx"
    net = nn.Net([("conv", 4, 3, 1), ("flatten",), ("fc", 11)], (1, 8, 8), seed=2)
    x = np.random.default_rng(0).uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)
    nn.quantize_qdq(nn.to_onnx_float(net, "eleven"), x, str(path))
    return path


@pytest.mark.parametrize("argv, fragment", [
    (["zoo:digits", "--dataset", "mnist"], "unknown dataset 'mnist' (available: digits)"),
    (["zoo:digits", "--dataset", "digits", "--limit", "0"], "--limit 0"),
    (["zoo:digits", "--dataset", "digits", "--target", "fpga"], "unknown target 'fpga'"),
    (["zoo:digits", "--dataset", "digits", "--block", "0", "2"], "positive"),
    (["zoo:digits", "--dataset", "digits", "--schedule", "block", "--block", "3", "3"], "block"),
    (["zoo:digits", "--dataset", "digits", "--plot", "{tmp}/c.jpg"], "PNG"),
    (["zoo:digits", "--dataset", "digits", "--json", "{tmp}/no/such/dir/r.json"], "does not exist"),
    (["zoo:nosuchnet", "--dataset", "digits"], "unknown zoo model 'nosuchnet'"),
    (["zoo:digits@16", "--dataset", "digits"], "trained for 8x8"),
    (["zoo:vgg16@32", "--dataset", "digits"], "does not take digits images (1 channel"),
    (["{tmp}/missing.onnx", "--dataset", "digits"], "does not exist"),
    (["{eleven}", "--dataset", "digits"], "model output (11,) is not 10 class scores"),
])
def test_errors_are_one_line_and_write_nothing(tmp_path, capsys, eleven_classes, argv, fragment):
    argv = [a.format(tmp=tmp_path, eleven=eleven_classes) for a in argv]
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    code, out, err = _eval(capsys, *argv, *([] if "--json" in argv else ["--json", js]),
                           *([] if "--plot" in argv else ["--plot", png]))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("blockfuse: error:"), err
    assert fragment in lines[0], lines[0]
    assert not js.exists() and not png.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".blockfuse-")]
