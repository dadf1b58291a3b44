"""``host.compiler.program_plan``: plans searched on the compiled program's own cost."""
import itertools
import json

import numpy as np
import pytest

from host.cli.main import main
from host.compiler import program_plan as PP
from host.compiler.plan import Group, Plan, default_plan
from host.compiler.program import compile_program
from host.model import zoo
from host.model.builder import GraphBuilder, smooth_input
from host.runtime import golden
from host.runtime.emulator import Emulator, predict
from hw.configs import get_config


@pytest.fixture(autouse=True)
def _no_plan_cache(monkeypatch):
    monkeypatch.setenv("BLOCKFUSE_PLAN_CACHE", "off")


def _chain():
    """Five spatial layers whose maps shrink and widen: the groups and blocks matter."""
    b = GraphBuilder("chain", (16, 64, 64), seed=2)
    t = b.conv(b.input, 32, 3)
    t = b.maxpool(b.conv(t, 32, 3), 2)
    b.conv(b.conv(t, 64, 3), 64, 3)
    return b.build()


def _objective(g, acfg, plan):
    st = predict(compile_program(g, acfg, plan), acfg)
    return st.cycles + PP.MAP_BYTE_CYCLES[plan.schedule] * st.traffic["map"], st


def test_the_search_finds_the_best_plan_of_its_candidates():
    """Every cut of the chain into groups, each with every block the planner offers it: none
    costs less (cycles + map bytes, compiled and predicted whole) than the plan found, which
    keeps maps on chip."""
    g, acfg = _chain(), get_config("ulx3s-85f")
    plan, costs = PP.plan_program(g, acfg, "block")
    best, st = _objective(g, acfg, plan)
    assert sum(len(grp.nodes) > 1 for grp in plan.groups) >= 1
    assert st.act > 0
    planner = PP._Planner(g, acfg, "block")
    names = [n.name for n in g.nodes]
    for cuts in itertools.product((0, 1), repeat=len(names) - 1):
        spans, start = [], 0
        for k, c in enumerate(cuts, 1):
            if c:
                spans.append((start, k))
                start = k
        spans.append((start, len(names)))
        options = [[None] if b - a == 1 else planner.blocks(g.nodes[a:b]) for a, b in spans]
        for blocks in itertools.product(*options):
            other = Plan("block", [Group(names[a:b], blk) for (a, b), blk in zip(spans, blocks)])
            assert _objective(g, acfg, other)[0] >= best * 0.999, other


def test_the_plan_runs_bit_exact_and_beats_the_plain_plans():
    """The emulator runs the plan bit-exact with the golden model under it, and its predicted
    cost is no worse than one group per layer or one whole-map group per run of layers."""
    g, acfg = _chain(), get_config("ulx3s-85f")
    plan, _ = PP.plan_program(g, acfg, "block")
    x = smooth_input(g, seed=1)
    y, _ = Emulator(acfg, compile_program(g, acfg, plan)).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x, plan=plan))
    mine = _objective(g, acfg, plan)[0]
    for other in (default_plan(g, "layer"), default_plan(g, "block")):
        assert mine <= _objective(g, acfg, Plan("block", other.groups))[0]


def test_fused_plans_keep_halos_exact():
    """Under ``fused`` the plan's groups recompute their halos: the result is the network's."""
    g, acfg = _chain(), get_config("ulx3s-85f")
    plan, _ = PP.plan_program(g, acfg, "fused")
    x = smooth_input(g, seed=2)
    y, _ = Emulator(acfg, compile_program(g, acfg, plan)).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))


def test_plans_are_kept_on_disk(tmp_path, monkeypatch):
    """The second search of the same network reads the first's plan; a damaged file is
    searched again."""
    monkeypatch.setenv("BLOCKFUSE_PLAN_CACHE", str(tmp_path))
    g, acfg = _chain(), get_config("ulx3s-85f")
    calls = []
    plan, costs = PP.plan_program(g, acfg, "block", progress=calls.append)
    assert calls and len(list(tmp_path.iterdir())) == 1
    calls.clear()
    assert PP.plan_program(g, acfg, "block", progress=calls.append) == (plan, costs)
    assert not calls
    f = next(tmp_path.iterdir())
    f.write_text("{not json")
    assert PP.plan_program(g, acfg, "block", progress=calls.append)[0] == plan and calls
    json.loads(f.read_text())


def test_a_network_the_program_cannot_run_falls_back_to_the_scheduler(capsys):
    """igcv's grouped convolutions are not in the network program: `plan` says so in one line
    and gives the scheduler's plan."""
    assert main(["plan", "zoo:igcv", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cannot run igcv" in out and "grouped convolutions" in out and "MACs" in out


def test_plan_and_run_agree(tmp_path, capsys):
    """`blockfuse plan` on a board with a configuration gives the plan `run` executes and the
    cost the run then counts."""
    out = tmp_path / "p.json"
    assert main(["plan", "zoo:vgg16@32", "--json", str(out), "--quiet"]) == 0
    d = json.loads(out.read_text())
    assert d["planner"] == "program" and any(len(grp["nodes"]) > 1 for grp in d["groups"])
    g = zoo.get("vgg16", 32)
    plan, _ = PP.plan_program(g, get_config("ulx3s-85f"), "block")
    assert Plan("block", [Group(grp["nodes"], tuple(grp["block"]) if grp["block"] else None)
                          for grp in d["groups"]]) == plan


def test_groups_are_costed_after_the_layer_before_them(monkeypatch):
    """MobileNet's pattern (pointwise, depthwise, pointwise, … at 14×14×512): the search costs
    each group as what it adds after the layer ahead of it, and its plan runs faster, compiled
    and predicted whole, than the plan searched on groups costed alone (which pay at their
    start for loads the program runs beside the layer ahead)."""
    b = GraphBuilder("mb", (512, 14, 14), seed=3)
    t = b.conv(b.input, 512, 1, pad=0)
    for _ in range(2):
        t = b.conv(t, 512, 3, groups=512)
        t = b.conv(t, 512, 1, pad=0)
    g, acfg = b.build(), get_config("ulx3s-85f")
    plan, _ = PP.plan_program(g, acfg, "fused")
    alone = PP._Planner.cost
    monkeypatch.setattr(PP._Planner, "cost",
                        lambda self, nodes, block, before=None: alone(self, nodes, block))
    other, _ = PP.plan_program(g, acfg, "fused")
    assert plan != other
    assert _objective(g, acfg, plan)[0] < _objective(g, acfg, other)[0]
