"""The whole link SoC under Verilator (UART line level): random bytes, truncated frames, bad CRCs,
oversize and inconsistent lengths, mixed with good commands.

Every reply is compared with ``host.runtime.protocol.DeviceModel``; a final read of the whole memory
must equal the model's memory, so a refused frame cannot have written anything; every good frame
after garbage must succeed (the model says OK and so must the device).  The bench has a cycle
budget, so a hang fails the test instead of blocking it.  Also measures link efficiency.
"""
import json
import random
import tempfile
from pathlib import Path

import pytest

from host.runtime import protocol as P
from sim.link_sim import SimConfig, run_bench
from tests.link_cases import compare_replies, expected_replies, make_cases

CONFIG = SimConfig()
REPO = Path(__file__).resolve().parent.parent


def info_of(config):
    return config.info()


def run_wire(chunks, n_replies, config=CONFIG, wait=False):
    """Send ``chunks`` through the SoC's UART; ``wait``: each chunk only after the replies
    to the previous one (``n_replies[i]``) came back.  Fails if the simulated time exceeds
    four times what the bytes need on the line (a hang)."""
    line_bytes = sum(map(len, chunks)) + 1100 * sum(n_replies)
    budget = 4 * line_bytes * 10 * config.divisor * 10 + 1e6
    with tempfile.TemporaryDirectory(prefix="linkwire-") as d:
        d = Path(d)
        (d / "chunks.json").write_text(json.dumps([c.hex() for c in chunks]))
        (d / "expect.json").write_text(json.dumps(n_replies))
        n, fail = run_bench(config, "wire", {"BLOCKFUSE_LINK_DIR": d,
                                             "BLOCKFUSE_LINK_WAIT": int(wait),
                                             "BLOCKFUSE_LINK_BUDGET_NS": budget},
                            d / "sim.log", d / "results.xml")
        assert n == 1 and fail == 0, (d / "sim.log").read_text()[-3000:]
        return (d / "out.bin").read_bytes(), json.loads((d / "stats.json").read_text())


def replies_of(out: bytes):
    bodies = []
    for enc in out.split(b"\x00")[:-1]:
        body, err = P.check_frame(enc)
        assert err is None, f"device sent a damaged frame {enc[:20].hex()}"
        bodies.append(body)
    return bodies


def robustness_run(seed, n):
    rng = random.Random(seed)
    info = info_of(CONFIG)
    model = P.DeviceModel(info)
    chunks = make_cases(rng, info, n)
    # finish with good frames: the whole memory read back (checks no refused frame wrote)
    step = info.max_payload
    chunks += [P.frame(P.req_read(0xEE, a, step)) for a in range(0, info.mem_bytes, step)]
    counts = [len(expected_replies(P.DeviceModel(info), c)) for c in chunks]
    expect = expected_replies(model, b"".join(chunks))
    out, _ = run_wire(chunks, counts, wait=True)
    got = replies_of(out)
    compare_replies(got, expect, info.n_perf)
    memory = b"".join(r[3:] for r in got[-(info.mem_bytes // step):])
    assert memory == bytes(model.mem)
    return expect


def test_robustness_fast():
    expect = robustness_run(seed=7, n=int(__import__("os").environ.get("LINK_CASES", 300)))
    statuses = {r[2] for r in expect}
    # the run must have exercised every refusal, or it proves little
    assert {s.value for s in P.Status if s != P.Status.BUSY} <= statuses


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_robustness_slow(seed):
    robustness_run(seed=1000 + seed, n=1000)


def efficiency(wait, n_frames=24):
    info = info_of(CONFIG)
    rng = random.Random(3)
    chunks = [P.frame(P.req_write(i, (i * info.max_payload) % info.mem_bytes,
                                  bytes(rng.randrange(256) for _ in range(info.max_payload))))
              for i in range(n_frames)]
    out, stats = run_wire(chunks, [1] * n_frames, wait=wait)
    got = replies_of(out)
    assert [r[2] for r in got] == [0] * n_frames
    payload = n_frames * info.max_payload
    return payload / (stats["bit_times"] / 10), stats


def test_link_efficiency():
    """Bulk-write payload throughput in bytes per byte-time of the line (target >= 0.90)."""
    eff_stream, s1 = efficiency(wait=False)
    eff_wait, s2 = efficiency(wait=True)
    out = REPO / "build" / "link_efficiency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"pipelined": eff_stream, "stop_and_wait": eff_wait,
                               "max_payload": CONFIG.max_payload, "divisor": CONFIG.divisor},
                              indent=1))
    assert eff_stream >= 0.90, eff_stream
    assert eff_wait >= 0.90, eff_wait
    assert eff_stream <= 1.0
