"""``blockfuse run``: outputs against ONNX Runtime and the golden model, batches, schedules, zoo
models, and one-line errors that leave no output file."""
import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from host.model import zoo
from host.runtime import golden
from host.cli.main import main
from host.model.onnx_compare import ort_session
from host.model.onnx_import import input_quant, load_onnx, output_dequant

import onnx_models as M

logging.getLogger().setLevel(logging.ERROR)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Quantised test models on disk: {name: path}."""
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, net, act in [("head_u8", "head", "uint8"), ("shuffle_i8", "shuffle", "int8"),
                           ("convs_i8", "convs", "int8")]:
        p = d / f"{name}.onnx"
        onnx.save(M.quantize(M.NETS[net](), act), p)
        out[name] = p
    return out


def _input(path: Path, model_path: Path, n=1, seed=0) -> np.ndarray:
    m = onnx.load(model_path)
    shape = [d.dim_value or 1 for d in m.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(seed).normal(0, 1, [n] + shape[1:]).astype(np.float32)
    np.save(path, x)
    return x


def _ort(model_path: Path, x: np.ndarray) -> np.ndarray:
    s = ort_session(model_path)
    return np.concatenate([s.run(None, {s.get_inputs()[0].name: xi[None]})[0] for xi in x])


def _run(capsys, *argv):
    code = main(["run", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["head_u8", "shuffle_i8"])
def test_run_matches_onnx_runtime(models, tmp_path, capsys, name):
    inp, outp = tmp_path / "x.npy", tmp_path / "y.npy"
    x = _input(inp, models[name], seed=1)
    code, _, err = _run(capsys, models[name], "--input", inp, "--output", outp)
    assert code == 0, err
    y = np.load(outp)
    ref = _ort(models[name], x)
    g = load_onnx(models[name])
    assert y.dtype == np.float32 and y.shape == ref.shape
    # exactly the golden model's result, and within 1 LSB per requantising layer of ONNX Runtime
    np.testing.assert_array_equal(y, output_dequant(g, golden.run(g, input_quant(g, x)[0])))
    assert np.abs(y - ref).max() / g.output_tensor.scale <= len(g.nodes) + 1e-3


def test_batch_loops_over_images(models, tmp_path, capsys):
    inp, outp = tmp_path / "x.npy", tmp_path / "y.npy"
    x = _input(inp, models["head_u8"], n=3, seed=2)
    assert _run(capsys, models["head_u8"], "--input", inp, "--output", outp)[0] == 0
    y = np.load(outp)
    assert y.shape[0] == 3
    for i in range(3):
        np.save(tmp_path / "one.npy", x[i:i + 1])
        assert _run(capsys, models["head_u8"], "--input", tmp_path / "one.npy", "--output", tmp_path / "one_y.npy")[0] == 0
        np.testing.assert_array_equal(np.load(tmp_path / "one_y.npy")[0], y[i])
    assert not np.array_equal(y[0], y[1])


def test_schedules(models, tmp_path, capsys):
    inp = tmp_path / "x.npy"
    x = _input(inp, models["convs_i8"], seed=3)
    res = {}
    for sched, block in [("layer", []), ("fused", []), ("fused", ["5", "3"]), ("block", ["4", "4"])]:
        outp = tmp_path / f"y_{sched}_{len(block)}.npy"
        code, _, err = _run(capsys, models["convs_i8"], "--input", inp, "--output", outp,
                            "--schedule", sched, *(["--block", *block] if block else []))
        assert code == 0, err
        res[(sched, len(block))] = np.load(outp)
    np.testing.assert_array_equal(res[("layer", 0)], res[("fused", 0)])
    np.testing.assert_array_equal(res[("layer", 0)], res[("fused", 2)])
    g = load_onnx(models["convs_i8"])
    want = output_dequant(g, golden.run(g, input_quant(g, x)[0], schedule="block", block=(4, 4)))
    np.testing.assert_array_equal(res[("block", 2)], want)


@pytest.mark.parametrize("spec", ["zoo:digits", "zoo:mobilenet_v1@32", "zoo:shufflenet_v1@24x32"])
def test_zoo_model(tmp_path, capsys, spec):
    name, _, res = spec[4:].partition("@")
    res = tuple(int(v) for v in res.split("x")) if res else None
    g = zoo.get(name, res[0] if res and len(res) == 1 else res)
    inp, outp = tmp_path / "x.npy", tmp_path / "y.npy"
    x = np.random.default_rng(4).normal(0, 1, (2,) + g.input_tensor.shape).astype(np.float32)
    np.save(inp, x)
    code, _, err = _run(capsys, spec, "--input", inp, "--output", outp)
    assert code == 0, err
    want = output_dequant(g, np.stack([golden.run(g, q) for q in input_quant(g, x)]))
    np.testing.assert_array_equal(np.load(outp), want)


# ---------------------------------------------------------------------------------------------
# Errors: exit 1, one line on stderr, no output file
# ---------------------------------------------------------------------------------------------

def _expect_error(capsys, tmp_path, model, inp, *extra, fragment=""):
    outp = tmp_path / "never.npy"
    code, _, err = _run(capsys, model, "--input", inp, "--output", outp, *extra)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blockfuse: error:"), err
    assert fragment in lines[0], lines[0]
    assert not outp.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".blockfuse-")]
    return lines[0]


def test_errors_in_the_input(models, tmp_path, capsys):
    good = tmp_path / "x.npy"
    x = _input(good, models["head_u8"])
    m = models["head_u8"]
    _expect_error(capsys, tmp_path, m, tmp_path / "missing.npy", fragment="does not exist")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    _expect_error(capsys, tmp_path, m, tmp_path / "junk.npy", fragment="cannot read input")
    np.save(tmp_path / "wrongshape.npy", x[:, :, 1:])
    _expect_error(capsys, tmp_path, m, tmp_path / "wrongshape.npy", fragment="shape")
    np.save(tmp_path / "three_d.npy", x[0])
    _expect_error(capsys, tmp_path, m, tmp_path / "three_d.npy", fragment="NCHW")
    np.save(tmp_path / "ints.npy", x.astype(np.int32))
    _expect_error(capsys, tmp_path, m, tmp_path / "ints.npy", fragment="dtype int32")
    np.savez(tmp_path / "arch.npz", x=x)
    os.replace(tmp_path / "arch.npz", tmp_path / "arch.npy")
    _expect_error(capsys, tmp_path, m, tmp_path / "arch.npy", fragment=".npz")
    nan = x.copy()
    nan[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    _expect_error(capsys, tmp_path, m, tmp_path / "nan.npy", fragment="NaN")


def test_errors_in_the_model(models, tmp_path, capsys):
    good = tmp_path / "x.npy"
    _input(good, models["convs_i8"])
    _expect_error(capsys, tmp_path, tmp_path / "nope.onnx", good, fragment="does not exist")
    (tmp_path / "bad.onnx").write_bytes(b"\x01\x02 definitely not protobuf \xff" * 5)
    _expect_error(capsys, tmp_path, tmp_path / "bad.onnx", good, fragment="ONNX")
    m = onnx.load(models["convs_i8"])
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    conv.attribute.append(helper.make_attribute("dilations", [2, 2]))
    onnx.save(m, tmp_path / "dil.onnx")
    _expect_error(capsys, tmp_path, tmp_path / "dil.onnx", good,
                  fragment=f"node '{conv.name}' (Conv): dilations [2, 2] are not supported")


def test_errors_in_the_options(models, tmp_path, capsys):
    good = tmp_path / "x.npy"
    _input(good, models["convs_i8"])
    _expect_error(capsys, tmp_path, "zoo:nosuchnet", good, fragment="unknown zoo model 'nosuchnet'")
    _expect_error(capsys, tmp_path, "zoo:digits@x", good, fragment="bad zoo resolution")
    _expect_error(capsys, tmp_path, "zoo:digits", good, fragment="shape")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--target", "fpga", fragment="unknown target")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--block", "0", "4", fragment="positive")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--line-mode",
                  fragment="--line-mode applies to --target sim and emu only")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--engine", "sim-8x8",
                  fragment="--engine applies to --target sim and emu only")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--target", "sim", "--engine", "nope",
                  fragment="no accelerator configuration 'nope'")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--target", "sim", "--line-mode",
                  "--engine", "ulx3s-85f", fragment="--line-mode selects the engine sim-8x8-line")
    _expect_error(capsys, tmp_path, models["convs_i8"], good, "--schedule", "block", "--block", "5", "5",
                  fragment="block")
    code, _, err = _run(capsys, models["convs_i8"], "--input", good, "--output", tmp_path / "no" / "y.npy")
    assert code == 1 and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_error_keeps_an_existing_output(models, tmp_path, capsys):
    outp = tmp_path / "y.npy"
    np.save(outp, np.arange(3.0))
    code, _, _ = _run(capsys, models["convs_i8"], "--input", tmp_path / "missing.npy", "--output", outp)
    assert code == 1
    np.testing.assert_array_equal(np.load(outp), np.arange(3.0))


# ---------------------------------------------------------------------------------------------
# The installed command
# ---------------------------------------------------------------------------------------------

def _blockfuse():
    exe = Path(sys.executable).parent / "blockfuse"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "host.cli.main"]


def test_installed_command(models, tmp_path):
    inp, outp = tmp_path / "x.npy", tmp_path / "y.npy"
    x = _input(inp, models["head_u8"], seed=5)
    r = subprocess.run(_blockfuse() + ["run", str(models["head_u8"]), "--input", str(inp), "--output", str(outp)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    g = load_onnx(models["head_u8"])
    assert np.abs(np.load(outp) - _ort(models["head_u8"], x)).max() / g.output_tensor.scale <= len(g.nodes)
    r = subprocess.run(_blockfuse() + ["run", str(models["head_u8"]), "--input", str(tmp_path / "none.npy"),
                                       "--output", str(tmp_path / "z.npy")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "z.npy").exists()


@pytest.mark.slow
def test_sim_target_on_digits(tmp_path, capsys):
    g = zoo.get("digits")
    inp, outp = tmp_path / "x.npy", tmp_path / "y.npy"
    x = np.random.default_rng(6).normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32)
    np.save(inp, x)
    code, _, err = _run(capsys, "zoo:digits", "--input", inp, "--output", outp, "--target", "sim")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(outp), output_dequant(g, golden.run(g, input_quant(g, x)[0])))


@pytest.mark.parametrize("uint8", [False, True])
def test_export_zoo_model_runs_the_same(tmp_path, capsys, uint8):
    """``blockfuse export zoo:digits`` → ONNX; ``run`` on it equals ``run zoo:digits`` exactly and
    ONNX Runtime within 1 LSB per requantising layer."""
    g = zoo.get("digits")
    path = tmp_path / "digits.onnx"
    code = main(["export", "zoo:digits", str(path)] + (["--uint8"] if uint8 else []))
    assert code == 0, capsys.readouterr().err
    h = load_onnx(path)
    assert h.activation_dtype == ("uint8" if uint8 else "int8")
    inp = tmp_path / "x.npy"
    x = np.random.default_rng(8).normal(0, 1, (2,) + g.input_tensor.shape).astype(np.float32)
    np.save(inp, x)
    assert _run(capsys, path, "--input", inp, "--output", tmp_path / "a.npy")[0] == 0
    assert _run(capsys, "zoo:digits", "--input", inp, "--output", tmp_path / "b.npy")[0] == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - _ort(path, x)).max() / g.output_tensor.scale <= len(g.nodes)


def test_export_errors(tmp_path, capsys):
    code = main(["export", "zoo:nosuchnet", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_sim_target_on_quantize_static_model(models, tmp_path, capsys):
    """A quantize_static model (group conv, shuffle, depthwise, add, concat) on the engine RTL:
    bit-exact with the golden target."""
    inp = tmp_path / "x.npy"
    _input(inp, models["shuffle_i8"], seed=9)
    for target in ("golden", "sim"):
        code, _, err = _run(capsys, models["shuffle_i8"], "--input", inp, "--output", tmp_path / f"{target}.npy",
                            "--target", target)
        assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "sim.npy"), np.load(tmp_path / "golden.npy"))
    code, _, err = _run(capsys, models["shuffle_i8"], "--input", inp, "--output", tmp_path / "line.npy",
                        "--target", "sim", "--line-mode")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "line.npy"), np.load(tmp_path / "golden.npy"))


@pytest.mark.parametrize("schedule", ["fused", "block"])
def test_run_executes_the_schedulers_plan(tmp_path, capsys, schedule):
    """Without --block, `run` executes exactly the plan `blockfuse plan` reports for the board;
    `--plan FILE` runs a saved plan."""
    from host.model import zoo
    from host.model.builder import smooth_input
    from host.compiler.scheduler import plan_network

    graph = zoo.get("resnet18", 96)
    x = smooth_input(graph, seed=3)
    t = graph.input_tensor
    xf = ((x.astype(np.float32) - t.zero_point) * np.float32(t.scale))[None]
    np.save(tmp_path / "x.npy", xf)
    budget_board = "ulx3s-12f"
    plan, _ = plan_network(graph, budget_board, schedule)
    assert any(g.block for g in plan.groups)          # a plan that really cuts blocks
    want = output_dequant(graph, golden.run(graph, x, plan=plan)[None])
    code, out, err = _run(capsys, "zoo:resnet18@96", "--input", tmp_path / "x.npy", "--output",
                          tmp_path / "y.npy", "--schedule", schedule, "--board", budget_board)
    assert code == 0, err
    assert "scheduler plan for ulx3s-12f" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    assert main(["plan", "zoo:resnet18@96", "--board", budget_board, "--schedule", schedule,
                 "--json", str(tmp_path / "p.json"), "--quiet"]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, "zoo:resnet18@96", "--input", tmp_path / "x.npy", "--output",
                          tmp_path / "y2.npy", "--plan", tmp_path / "p.json")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "y2.npy"), want)


def test_stats_file(tmp_path, capsys):
    """``--stats``: the DESIGN keys.  ``emu``: the network program from START to DONE on the
    program emulator.  ``sim``: the same program on the whole simulated SoC over the protocol —
    the totals are the controller's counters read over STATUS: its engine cycles and data bytes
    equal the emulator's, its output too.  ``golden``: the cost model's figures, labelled."""
    import json
    g = zoo.get("digits")
    inp = tmp_path / "x.npy"
    np.save(inp, np.random.default_rng(3).normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32))
    keys = {"board", "clock_mhz", "pe_count", "cycles", "macs", "utilisation", "offchip_bytes",
            "onchip_buffer_bytes", "layers", "predicted"}
    got = {}
    for target in ("sim", "emu", "golden"):
        stats = tmp_path / f"{target}.json"
        code, _, err = _run(capsys, "zoo:digits", "--input", inp, "--output", tmp_path / f"{target}.npy",
                            "--target", target, "--stats", stats)
        assert code == 0, err
        s = json.loads(stats.read_text())
        assert keys <= set(s) and s["board"] == "ulx3s-85f" and s["pe_count"] == 144
        assert s["utilisation"] == pytest.approx(s["macs"] / (144 * s["cycles"]))
        got[target] = s
        if target == "golden":
            assert "cost model" in s["source"]
            assert s["cycles"] == sum(r["cycles"] for r in s["layers"]) > 0
            continue
        # the units work side by side: neither's busy cycles exceed START→DONE
        assert s["cycles"] >= max(s["busy"]["engine"], s["busy"]["dma"]) > 0
        assert s["offchip_bytes"]["read"] > 0 and s["instruction_bytes"] > 0
        # the program's cost, counted from its instructions before it ran: the RTL's and the
        # emulator's byte counters equal it exactly
        assert s["predicted"]["offchip_bytes"] == s["offchip_bytes"]
        assert "scheduler" in s["predicted"] and s["predicted"]["cycles"] > 0
        assert {r["name"] for r in s["layers"]} == {"conv1", "conv2", "fc"}
        assert s["source"].startswith(target)
        # feature maps off chip: the input image and the output at least, within the data bytes
        total = s["offchip_bytes"]["read"] + s["offchip_bytes"]["written"]
        assert g.input_tensor.size < s["offchip_map_bytes"] < total
        assert s["offchip_map_bytes_per_mac"] == pytest.approx(s["offchip_map_bytes"] / s["macs"])
    # the RTL and the emulator ran the same program: same output, engine cycles and bytes
    np.testing.assert_array_equal(np.load(tmp_path / "emu.npy"), np.load(tmp_path / "sim.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "emu.npy"), np.load(tmp_path / "golden.npy"))
    assert got["sim"]["busy"]["engine"] == got["emu"]["busy"]["engine"] == \
        sum(r["engine_cycles"] for r in got["emu"]["layers"])
    assert got["sim"]["offchip_bytes"] == got["emu"]["offchip_bytes"]
    assert got["sim"]["offchip_map_bytes"] == got["emu"]["offchip_map_bytes"]
    # the fused plan keeps digits' intermediate maps in the activation buffer: the RTL's
    # counter of that traffic equals the emulator's
    assert got["sim"]["activation_buffer_traffic_bytes"] == \
        got["emu"]["activation_buffer_traffic_bytes"] > 0
    code, _, err = _run(capsys, "zoo:digits", "--input", inp, "--output", tmp_path / "z.npy",
                        "--stats", tmp_path / "no" / "s.json")
    assert code == 1 and "does not exist" in err and not (tmp_path / "z.npy").exists()


@contextlib.contextmanager
def _pty_to(dev, monkeypatch):
    """A pseudo-terminal relayed to a simulated device's socket, both ways; yields its name.

    The simulation behind it moves some 10^5 bits a second, not the 3 Mbaud a board's link
    does, and slower still beside other work: a serial request waits as long as a ``sim`` one
    (a board's one-second timeout made CI fail when a Verilator build ran beside the test)."""
    import os
    import select
    import threading
    import tty

    from host.runtime.driver import SerialTransport, SimTransport
    monkeypatch.setattr(SerialTransport, "default_timeout", SimTransport.default_timeout)
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    stop = threading.Event()

    def relay():
        while not stop.is_set():
            ready, _, _ = select.select([master, dev.sock], [], [], 0.1)
            if master in ready:
                dev.sock.sendall(os.read(master, 4096))
            if dev.sock in ready:
                data = dev.sock.recv(4096)
                if not data:
                    return
                os.write(master, data)
    t = threading.Thread(target=relay, daemon=True)
    t.start()
    try:
        yield os.ttyname(slave)
    finally:
        stop.set()
        t.join(timeout=5)
        os.close(master)
        os.close(slave)


def test_serial_target_reaches_the_simulated_board(tmp_path, capsys, monkeypatch):
    """``--target serial:PORT`` runs for real: the CLI opens a pseudo-terminal that relays to
    the link SoC simulated under Verilator and identifies the board over the protocol; that
    gateware has no engine, so it ends in one line saying so (nothing written)."""
    from sim.link_sim import SimConfig, SimDevice
    g = zoo.get("digits")
    inp = tmp_path / "x.npy"
    np.save(inp, np.zeros((1,) + g.input_tensor.shape, np.float32))
    with SimDevice(SimConfig()) as dev, _pty_to(dev, monkeypatch) as port:
        _expect_error(capsys, tmp_path, "zoo:digits", inp, "--target", f"serial:{port}@3000000",
                      fragment="is a sim board with no convolution engine")


def test_serial_target_runs_the_network_on_an_accelerator(tmp_path, capsys, monkeypatch):
    """The same through a pseudo-terminal to the simulated accelerator SoC of the icebreaker
    configuration: the program is written over the link, run, and read back — equal to the
    golden target; ``--stats`` carries the board's counters; another ``--board`` is refused."""
    import json
    from host.runtime.program_device import soc_config
    from hw.configs import get_config
    from sim.link_sim import SimDevice
    g = zoo.get("digits")
    inp = tmp_path / "x.npy"
    np.save(inp, np.random.default_rng(4).normal(0, 1, (2,) + g.input_tensor.shape)
            .astype(np.float32))
    code, _, err = _run(capsys, "zoo:digits", "--input", inp, "--output", tmp_path / "g.npy")
    assert code == 0, err
    code, _, err = _run(capsys, "zoo:digits", "--input", inp, "--output", tmp_path / "e.npy",
                        "--target", "emu", "--board", "icebreaker", "--stats", tmp_path / "e.json")
    assert code == 0, err
    config = soc_config(get_config("icebreaker"))
    with SimDevice(config) as dev, _pty_to(dev, monkeypatch) as port:
        code, out, err = _run(capsys, "zoo:digits", "--input", inp, "--output",
                              tmp_path / "s.npy", "--target", f"serial:{port}@3000000",
                              "--board", "icebreaker", "--stats", tmp_path / "s.json")
        assert code == 0, err
        _expect_error(capsys, tmp_path, "zoo:digits", inp, "--target", f"serial:{port}@3000000",
                      fragment="has a 2x4 engine, the ulx3s-85f configuration a 9x16 one")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), np.load(tmp_path / "g.npy"))
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["source"].startswith("serial") and s["frames"] == 2
    e = json.loads((tmp_path / "e.json").read_text())
    assert s["busy"]["engine"] == e["busy"]["engine"] > 0 and s["cycles"] > s["busy"]["engine"]
    assert s["offchip_bytes"] == e["offchip_bytes"]


def test_stats_say_when_the_prediction_is_of_another_plan(tmp_path, capsys):
    """With ``--block`` the run executes a plan the scheduler did not make: ``predicted`` says
    that it is the scheduler's own plan's; with the scheduler's plan it carries no such label."""
    import json
    g = zoo.get("digits")
    inp = tmp_path / "x.npy"
    np.save(inp, np.zeros((1,) + g.input_tensor.shape, np.float32))
    for extra, labelled in ((["--block", "4", "4"], True), ([], False)):
        stats = tmp_path / "s.json"
        code, _, err = _run(capsys, "zoo:digits", "--input", inp, "--output", tmp_path / "y.npy",
                            "--stats", stats, *extra)
        assert code == 0, err
        assert ("plan" in json.loads(stats.read_text())["predicted"]) == labelled
