"""host.bench.placed_paths on small placed netlists in nextpnr's JSON form: the slowest path is
the one with more logic and longer wires, carry chains cost less than logic levels, constants
start no path, and each pair of units is named once."""
from host.bench.placed_paths import slow_paths, unit_of

FF, COMB, RAM = "TRELLIS_FF", "TRELLIS_COMB", "DP16KD"
PORTS = {FF: {"DI": "input", "CE": "input", "Q": "output"},
         COMB: {"A": "input", "B": "input", "FCI": "input", "F": "output", "FCO": "output"},
         RAM: {"ADA0": "input", "DOB0": "output"}, "GND": {"Y": "output"}}


def netlist(*cells):
    """cells: (name, type, x, y, {port: net})"""
    return {"modules": {"top": {"cells": {
        name: {"type": kind, "attributes": {"NEXTPNR_BEL": f"X{x}/Y{y}/SLICEA"},
               "port_directions": {p: PORTS[kind][p] for p in conn},
               "connections": {p: [n] for p, n in conn.items()}}
        for name, kind, x, y, conn in cells}}}}


def test_the_far_deep_path_is_the_slowest_and_each_unit_pair_once():
    d = netlist(
        ("a.src.r", FF, 0, 0, {"Q": 1}),
        ("a.mid.l1", COMB, 30, 0, {"A": 1, "F": 2}),
        ("a.mid.l2", COMB, 30, 1, {"A": 2, "F": 3}),
        ("b.dst.r", FF, 60, 0, {"DI": 3}),               # 2 levels, 61 tiles of wire
        ("b.dst.r2", FF, 1, 0, {"DI": 1}),               # no logic, 1 tile
        ("a.src.q", FF, 2, 2, {"Q": 4}),
        ("a.src.l", COMB, 3, 2, {"A": 4, "F": 5}),
        ("b.dst.q", FF, 4, 2, {"DI": 5}),                # same units as the slowest: not listed
        ("c.ram.mem", RAM, 10, 10, {"DOB0": 6}),
        ("c.out.r", FF, 11, 10, {"DI": 6}))              # a block RAM starts late
    rows = slow_paths(d, 5)
    assert [(r["from_unit"], r["to_unit"]) for r in rows] == [
        ("a.src", "b.dst"), ("c.ram", "c.out")]
    first = rows[0]
    assert first["logic_cells"] == 2 and first["from_cell"] == "a.src.r"
    assert first["to_cell"] == "b.dst.r.DI"
    # FF 0.55 + wire 30 tiles + cell + wire 1 tile + cell + wire 30 tiles
    assert abs(first["ns"] - (0.55 + 3 * 0.45 + 61 * 0.05 + 2 * 0.45)) < 0.11
    assert rows[1]["ns"] > 4.3                           # the block RAM's clock-to-out


def test_a_carry_chain_is_cheaper_than_logic_levels_and_constants_start_nothing():
    chain = [("gnd", "GND", 0, 0, {"Y": 9}), ("u.r", FF, 0, 0, {"Q": 1})]
    net = 1
    for k in range(8):                                   # 8 cells of carry chain
        conn = {"A": 1, "FCO": 100 + k}
        if k:
            conn["FCI"] = 100 + k - 1
        else:
            conn["B"] = 9                                # a constant input
        chain.append((f"u.add.c{k}", COMB, 1, 0, conn))
    chain.append(("u.add.sum", COMB, 1, 0, {"FCI": 107, "F": 200}))
    chain.append(("v.r", FF, 1, 0, {"DI": 200}))
    net = slow_paths(netlist(*chain), 3)
    assert len(net) == 1 and net[0]["from_cell"] == "u.r" and net[0]["logic_cells"] == 9
    assert net[0]["ns"] < 0.55 + 0.5 + 0.45 + 8 * 0.06 + 0.3 + 0.5 + 0.2   # not 9 levels


def test_units_drop_cell_names_banks_and_numbers():
    assert unit_of("link.engine.controller.act.bank0.0.14") == "link.engine.controller.act"
    assert unit_of("link.engine.engine.array.pe_3_4.mult") == "link.engine.engine.array"
    assert unit_of("arb.bus2__req__payload_TRELLIS_FF_Q_8") == "arb"
    assert unit_of("lonely") == "top"
