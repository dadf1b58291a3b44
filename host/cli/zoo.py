"""``blockfuse zoo`` (table of the zoo networks) and ``blockfuse zoo info NAME [--json]``.

Both come from shape inference alone (:func:`host.model.zoo.info`): no weights are drawn and nothing is
run, so they answer instantly even for VGG16.
"""
from __future__ import annotations

import json

from host.model import zoo


def register(sub):
    p = sub.add_parser("zoo", help="list the model zoo (MACs, parameters); 'zoo info NAME' for layers",
                       description="List the built-in networks, usable as MODEL 'zoo:NAME'.")
    p.set_defaults(func=run_list)
    zsub = p.add_subparsers(dest="zoo_command", metavar="ACTION")
    q = zsub.add_parser("info", help="per-layer shapes, MACs and parameters of one network")
    q.add_argument("name", metavar="NAME", help=f"one of: {', '.join(zoo.names())}")
    q.add_argument("--json", action="store_true", help="print JSON (total_macs, params, layers)")
    q.add_argument("--resolution", type=int, nargs="+", metavar="N",
                   help="input size: N (square) or H W; default: the published size")
    q.set_defaults(func=run_info)


def _human(v: float) -> str:
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= f:
            return f"{v / f:.2f} {unit}"
    return str(int(v))


def run_list(args) -> int:
    rows = [("name", "input (CxHxW)", "MACs", "params", "layers", "published MACs / params")]
    for name in zoo.names():
        i = zoo.info(name)
        pub = i["published"]
        rows.append((name, "x".join(map(str, i["input_shape"])), _human(i["total_macs"]),
                     _human(i["params"]), str(len(i["layers"])),
                     f"{_human(pub['macs'])} / {_human(pub['params'])}" if pub else "-"))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) if k in (0, 1, 5) else c.rjust(w)
                        for k, (c, w) in enumerate(zip(r, widths))).rstrip())
    print("\nMACs count Conv+FC multiply-accumulates; params = weights + biases. "
          "Use as MODEL zoo:NAME; details: blockfuse zoo info NAME [--json]")
    return 0


def _resolution(args):
    r = args.resolution
    if not r:
        return None
    if len(r) > 2:
        from host.errors import UserError
        raise UserError("--resolution takes N or H W")
    return r[0] if len(r) == 1 else tuple(r)


def run_info(args) -> int:
    i = zoo.info(args.name, _resolution(args))
    if args.json:
        print(json.dumps(i, indent=1))
        return 0
    print(f"{i['name']}: input {'x'.join(map(str, i['input_shape']))} → "
          f"{'x'.join(map(str, i['output_shape']))}, {i['total_macs']:,} MACs, {i['params']:,} params")
    if i["published"]:
        p = i["published"]
        print(f"published: {_human(p['macs'])} MACs, {_human(p['params'])} params ({p['source']})")
    print(i["description"])
    rows = [("layer", "op", "in", "out", "MACs", "params")]
    for r in i["layers"]:
        rows.append((r["name"], r["op"], " ".join("x".join(map(str, s)) for s in r["in_shape"]),
                     "x".join(map(str, r["out_shape"])), f"{r['macs']:,}", f"{r['params']:,}"))
    widths = [max(len(r[k]) for r in rows) for k in range(6)]
    for r in rows:
        print("  ".join(c.ljust(w) if k < 4 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths))))
    return 0
