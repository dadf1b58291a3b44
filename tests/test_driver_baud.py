"""``serial:PORT`` without a baud rate: the driver tries each board's default rate until INFO
answers, so both boards work without a suffix; ``@BOARD`` and ``@BAUD`` pick one rate."""
import pytest

from host.runtime import protocol as P
from host.runtime.driver import BOARD_BAUDS, Device, DeviceError, NoReply, parse_serial_spec
from hw.soc.top import BOARDS, pick_baud


class FakeBoard:
    """A pyserial stand-in for a board whose UART runs at ``baud``: frames sent at another
    rate arrive as garbage and are never answered (as on a real line)."""

    def __init__(self, board, baud):
        self.model = P.DeviceModel(P.DeviceInfo(board=board, baud=baud, mem_bytes=4096))
        self.baud = baud
        self.opened = []

    def __call__(self, port, baudrate, timeout):
        self.opened.append(baudrate)
        fake = self

        class Port:
            def __init__(self):
                self.out = bytearray()
                self.buf = bytearray()

            def write(self, data):
                if abs(baudrate - fake.baud) > 0.03 * fake.baud:
                    self.out += bytes(b ^ 0x5A for b in data[:3])     # line noise
                    return
                for b in data:
                    if b:
                        self.buf.append(b)
                        continue
                    reply = fake.model.handle(bytes(self.buf))
                    self.buf.clear()
                    if reply is not None:
                        self.out += P.frame(reply)

            @property
            def in_waiting(self):
                return len(self.out)

            def read(self, n):
                data = bytes(self.out[:n])
                del self.out[:n]
                return data

            def close(self):
                pass
        return Port()


def test_board_bauds_come_from_the_board_table():
    assert BOARD_BAUDS == {"ulx3s": 3_000_000, "icebreaker": 6_000_000}
    assert BOARD_BAUDS["icebreaker"] == pick_baud(BOARDS["icebreaker"].clk_hz,
                                                  BOARDS["icebreaker"].baud)


@pytest.mark.parametrize("board,baud", [("ulx3s-85f", 3_030_303), ("icebreaker", 6_000_000)])
def test_bare_port_finds_each_board(monkeypatch, board, baud):
    import serial
    fake = FakeBoard(board, baud)
    monkeypatch.setattr(serial, "Serial", fake)
    with Device.open("serial:/dev/fake", timeout=0.5) as dev:
        assert dev.info().board == board
        dev.write(0, bytes(range(64)))
        assert dev.read(0, 64) == bytes(range(64))
    assert abs(fake.opened[-1] - baud) <= 0.03 * baud


def test_board_suffix_and_explicit_rate():
    assert parse_serial_spec("/dev/x@icebreaker") == ("/dev/x", [6_000_000])
    assert parse_serial_spec("/dev/x@ulx3s-85f") == ("/dev/x", [3_000_000])
    assert parse_serial_spec("/dev/x@115200") == ("/dev/x", [115_200])
    assert parse_serial_spec("/dev/x")[1] == [3_000_000, 6_000_000]
    with pytest.raises(DeviceError, match="baud rate or a board"):
        parse_serial_spec("/dev/x@fast")


def test_nothing_answers(monkeypatch):
    import serial
    monkeypatch.setattr(serial, "Serial", FakeBoard("icebreaker", 115_200))
    with pytest.raises(NoReply, match=r"no reply from serial:/dev/fake at 3,000,000 or "
                                      r"6,000,000 baud"):
        Device.open("serial:/dev/fake")
