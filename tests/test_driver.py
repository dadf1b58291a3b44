"""The host driver over both transports, with the same tests:

* ``serial``: the real pyserial transport on a pseudo-terminal, with the Python reference model
  of the device (``host.runtime.protocol.DeviceModel``) on the other end;
* ``sim``: the Verilated link SoC, every byte through its UART.

Plus robustness: a noisy line (driver retries), a device that stops answering mid-transfer or
vanishes (driver raises one clear error in bounded time), a missing port.
"""
import os
import random
import threading
import time

import pytest

from host.runtime import protocol as P
from host.cli.main import main as cli_main
from host.runtime.driver import CommandRefused, Device, DeviceError, NoReply, SerialTransport
from sim.link_sim import SimConfig

SIM = SimConfig()


class PtyModelDevice:
    """The reference model behind a pseudo-terminal.  ``corrupt``: probability that a byte the
    device receives is flipped; ``stop_after``: stop answering after that many replies."""

    def __init__(self, info, corrupt=0.0, stop_after=None, seed=0, silent=()):
        self.model = P.DeviceModel(info)
        self.master, slave = os.openpty()
        import tty
        tty.setraw(self.master)
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.corrupt, self.stop_after = corrupt, stop_after
        self.silent = range(*silent) if silent else range(0)
        self.handled = 0
        self.rng = random.Random(seed)
        self.replies = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import select
        buf = bytearray()
        while self.running:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for b in data:
                if self.corrupt and self.rng.random() < self.corrupt:
                    b ^= 1 << self.rng.randrange(8)
                if b:
                    buf.append(b)
                    continue
                reply = self.model.handle(bytes(buf))
                buf.clear()
                if reply is None:
                    continue
                self.handled += 1
                if self.stop_after is not None and self.replies >= self.stop_after:
                    continue
                if self.handled - 1 in self.silent:      # a stretch of silence
                    continue
                self.replies += 1
                os.write(self.master, P.frame(reply))

    def close(self):
        self.running = False
        self.thread.join()
        os.close(self.master)
        os.close(self._slave)


def model_info():
    return SIM.info()


@pytest.fixture(scope="module")
def sim_device():
    dev = Device.open("sim", config=SIM, retries=2)
    yield dev
    dev.close()


@pytest.fixture(params=["serial", "sim"])
def device(request):
    if request.param == "sim":
        yield request.getfixturevalue("sim_device")
        return
    fake = PtyModelDevice(model_info())
    dev = Device(SerialTransport(fake.path + "@3000000"), timeout=1.0, retries=2)
    yield dev
    dev.close()
    fake.close()


def test_info(device):
    i = device.info()
    assert i == model_info()
    assert i.board == "sim" and i.mem_bytes == SIM.mem_bytes and i.max_payload == SIM.max_payload


def test_write_read_random(device):
    rng = random.Random(11)
    info = device.info()
    shadow = bytearray(device.read(0, info.mem_bytes))
    for _ in range(6):
        n = 4 * rng.randrange(1, 700)
        a = 4 * rng.randrange(0, (info.mem_bytes - n) // 4 + 1)
        data = rng.randbytes(n)
        device.write(a, data)
        shadow[a:a + n] = data
        b = 4 * rng.randrange(0, (info.mem_bytes - 2048) // 4)
        assert device.read(b, 2048) == bytes(shadow[b:b + 2048])
    assert device.read(0, info.mem_bytes) == bytes(shadow)


def test_refusals_leave_memory_alone(device):
    info = device.info()
    device.write(0, b"\x11" * 64)
    before = device.status()["frames_bad"]
    for make in (lambda t: P.req_read(t, info.mem_bytes, 4),
                 lambda t: P.req_write(t, 2, b"\x22" * 4),
                 lambda t: P.req_write(t, info.mem_bytes - 4, b"\x22" * 8),
                 lambda t: bytes([0x42, t])):
        with pytest.raises(CommandRefused) as e:
            device._one(make)
        assert "refused" in str(e.value) and "\n" not in str(e.value)
    assert device.status()["frames_bad"] == before + 4
    assert device.read(0, 64) == b"\x11" * 64
    with pytest.raises(DeviceError, match="outside"):
        device.write(info.mem_bytes, b"1234")
    with pytest.raises(DeviceError, match="multiples"):
        device.read(1, 4)


def test_selftest_and_status(device):
    r = device.selftest(4096, seed=3)
    assert r["bytes"] == 4096
    st = device.status()
    assert st["frames_ok"] >= 9 and not st["busy"]


def test_start_and_poll(device):
    device.start(200)
    st = device.wait_idle(timeout=30)
    assert not st["busy"]


def test_start_busy_on_sim(sim_device):
    # The simulated SoC runs on while the host is between frames (~100k cycles per wall second),
    # so the program must outlast a loaded machine's gap between the two commands: the stub
    # engine's longest busy program (low 16 bits of the address + 1 cycles).
    n = 0xFFFF
    sim_device.start(n)
    with pytest.raises(CommandRefused, match="BUSY"):
        sim_device.start(5)
    st = sim_device.wait_idle(timeout=60)
    assert st["done"] and st["perf"][1] == n + 1 and st["engine_cycles"] >= n


def test_noisy_line_is_retried():
    """1 in 4000 received bytes flipped (about one 1 KiB frame in four damaged): transfers
    still complete, and some frames were resent."""
    fake = PtyModelDevice(model_info(), corrupt=1 / 4000, seed=5)
    try:
        dev = Device(SerialTransport(fake.path), timeout=0.5, retries=10)
        for seed in (2, 3):
            data = random.Random(seed).randbytes(16384)
            dev.write(0, data)
            assert dev.read(0, 16384) == data
        assert dev.stats["resent"] > 0
        dev.close()
    finally:
        fake.close()


def test_device_stops_answering_serial():
    fake = PtyModelDevice(model_info(), stop_after=3)
    try:
        dev = Device(SerialTransport(fake.path), timeout=0.2, retries=2)
        t0 = time.monotonic()
        with pytest.raises(NoReply) as e:
            dev.write(0, bytes(16384))
        assert time.monotonic() - t0 < 5
        assert "no reply" in str(e.value) and "\n" not in str(e.value)
        dev.close()
    finally:
        fake.close()


def test_device_pauses_mid_transfer_then_resumes():
    """Requests 3..7 get no reply (their effects still happen): the driver resends them and the
    transfer completes; the replies that do come late are not mistaken for others."""
    fake = PtyModelDevice(model_info(), silent=(3, 8))
    try:
        dev = Device(SerialTransport(fake.path), timeout=0.3, retries=3)
        data = random.Random(4).randbytes(12288)
        dev.write(0, data)
        assert dev.read(0, 12288) == data
        assert dev.stats["resent"] >= 4
        assert dev.info().board == "sim"
        dev.close()
    finally:
        fake.close()


def test_device_stops_answering_sim():
    """The simulated SoC's replies stop mid-transfer (after 60 bytes)."""
    dev = Device.open("sim", config=SIM, stop_after=60, timeout=3.0, retries=1)
    try:
        with pytest.raises(NoReply):
            dev.write(0, bytes(8192))
    finally:
        dev.close()


def test_simulator_vanishes():
    dev = Device.open("sim", config=SIM, timeout=2.0, retries=1)
    try:
        dev.info()
        dev.t.sim.kill()
        with pytest.raises(DeviceError):
            dev.write(0, bytes(4096))
    finally:
        dev.close()


def test_cli_missing_port(capsys):
    assert cli_main(["device", "info", "--target", "serial:/dev/does-not-exist"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("blockfuse: error: cannot open serial port") and "\n" not in err


def test_cli_silent_port(capsys):
    fake = PtyModelDevice(model_info(), stop_after=0)
    try:
        rc = cli_main(["device", "info", "--target", f"serial:{fake.path}", "--timeout", "0.2",
                       "--retries", "1"])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and "no reply" in err and "\n" not in err
    finally:
        fake.close()


def test_cli_on_sim(capsys):
    assert cli_main(["device", "selftest", "--target", "sim", "--bytes", "2048"]) == 0
    assert "selftest passed: 2048 bytes" in capsys.readouterr().out
    assert cli_main(["device", "info", "--target", "sim"]) == 0
    out = capsys.readouterr().out
    assert "board          sim" in out and "16384 B" in out


def test_engine_port_sum_program_on_sim(sim_device):
    """START reaches the engine port; the stub engine reads and writes memory through the
    arbiter it shares with the link, and the result comes back over the link."""
    import struct
    rng = random.Random(8)
    words = [rng.randrange(1 << 32) for _ in range(rng.randrange(5, 60))]
    base = 0x1000
    sim_device.write(base, struct.pack(f"<{len(words) + 2}I", len(words), *words, 0xDEADBEEF))
    sim_device.start((1 << 30) | base)
    st = sim_device.wait_idle(timeout=30)
    assert st["done"] and st["engine_error"] == 0
    got = struct.unpack("<I", sim_device.read(base + 4 * (len(words) + 1), 4))[0]
    assert got == sum(words) & 0xFFFFFFFF
    assert sim_device.read(base, 4) == struct.pack("<I", len(words))   # program intact


def test_run_entry_point_reports_missing_engine():
    from host.runtime.driver import open_device
    fake = PtyModelDevice(model_info())
    try:
        with pytest.raises(DeviceError, match="no convolution engine") as e:
            open_device(fake.path)
        assert "\n" not in str(e.value)
    finally:
        fake.close()


def test_a_cleanly_ended_simulators_logs_go_with_it():
    """Every simulated device writes its logs to a folder of its own; a run of the test suite
    opens hundreds, so a simulator that ended cleanly takes its folder with it."""
    dev = Device.open("sim", config=SIM, retries=1)
    logdir = dev.t.sim.logdir
    try:
        dev.info()
        assert (logdir / "sim.log").exists()
    finally:
        dev.close()
    assert dev.t.sim.proc.returncode == 0
    assert not logdir.exists()
