"""Behavioural SDR SDRAM model that stores data and checks the datasheet's timing rules.

:class:`SDRAMModel` is a pure-Python, cycle-based model of one SDR SDRAM chip (geometry and
timing from :class:`hw.memory.sdram.SDRAMChip`).  It is fed the pin values the chip samples at each
rising clock edge (:meth:`SDRAMModel.edge`) and says what the chip drives on DQ for the next edge
(:meth:`SDRAMModel.dq_for_edge`).  Every rule it checks is evaluated in **nanoseconds** from the
clock period, independently of the controller's own cycle arithmetic; any violation raises
:class:`SDRAMTimingError` naming the rule.

Checked rules
-------------
* power-up: no command during the first ``init_us``; then PRECHARGE ALL, ≥ 2 AUTO REFRESH,
  LOAD MODE REGISTER, in that order, before any ACTIVE/READ/WRITE; CKE must stay high;
* mode register: burst length 1/2/4/8, sequential, CAS latency 2 or 3 and allowed at this tCK;
* tMRD after LOAD MODE REGISTER, tRFC after AUTO REFRESH (no command but NOP meanwhile);
* ACTIVE: bank idle, tRP after its PRECHARGE, tRC after its last ACTIVE, tRRD after an ACTIVE
  of another bank;
* READ/WRITE: row open in the bank (no command to a closed bank), tRCD after ACTIVE, no
  auto-precharge, no interrupted bursts (next column command ≥ BL cycles later); WRITE at least
  CL + BL + 1 cycles after a READ (one idle cycle of DQ turnaround); every beat of a write burst
  driven on DQ;
* PRECHARGE: tRAS after ACTIVE, tWR after the bank's last write beat, not during a write burst
  and not truncating a read burst; rows never open longer than tRAS(max);
* AUTO REFRESH and LOAD MODE REGISTER only with all banks idle and tRP elapsed;
* refresh interval: from the end of initialisation, at least ``floor(t / tREFI) - 8`` refreshes
  at every time ``t`` (JEDEC lets a controller postpone up to 8).

Read data timing (for pin-level testbenches, ``sim/sdram_pins.py``): each edge may be given its
time in ns (``edge(t_ns=...)``); :meth:`SDRAMModel.dq_window` then says when the chip's output for
an edge is valid at its pins: from ``tAC`` (CAS-latency dependent, the part's maximum) after the
previous edge to ``tOH`` (the part's minimum) after that edge; in between DQ is changing.

The model's timings are the fitted part's datasheet values (``hw/memory/sdram_parts.py``), given
as ``chip``; they are independent of the chip the controller was built for.

Use :func:`attach` to run it against an Amaranth simulation of a controller's pins.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMChip

__all__ = ["SDRAMTimingError", "SDRAMModel", "attach", "PINS"]

NEG = -10**12  # "long ago"

#: the pins a chip samples, as the controller names them (``SDRAMPinsSignature``), in the order
#: the models and testbenches take them
PINS = ("clk_en", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dq_o", "dq_oe", "dqm")


class SDRAMTimingError(AssertionError):
    """A command sequence that breaks the datasheet rules."""


@dataclass
class _Bank:
    open_row: int | None = None
    t_act: int = NEG          # cycle of the last ACTIVE
    t_pre: int = NEG          # cycle of the last PRECHARGE
    t_write: int = NEG        # cycle of the last write data beat
    t_read: int = NEG         # cycle of the last READ


@dataclass
class _Stats:
    commands: dict = field(default_factory=dict)
    reads: int = 0
    writes: int = 0


class SDRAMModel:
    """Cycle-based SDRAM chip with storage and timing checks.

    ``clk_freq`` gives the period used to turn cycle counts into ns.  ``postpone`` is the number
    of refreshes the controller may fall behind (8 in JEDEC's rules).  ``seed`` seeds the garbage
    driven on DQ when the chip is not outputting data (so a controller sampling at the wrong
    cycle reads garbage, not a stale correct value).
    """

    def __init__(self, clk_freq: float, chip: SDRAMChip = MT48LC16M16A2_6A, *,
                 postpone: int = 8, seed: int = 0):
        self.chip = chip
        self.tck = 1e9 / clk_freq
        self.postpone = postpone
        self.rng = random.Random(seed)
        self.mem: dict[tuple[int, int, int], int] = {}
        self.banks = [_Bank() for _ in range(1 << chip.bank_bits)]
        self.cycle = -1
        self.phase = "power-up"        # → precharged → refreshed → ready
        self.init_refreshes = 0
        self.cas_latency: int | None = None
        self.burst_length = 1
        self.wburst = None             # (bank, row, column base, next beat) of a write burst
        self.t_col = NEG               # cycle of the last READ/WRITE
        self.t_ready: int | None = None
        self.refreshes = 0             # since t_ready
        self.t_ref = NEG
        self.t_lmr = NEG
        self.t_read = NEG
        self.read_data: dict[int, int] = {}   # edge → value the chip drives for that edge
        self.t_edge: dict[int, float] = {}    # edge → its time (ns), for dq_window
        self.stats = _Stats()

    # ---- helpers --------------------------------------------------------------------------
    def _ns(self, cycles: int) -> float:
        return cycles * self.tck

    def _fail(self, rule: str, msg: str):
        raise SDRAMTimingError(f"cycle {self.cycle} ({self._ns(self.cycle) / 1e3:.3f} µs): "
                               f"{rule}: {msg}")

    def _need(self, since: int, t_ns: float, rule: str, what: str):
        elapsed = self._ns(self.cycle - since)
        if elapsed < t_ns - 1e-9:
            self._fail(rule, f"{what} after {elapsed:.1f} ns, needs ≥ {t_ns} ns")

    def _quiet_checks(self, name: str):
        """Rules that forbid any command shortly after LMR / REFRESH."""
        if self.cycle - self.t_lmr < self.chip.tMRD_ck:
            self._fail("tMRD", f"{name} {self.cycle - self.t_lmr} cycles after LOAD MODE "
                               f"REGISTER, needs ≥ {self.chip.tMRD_ck}")
        self._need(self.t_lmr, self.chip.tMRD, "tMRD", f"{name} after LOAD MODE REGISTER")
        self._need(self.t_ref, self.chip.tRFC, "tRFC", f"{name} after AUTO REFRESH")

    def _all_idle(self, name: str):
        for i, b in enumerate(self.banks):
            if b.open_row is not None:
                self._fail("bank state", f"{name} with bank {i} open (row {b.open_row})")
            self._need(b.t_pre, self.chip.tRP, "tRP", f"{name} after PRECHARGE of bank {i}")

    # ---- the clock edge -------------------------------------------------------------------
    def edge(self, *, cke: int = 1, cs_n: int, ras_n: int, cas_n: int, we_n: int, ba: int,
             a: int, dq: int = 0, dq_oe: int = 0, dqm: int = 0, t_ns: float | None = None):
        """Process the pin values the chip samples at the next rising edge (at ``t_ns``, default
        ``cycle × tCK``)."""
        self.cycle += 1
        self.t_edge[self.cycle] = self._ns(self.cycle) if t_ns is None else t_ns
        self.t_edge.pop(self.cycle - 8, None)
        self.read_data.pop(self.cycle - 8, None)
        if not cke:
            self._fail("CKE", "CKE low (power-down/self refresh not supported by this model)")
        if dq_oe and self.cycle in self.read_data:
            self._fail("DQ contention", "controller drives DQ while the chip outputs read data")
        self._check_open_rows()
        self._check_refresh_rate()
        if self.wburst is not None:                            # write burst data beat
            bank, row, base, beat = self.wburst
            if not dq_oe:
                self._fail("write burst", f"beat {beat} of a WRITE burst not driven on DQ")
            self._store(bank, row, base, beat, dq, dqm)
            self.banks[bank].t_write = self.cycle
            self.wburst = (bank, row, base, beat + 1) if beat + 1 < self.burst_length else None
        if cs_n or (ras_n, cas_n, we_n) == (1, 1, 1):
            return                                              # DESELECT / NOP
        name = {(0, 1, 1): "ACTIVE", (1, 0, 1): "READ", (1, 0, 0): "WRITE",
                (0, 1, 0): "PRECHARGE", (0, 0, 1): "REFRESH", (0, 0, 0): "LMR",
                (1, 1, 0): "BURST TERMINATE"}[(ras_n, cas_n, we_n)]
        self.stats.commands[name] = self.stats.commands.get(name, 0) + 1
        if self._ns(self.cycle) < self.chip.init_us * 1e3 - 1e-9:
            self._fail("power-up", f"{name} {self._ns(self.cycle) / 1e3:.1f} µs after power-up, "
                                   f"needs ≥ {self.chip.init_us} µs of NOP")
        self._quiet_checks(name)
        getattr(self, "_cmd_" + name.replace(" ", "_").lower())(ba, a, dq, dqm)

    def dq_for_edge(self, edge: int) -> int | None:
        """What the chip drives on DQ to be sampled at rising edge ``edge`` (None: high-Z)."""
        return self.read_data.get(edge)

    def dq_window(self, edge: int, t_next_edge: float | None = None):
        """``(value, t_valid, t_until)``: the chip's output for ``edge`` is stable at its pins from
        ``t_valid`` (tAC after the previous edge) to ``t_until`` (tOH after ``edge``); ``None``
        when it drives nothing for that edge.  ``t_next_edge`` is the time of ``edge`` when the
        model has not reached it yet."""
        value = self.read_data.get(edge)
        if value is None:
            return None
        t_edge = self.t_edge.get(edge, t_next_edge)
        t_prev = self.t_edge.get(edge - 1, t_edge - self.tck if t_edge is not None else None)
        if t_prev is None or t_edge is None:
            return None
        return (value, t_prev + self.chip.tAC(self.cas_latency), t_edge + self.chip.tOH)

    # ---- commands -------------------------------------------------------------------------
    def _cmd_precharge(self, ba, a, dq, dqm):
        if self.phase == "power-up":
            if not (a >> 10) & 1:
                self._fail("power-up", "first command must be PRECHARGE ALL")
            self.phase = "precharged"
        targets = range(len(self.banks)) if (a >> 10) & 1 else [ba]
        for i in targets:
            b = self.banks[i]
            if b.open_row is not None:
                self._need(b.t_act, self.chip.tRAS, "tRAS", f"PRECHARGE of bank {i} after ACTIVE")
                self._need(b.t_write, self.chip.tWR, "tWR", f"PRECHARGE of bank {i} after WRITE")
                if self.wburst is not None and self.wburst[0] == i:
                    self._fail("write burst", f"PRECHARGE of bank {i} during a WRITE burst")
                if self.cycle - b.t_read < self.burst_length:
                    self._fail("read burst", f"PRECHARGE of bank {i} {self.cycle - b.t_read} "
                                             f"cycles after READ truncates the burst of "
                                             f"{self.burst_length}")
            b.open_row = None
            b.t_pre = self.cycle

    def _cmd_refresh(self, ba, a, dq, dqm):
        if self.phase == "power-up":
            self._fail("power-up", "AUTO REFRESH before PRECHARGE ALL")
        self._all_idle("AUTO REFRESH")
        self.t_ref = self.cycle
        if self.phase == "ready":
            self.refreshes += 1
        else:
            self.init_refreshes += 1
            if self.init_refreshes >= 2:
                self.phase = "refreshed"

    def _cmd_lmr(self, ba, a, dq, dqm):
        if self.phase in ("power-up", "precharged"):
            self._fail("power-up", "LOAD MODE REGISTER before PRECHARGE ALL and 2 AUTO REFRESH")
        self._all_idle("LOAD MODE REGISTER")
        bl, bt, cl, op, wb = a & 7, (a >> 3) & 1, (a >> 4) & 7, (a >> 7) & 3, (a >> 9) & 1
        if bl > 3 or bt != 0 or op != 0 or wb != 0:
            self._fail("mode register", f"value {a:#x}: this model supports burst length "
                                        "1/2/4/8, sequential, programmed-burst writes only")
        if cl not in (2, 3):
            self._fail("mode register", f"CAS latency {cl} reserved")
        need = self.chip.tCK_cl2 if cl == 2 else self.chip.tCK_cl3
        if self.tck < need - 1e-9:
            self._fail("CAS latency", f"CL{cl} needs tCK ≥ {need} ns, clock is {self.tck:.2f} ns")
        self.cas_latency = cl
        self.burst_length = 1 << bl
        self.t_lmr = self.cycle
        if self.phase == "refreshed":
            self.phase = "ready"
            self.t_ready = self.cycle

    def _need_ready(self, name):
        if self.phase != "ready":
            self._fail("power-up", f"{name} before initialisation finished "
                                   "(PRECHARGE ALL, 2 AUTO REFRESH, LOAD MODE REGISTER)")

    def _cmd_active(self, ba, a, dq, dqm):
        self._need_ready("ACTIVE")
        b = self.banks[ba]
        if b.open_row is not None:
            self._fail("bank state", f"ACTIVE to bank {ba} whose row {b.open_row} is open")
        self._need(b.t_pre, self.chip.tRP, "tRP", f"ACTIVE of bank {ba} after PRECHARGE")
        self._need(b.t_act, self.chip.tRC, "tRC", f"ACTIVE of bank {ba} after its last ACTIVE")
        for i, other in enumerate(self.banks):
            if i != ba:
                self._need(other.t_act, self.chip.tRRD, "tRRD",
                           f"ACTIVE of bank {ba} after ACTIVE of bank {i}")
        b.open_row = a & ((1 << self.chip.row_bits) - 1)
        b.t_act = self.cycle

    def _column(self, name, ba, a):
        self._need_ready(name)
        b = self.banks[ba]
        if b.open_row is None:
            self._fail("bank state", f"{name} to bank {ba}, which has no open row")
        self._need(b.t_act, self.chip.tRCD, "tRCD", f"{name} to bank {ba} after ACTIVE")
        if (a >> 10) & 1:
            self._fail("auto precharge", f"{name} with auto-precharge is not used by this design")
        if self.cycle - self.t_col < self.burst_length or self.wburst is not None:
            self._fail("burst", f"{name} {self.cycle - self.t_col} cycles after the last column "
                                f"command interrupts its burst of {self.burst_length}")
        self.t_col = self.cycle
        return (ba, b.open_row, a & ((1 << self.chip.col_bits) - 1))

    def _burst_col(self, base, i):
        n = self.burst_length
        return (base & ~(n - 1)) | ((base + i) & (n - 1))

    def _store(self, bank, row, base, beat, dq, dqm):
        key = (bank, row, self._burst_col(base, beat))
        old = self.mem.get(key, 0)
        mask = 0
        for byte in range(self.chip.dq_bits // 8):
            if not (dqm >> byte) & 1:
                mask |= 0xFF << (8 * byte)
        self.mem[key] = (old & ~mask) | (dq & mask)

    def _cmd_read(self, ba, a, dq, dqm):
        bank, row, base = self._column("READ", ba, a)
        for i in range(self.burst_length):
            value = self.mem.get((bank, row, self._burst_col(base, i)))
            if value is None:
                value = self.rng.getrandbits(self.chip.dq_bits)
            self.read_data[self.cycle + self.cas_latency + i] = value
        self.t_read = self.cycle
        self.banks[ba].t_read = self.cycle
        self.stats.reads += 1

    def _cmd_write(self, ba, a, dq, dqm):
        bank, row, base = self._column("WRITE", ba, a)
        need = self.cas_latency + self.burst_length + 1
        if self.cycle - self.t_read < need:
            self._fail("DQ turnaround", f"WRITE {self.cycle - self.t_read} cycles after READ "
                                        f"needs ≥ CL + BL + 1 = {need} (one idle DQ cycle)")
        self._store(bank, row, base, 0, dq, dqm)
        self.banks[ba].t_write = self.cycle
        if self.burst_length > 1:
            self.wburst = (bank, row, base, 1)
        self.stats.writes += 1

    def _cmd_burst_terminate(self, ba, a, dq, dqm):
        self._fail("command", "BURST TERMINATE is not used with burst length 1")

    # ---- continuous rules -----------------------------------------------------------------
    def _check_open_rows(self):
        for i, b in enumerate(self.banks):
            if b.open_row is not None and self._ns(self.cycle - b.t_act) > self.chip.tRAS_max:
                self._fail("tRAS(max)", f"bank {i} row {b.open_row} open longer than "
                                        f"{self.chip.tRAS_max} ns")

    def _check_refresh_rate(self):
        if self.t_ready is None:
            return
        due = int(self._ns(self.cycle - self.t_ready) // self.chip.tREFI)
        if self.refreshes < due - self.postpone:
            self._fail("refresh interval", f"{self.refreshes} AUTO REFRESH in "
                                           f"{self._ns(self.cycle - self.t_ready) / 1e3:.1f} µs, "
                                           f"needs ≥ {due - self.postpone} (tREFI "
                                           f"{self.chip.tREFI} ns, {self.postpone} postponed)")

    def garbage(self) -> int:
        return self.rng.getrandbits(self.chip.dq_bits)


def attach(sim, pins, model: SDRAMModel, *, out_delay: int = 0, in_delay: int = 0):
    """Add a process to an Amaranth ``Simulator`` that plays ``model`` on ``pins`` (a
    :class:`hw.memory.sdram.SDRAMPinsSignature` interface, controller side).

    ``out_delay``/``in_delay`` model I/O registers between the controller and the chip (cycles
    of delay on the command/data outputs and on the read data).  Errors raised by the model
    stop the simulation with the violation.
    """
    names = PINS
    sigs = [getattr(pins, n) for n in names]

    async def process(ctx):
        out_q = []
        in_q = [0] * in_delay
        async for _clk, _rst, *vals in ctx.tick().sample(*sigs):
            out_q.append(dict(zip(names, vals)))
            if len(out_q) > out_delay:
                v = out_q.pop(0)
                model.edge(cke=v["clk_en"], cs_n=v["cs_n"], ras_n=v["ras_n"],
                           cas_n=v["cas_n"], we_n=v["we_n"], ba=v["ba"], a=v["a"],
                           dq=v["dq_o"], dq_oe=v["dq_oe"], dqm=v["dqm"])
                drive = model.dq_for_edge(model.cycle + 1)
            else:
                drive = None
            # value the controller's input register samples at the next edge
            in_q.append(model.garbage() if drive is None else drive)
            ctx.set(pins.dq_i, in_q.pop(0))

    sim.add_process(process)
