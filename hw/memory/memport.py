"""Memory port: the one interface between whoever uses memory (link command processor, engine
controller) and whatever provides it (block RAM, SPRAM, SDRAM controller).

A port is two ``lib.stream`` streams seen from the *initiator*:

* ``req``  (out): ``{addr, write, data}`` — one word per transfer; ``addr`` is a word address.
* ``resp`` (in):  read data — exactly one beat per read request, in request order.
  Writes produce no response.

Targets take ``MemPortSignature(...).flip()``.  Both streams follow the valid/ready rules of
``amaranth.lib.stream``: a transfer happens on a cycle where valid and ready are both high,
and valid, once raised, stays up with its payload unchanged until the transfer.
"""
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def mem_request_layout(addr_width: int, data_width: int) -> data.StructLayout:
    return data.StructLayout({"addr": addr_width, "write": 1, "data": data_width})


class MemPortSignature(wiring.Signature):
    """Initiator view of a memory port with ``addr_width``-bit word addresses and
    ``data_width``-bit words."""

    def __init__(self, addr_width: int, data_width: int):
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "req": Out(stream.Signature(mem_request_layout(addr_width, data_width))),
            "resp": In(stream.Signature(data_width)),
        })

    def __eq__(self, other):
        return (isinstance(other, MemPortSignature) and self.addr_width == other.addr_width
                and self.data_width == other.data_width)

    def __repr__(self):
        return f"MemPortSignature({self.addr_width}, {self.data_width})"
