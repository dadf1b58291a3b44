"""Model zoo: sizes against published figures, determinism, all three schedules on every network.

Counts use the full-resolution graphs from shape inference alone (no weights drawn); execution
uses reduced input sizes so the file runs in well under a minute per core.
"""
import copy
import dataclasses
import json

import numpy as np
import pytest

from host.runtime import golden
from host.model import zoo
from host.model.builder import smooth_input
from host.cli.main import main as cli_main
from host.errors import UserError
from host.model.ir import Conv, Permute, Pool
from host.compiler.plan import Group, Plan, default_plan

# reduced input size per network for execution tests; block sizes follow from tiled_plan()
TEST_RES = {"vgg16": 64, "mobilenet_v1": 64, "shufflenet_v1": 64, "squeezenet1_1": 96,
            "igcv": 32, "resnet18": 64, "digits": 8, "digits_random": 12}
# fused: a deliberately ragged block (does not divide the map) — fused must not care
FUSED_BLOCK = {"vgg16": (24, 40), "mobilenet_v1": (24, 40), "shufflenet_v1": (24, 40),
               "squeezenet1_1": (40, 24), "igcv": (12, 20), "resnet18": (24, 40), "digits": (3, 5),
               "digits_random": (5, 3)}


def test_zoo_lists_every_network_of_the_issue():
    assert zoo.names() == ["vgg16", "mobilenet_v1", "shufflenet_v1", "squeezenet1_1", "igcv",
                           "resnet18", "digits", "digits_random"]
    assert set(TEST_RES) == set(zoo.names())


# ---------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------

def _close(ours, published, name, what):
    """Within 2% — or, for a figure published as approximate to 2 significant digits, within
    its rounding interval (ShuffleNet's '1.9 M (approx.)' parameters)."""
    rel = ours / published - 1
    if abs(rel) <= 0.02:
        return
    approx = (name, what) in {("shufflenet_v1", "params")}
    step = 10 ** (np.floor(np.log10(published)) - 1)          # last published digit
    assert approx and abs(ours - published) <= step / 2, \
        f"{name} {what}: {ours:,} vs published {published:,.0f} ({rel:+.2%})"


@pytest.mark.parametrize("name", [n for n in zoo.names() if zoo.published(n)])
def test_macs_and_params_match_published(name):
    i = zoo.info(name)
    pub = zoo.published(name)
    assert i["input_shape"] == [3, 224, 224]
    _close(i["total_macs"], pub["macs"], name, "macs")
    _close(i["params"], pub["params"], name, "params")
    assert i["total_macs"] == sum(r["macs"] for r in i["layers"])


def test_vgg16_structure_and_conv_only_figures():
    """docs/published.md: 13 conv layers, 14.7 M conv weights, 15.3-15.5 G MACs incl. FC."""
    i = zoo.info("vgg16")
    convs = [r for r in i["layers"] if r["op"] == "conv"]
    fcs = [r for r in i["layers"] if r["op"] == "fc"]
    assert len(convs) == 13 and len(fcs) == 3
    conv_w = sum(r["params"] - r["out_shape"][0] for r in convs)
    assert abs(conv_w / 14.7e6 - 1) < 0.01
    assert 15.3e9 <= i["total_macs"] <= 15.5e9
    assert fcs[0]["in_shape"] == [[512 * 7 * 7]]


def test_digits_counts_by_hand():
    i = zoo.info("digits")
    # conv 1→16 3x3 on 8x8, conv 16→32 3x3 s2 → 4x4, FC 512→10
    assert i["total_macs"] == 16 * 9 * 64 + 32 * 16 * 9 * 16 + 512 * 10
    assert i["params"] == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (512 * 10 + 10)
    assert i["output_shape"] == [10]


def test_reduced_resolution_changes_only_spatial_sizes():
    full, small = zoo.info("resnet18"), zoo.info("resnet18", 64)
    assert small["params"] == full["params"]                  # GAP head: same parameters
    assert small["total_macs"] == pytest.approx(full["total_macs"] * (64 / 224) ** 2, rel=0.05)
    v = zoo.info("vgg16", (64, 96))
    assert v["input_shape"] == [3, 64, 96]
    assert [r for r in v["layers"] if r["name"] == "fc6"][0]["in_shape"] == [[512 * 2 * 3]]


def _connectivity(node: Conv, cin: int) -> np.ndarray:
    """Boolean (out, in) channel connectivity of a (group) convolution."""
    o = node.out_channels
    og, ig = o // node.groups, cin // node.groups
    return (np.arange(o)[:, None] // og) == (np.arange(cin)[None, :] // ig)


def test_igcv_blocks_meet_the_complementary_condition():
    """IGCV1: through primary group conv → interleave → secondary group conv every output channel
    reaches every input channel along exactly one path."""
    g = zoo.shape_graph("igcv")
    blocks = [n for n in g.nodes if isinstance(n, Permute)]
    assert len(blocks) == 9
    for perm in blocks:
        prim = g.producer(perm.inputs[0])
        sec = g.consumers(perm.output)[0]
        assert isinstance(prim, Conv) and isinstance(sec, Conv)
        assert prim.kernel == (3, 3) and sec.kernel == (1, 1) and prim.groups > 1 and sec.groups > 1
        cin = g.tensors[prim.inputs[0]].shape[0]
        a = _connectivity(prim, cin).astype(int)
        p = np.eye(len(perm.perm), dtype=int)[perm.perm]          # y = P @ x
        s = _connectivity(sec, len(perm.perm)).astype(int)
        paths = s @ p @ a
        assert np.all(paths == 1), f"{perm.name}: paths per (out, in) {np.unique(paths)}"
        # without the interleave the secondary conv would not mix the primary partitions
        assert not np.all(s @ a >= 1)


# ---------------------------------------------------------------------------------------------
# Determinism and caching
# ---------------------------------------------------------------------------------------------

def graphs_equal(a, b) -> bool:
    if (a.name, a.input, a.output) != (b.name, b.input, b.output) or len(a.nodes) != len(b.nodes):
        return False
    if {k: (t.shape, t.scale, t.zero_point) for k, t in a.tensors.items()} != \
            {k: (t.shape, t.scale, t.zero_point) for k, t in b.tensors.items()}:
        return False
    for m, n in zip(a.nodes, b.nodes):
        if type(m) is not type(n):
            return False
        for f in dataclasses.fields(m):
            u, v = getattr(m, f.name), getattr(n, f.name)
            if isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
                if not np.array_equal(u, v):
                    return False
            elif tuple(u) != tuple(v) if isinstance(u, (list, tuple)) else u != v:
                return False
    return True


@pytest.mark.parametrize("name", ["shufflenet_v1", "digits"])
def test_builds_are_deterministic(name):
    a = zoo.build(name, TEST_RES[name])
    b = zoo.build(name, TEST_RES[name])
    assert graphs_equal(a, b)
    assert a is not b
    # and the check itself can fail: one weight changed is noticed
    c = copy.deepcopy(b)
    c.nodes[0].weight = c.nodes[0].weight.copy()
    c.nodes[0].weight.flat[0] ^= 1
    assert not graphs_equal(a, c)


def test_networks_get_different_weights():
    a, b = zoo.build("resnet18", 32, calibrate=False), zoo.build("resnet18", 64, calibrate=False)
    assert np.array_equal(a.nodes[0].weight, b.nodes[0].weight)      # resolution: same weights
    m = zoo.build("mobilenet_v1", 32, calibrate=False)
    assert m.nodes[0].weight.shape != a.nodes[0].weight.shape or \
        not np.array_equal(m.nodes[0].weight, a.nodes[0].weight)


def test_disk_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKFUSE_ZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(zoo, "_MEMORY", {})
    g1 = zoo.get("igcv", 16)
    files = list(tmp_path.glob("igcv-16x16-*.npz"))
    assert len(files) == 1 and zoo.code_hash() in files[0].name
    monkeypatch.setattr(zoo, "_MEMORY", {})
    g2 = zoo.get("igcv", 16)                      # now from disk
    assert graphs_equal(g1, g2) and graphs_equal(g2, zoo.build("igcv", 16))
    g2.nodes[0].weight[...] = 0                   # callers get private copies
    assert graphs_equal(zoo.get("igcv", 16), g1)
    files[0].write_bytes(b"corrupt")              # a corrupt cache file is rebuilt, not trusted
    monkeypatch.setattr(zoo, "_MEMORY", {})
    assert graphs_equal(zoo.get("igcv", 16), g1)


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserError, match="unknown zoo model 'alexnet'.*vgg16"):
        zoo.get("alexnet")
    with pytest.raises(UserError, match="vgg16 at 8x8"):
        zoo.info("vgg16", 8)


# ---------------------------------------------------------------------------------------------
# Execution: layer == fused exactly; block == each block run as its own image
# ---------------------------------------------------------------------------------------------

def _tiles(graph, node) -> bool:
    """A spatial node maps an s-divisible block onto exactly block/s outputs (so block
    convolution can tile its map): output size × stride == input size."""
    if not node.spatial:
        return False
    if isinstance(node, (Conv, Pool)):
        _, _, sh, sw, *_ = node.window()
        _, h, w = graph.tensors[node.inputs[0]].shape
        _, ho, wo = graph.tensors[node.output].shape
        return ho * sh == h and wo * sw == w
    return True


def tiled_plan(graph, schedule="block") -> Plan:
    """Maximal runs of tiling spatial nodes fused, each cut into 2×2 blocks (block edge a
    multiple of the run's total stride); all other nodes alone on the whole map."""
    groups, run = [], []

    def flush():
        if not run:
            return
        _, h, w = graph.tensors[run[0].inputs[0]].shape
        _, ho, wo = graph.tensors[run[-1].output].shape
        sh, sw = h // ho, w // wo
        bh, bw = (h // 2) // sh * sh, (w // 2) // sw * sw
        ok = bh >= sh and bw >= sw and h % sh == 0 and w % sw == 0
        groups.append(Group([n.name for n in run], (bh, bw) if ok else None))
        run.clear()

    for n in graph.nodes:
        if _tiles(graph, n):
            run.append(n)
        else:
            flush()
            groups.append(Group([n.name]))
    flush()
    return Plan(schedule, groups).check(graph)


def blocks_as_images(graph, group, x_in):
    """Block convolution computed independently: cut the group's input into its blocks, run the
    group's nodes as a separate graph (input = one block) under the plain layer schedule on
    each, and stitch the outputs."""
    names = set(group.nodes)
    nodes = [graph.node(n) for n in group.nodes]
    first = nodes[0].inputs[0]
    sub = copy.deepcopy(graph)
    sub.nodes = [n for n in sub.nodes if n.name in names]
    sub.input, sub.output = first, nodes[-1].output
    bh, bw = group.block
    c, h, w = x_in.shape
    rows = []
    for y in range(0, h, bh):
        row = []
        for x in range(0, w, bw):
            crop = x_in[:, y:y + bh, x:x + bw]
            sub.tensors[first].shape = crop.shape
            sub.finalize()
            row.append(golden.run(sub, crop, schedule="layer"))
        rows.append(np.concatenate(row, axis=2))
    return np.concatenate(rows, axis=1)


# networks whose block schedule is checked against blocks_as_images (every blocked group whose
# only outside input is its first node's input and whose only output is its last node's)
INDEPENDENT = {"resnet18", "shufflenet_v1", "squeezenet1_1", "igcv", "digits", "digits_random",
               "mobilenet_v1"}


@pytest.mark.parametrize("name", zoo.names())
def test_network_runs_all_schedules(name):
    g = zoo.get(name, TEST_RES[name])
    x = smooth_input(g, seed=3)
    layer = golden.run(g, x, schedule="layer", keep=True)
    y = layer[g.output]
    assert y.dtype == np.int8 and y.shape == tuple(g.output_tensor.shape)

    # not degenerate: the output spreads over many codes, is not saturated, and no
    # convolution output is dead (a single value everywhere)
    distinct = len(np.unique(y))
    assert distinct >= min(40, y.size // 2), f"only {distinct} distinct output values"
    assert np.mean((y == -128) | (y == 127)) < 0.5
    for n in g.nodes:
        if isinstance(n, Conv):
            assert len(np.unique(layer[n.output])) >= 32, f"{n.name} output is (nearly) constant"

    # fused with halos == layer, bit for bit, even with ragged blocks
    fused = golden.run(g, x, plan=default_plan(g, "fused", FUSED_BLOCK[name]))
    assert np.array_equal(fused, y)

    # block convolution on 2x2 blocks per fused run
    plan = tiled_plan(g)
    blocked = [grp for grp in plan.groups if grp.block is not None]
    assert blocked, "no group could be blocked"
    vals = golden.run(g, x, plan=plan, keep=True)
    assert vals[g.output].shape == y.shape
    assert not np.array_equal(vals[g.output], y), "block convolution changed nothing"

    checked = 0
    for grp in blocked:
        nodes, ext, outs = golden._group_io(g, grp)
        if ext != [nodes[0].inputs[0]] or outs != [nodes[-1].output]:
            continue
        want = blocks_as_images(g, grp, vals[ext[0]])
        assert np.array_equal(vals[outs[0]], want), f"group at {grp.nodes[0]}"
        checked += 1
    if name in INDEPENDENT:
        assert checked >= 1


def test_independent_block_check_can_fail():
    """blocks_as_images differs from the plain layer result (block borders are padded)."""
    g = zoo.get("digits")
    x = smooth_input(g, seed=3)
    plan = tiled_plan(g)
    grp = plan.groups[0]
    assert grp.block == (4, 4) and grp.nodes == ["conv1", "conv2"]
    vals = golden.run(g, x, schedule="layer", keep=True)
    assert not np.array_equal(blocks_as_images(g, grp, x), vals["conv2"])


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def test_cli_zoo_list(capsys):
    assert cli_main(["zoo"]) == 0
    out = capsys.readouterr().out
    for n in zoo.names():
        assert n in out
    assert "15.47 G" in out and "138.36 M" in out


def test_cli_zoo_info_json(capsys):
    assert cli_main(["zoo", "info", "mobilenet_v1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["total_macs"] == zoo.info("mobilenet_v1")["total_macs"]
    assert d["params"] == sum(r["params"] for r in d["layers"])
    assert {"name", "op", "in_shape", "out_shape", "macs", "params"} <= set(d["layers"][0])
    assert len([r for r in d["layers"] if r["op"] == "conv"]) == 27


def test_cli_zoo_info_text_and_errors(capsys):
    assert cli_main(["zoo", "info", "squeezenet1_1"]) == 0
    out = capsys.readouterr().out
    assert "fire9_concat" in out and "513,000" in out
    assert cli_main(["zoo", "info", "alexnet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown zoo model 'alexnet'" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.names())
def test_full_resolution_layer_run(name):
    """Published input size through the golden model (slow: VGG16 builds and calibrates once)."""
    g = zoo.get(name)
    y = golden.run(g, smooth_input(g, seed=4), schedule="layer")
    assert y.shape == tuple(g.output_tensor.shape)
    assert len(np.unique(y)) >= min(40, y.size // 2)
    assert np.mean((y == -128) | (y == 127)) < 0.5
