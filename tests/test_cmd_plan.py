"""``blockfuse plan``: table, JSON (the README's keys), plot, one-line errors."""
import json

import numpy as np
import pytest

from host.runtime import golden
from host.model import zoo
from host.model.builder import smooth_input
from host.cli.main import main
from host.cli.plan import plan_from_json
from host.compiler.scheduler import plan_network


@pytest.mark.parametrize("schedule", ["layer", "fused", "block"])
def test_plan_json(tmp_path, capsys, schedule):
    out = tmp_path / "plan.json"
    rc = main(["plan", "zoo:mobilenet_v1@64", "--board", "ulx3s-25f", "--schedule", schedule,
               "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "conv2_dw" in text and "fps" in text and "on-chip peak" in text
    d = json.loads(out.read_text())
    for k in ("total_macs", "offchip_bytes", "onchip_peak_bytes", "cycles", "fps", "layers", "groups"):
        assert k in d
    assert {"weights", "activations", "total"} <= set(d["offchip_bytes"])
    for lay in d["layers"]:
        for k in ("name", "op", "group", "macs", "total_macs", "offchip_bytes", "onchip_peak_bytes", "cycles"):
            assert k in lay
        assert {"weights", "activations"} <= set(lay["offchip_bytes"])
    for g in d["groups"]:
        assert "nodes" in g and "block" in g
    assert d["schedule"] == schedule and d["board"] == "ulx3s-25f"


def test_plan_json_round_trip_runs_in_golden(tmp_path):
    out = tmp_path / "plan.json"
    assert main(["plan", "zoo:igcv", "--board", "ulx3s-25f", "--schedule", "fused", "--budget", "8000",
                 "--json", str(out), "--quiet"]) == 0
    g = zoo.get("igcv")
    plan = plan_from_json(str(out), g)
    ref_plan, _ = plan_network(g, "ulx3s-25f", "fused", budget=8000)
    assert plan == ref_plan
    assert any(grp.block for grp in plan.groups)
    x = smooth_input(g, seed=4)
    np.testing.assert_array_equal(golden.run(g, x, plan=plan), golden.run(g, x))


def test_plot(tmp_path):
    png = tmp_path / "plan.png"
    assert main(["plan", "zoo:squeezenet1_1@64", "--board", "ulx3s-45f", "--plot", str(png), "--quiet"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,needle", [
    (["plan", "zoo:nosuchnet"], "unknown zoo model"),
    (["plan", "zoo:vgg16", "--board", "de10-nano"], "unknown board"),
    (["plan", "/nonexistent/model.onnx"], "not found"),
    (["plan", "zoo:vgg16@0"], "resolution"),
    (["plan", "zoo:digits", "--json", "/nonexistent/dir/p.json"], "directory"),
    (["plan", "zoo:digits", "--budget", "0"], "budget"),
])
def test_errors_are_one_line(capsys, argv, needle):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("blockfuse: error:") and needle in err


def test_icebreaker_warns(capsys):
    assert main(["plan", "zoo:vgg16", "--board", "icebreaker", "--quiet"]) == 0
    assert "does not fit" in capsys.readouterr().out


def test_weight_cost_and_slack_options(tmp_path):
    paths = {k: tmp_path / f"{k}.json" for k in ("default", "w1", "w03", "s0")}
    assert main(["plan", "zoo:vgg16", "--quiet", "--scheduler", "--json", str(paths["default"])]) == 0
    assert main(["plan", "zoo:vgg16", "--quiet", "--weight-cost", "1", "--json", str(paths["w1"])]) == 0
    assert main(["plan", "zoo:vgg16", "--quiet", "--weight-cost", "0.3", "--json", str(paths["w03"])]) == 0
    assert main(["plan", "zoo:vgg16", "--quiet", "--slack", "0", "--json", str(paths["s0"])]) == 0
    d = {k: json.loads(p.read_text()) for k, p in paths.items()}
    act = {k: v["offchip_bytes"]["activations"] for k, v in d.items()}
    tot = {k: v["offchip_bytes"]["total"] for k, v in d.items()}
    assert act["w03"] < act["w1"] and act["default"] < act["s0"]
    assert tot["s0"] == tot["w1"] <= tot["default"]
    assert d["default"]["slack"] > 0 and d["w1"]["weight_cost"] == 1 and d["w1"]["slack"] is None


def test_bad_weight_cost(capsys):
    assert main(["plan", "zoo:digits", "--weight-cost", "-2"]) == 1
    assert "weight-cost" in capsys.readouterr().err
    assert main(["plan", "zoo:digits", "--slack", "-1"]) == 1
    assert "slack" in capsys.readouterr().err
    assert main(["plan", "zoo:digits", "--trade", "0.5"]) == 1
    assert "trade" in capsys.readouterr().err


def test_plan_onnx_model(tmp_path, capsys):
    from host.model.onnx_export import save_onnx

    g = zoo.get("igcv")
    path = tmp_path / "igcv.onnx"
    save_onnx(g, path)
    out = tmp_path / "p.json"
    assert main(["plan", str(path), "--board", "ulx3s-45f", "--schedule", "fused", "--json", str(out),
                 "--quiet"]) == 0
    d = json.loads(out.read_text())
    assert d["total_macs"] >= zoo.shape_graph("igcv").total_macs


def test_json_groups_match_plan(tmp_path):
    for schedule in ("layer", "fused", "block"):
        out = tmp_path / f"{schedule}.json"
        assert main(["plan", "zoo:resnet18@64", "--board", "ulx3s-25f", "--schedule", schedule,
                     "--json", str(out), "--quiet"]) == 0
        g = zoo.shape_graph("resnet18", 64)
        plan, _ = plan_network(g, "ulx3s-25f", schedule)
        assert plan_from_json(str(out), g) == plan


def test_plan_program_cost_is_what_the_run_counts(tmp_path, capsys):
    """``--program``: the plan compiled for the board's configuration and its cost from the
    instructions — the cycles and off-chip bytes ``run --target emu`` then counts."""
    out = tmp_path / "plan.json"
    assert main(["plan", "zoo:digits", "--board", "ulx3s-85f", "--schedule", "fused",
                 "--program", "--json", str(out), "--quiet"]) == 0
    assert "what `blockfuse run --target emu` counts" in capsys.readouterr().out
    prog = json.loads(out.read_text())["program"]
    stats = tmp_path / "s.json"
    g = zoo.get("digits")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(0, 1, (1,) + g.input_tensor.shape)
            .astype(np.float32))
    assert main(["run", "zoo:digits", "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--target", "emu", "--schedule", "fused",
                 "--stats", str(stats)]) == 0
    s = json.loads(stats.read_text())
    assert prog["cycles"] == s["cycles"] > 0
    assert (prog["offchip_bytes"]["read"], prog["offchip_bytes"]["written"]) == \
        (s["offchip_bytes"]["read"], s["offchip_bytes"]["written"])
    assert main(["plan", "zoo:digits", "--board", "ulx3s-25f", "--program"]) == 1
    assert "no accelerator configuration" in capsys.readouterr().err
