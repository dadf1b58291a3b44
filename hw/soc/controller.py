"""The on-chip controller: fetches the network program from off-chip memory and runs it.

A command sequencer (one state per step of an instruction, a ``Switch`` on the opcode) with the
DMA built in.  Per instruction (``hw.soc.isa``, ``docs/isa.md``):

* **fetch** the 256-bit word at ``program + 32·pc`` through the memory port;
* **LOAD**: read the 3-D pattern's memory words in order (requests run ahead of the responses,
  as the port allows), assemble each target word (``target_word_bytes``; with ``dense``, that
  many memory words and zeros above) and write it into the engine through its load port
  (``sel`` = the target), or into the descriptor register;
* **CONV**: once the engine is idle, copy the loaded descriptor into the run's descriptor
  register and pulse the engine's ``start``, then go on to the next instruction while the
  engine runs: the DMA works beside the engine;
* **STORE**: read each output-memory word through the engine's read port and write it out by
  the pattern, one memory word per request;
* a LOAD of the map memory from the activation buffer, or a STORE of the output memory into
  it, whose pattern is map-word aligned (``hw.soc.isa.wide_transfer``), moves a map word per
  cycle through the buffer's wide port instead (``LOAD_WIDE``, ``STORE_WIDE``);
* **POOL**, **GAP**: hand the arguments and the memory port to the vector unit
  (``hw.soc.vector_unit``) until it is idle again; a controller built without one
  (``vector=False``, for the smallest FPGAs) treats them as unused opcodes;
* **HALT**: DONE once the engine is idle.  An unused opcode stops the program with error
  :data:`ERR_OPCODE`.

With an activation buffer (``act_bytes``, ``hw.soc.activation_buffer``) the DMA and the vector
unit see it at ``ACT_BASE`` and up, the memory port everywhere else; the traffic counters take
each side's words from it.

Instructions issue in order; the DMA unit's (LOAD, STORE, POOL, GAP) run here and retire before
the next fetch, so ``sync.dma`` always holds; a CONV waits until the engine has finished the run
before it, and an instruction whose ``sync.engine`` bit is set waits until the engine is idle
(the compiler sets it when the instruction touches on-chip words the engine's current run uses,
``docs/isa.md``).  It plugs into the link SoC as its engine (``ctrl``: START with the program's
byte address, busy/done/error, the counters of :data:`PERF`; ``mem``: the SoC's memory port,
shared with the link).
"""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.link.command import EngineControlSignature
from hw.memory.memport import MemPortSignature
from hw.soc.activation_buffer import ActivationBuffer
from hw.soc.isa import WORD_BITS, Insn, Op, Target, act_wide_words, target_word_bytes
from hw.soc.vector_unit import VectorUnit
from hw.stream_slice import MemPortSlice

__all__ = ["Controller", "PERF", "ERR_OPCODE", "ERR_TARGET"]

#: the performance counters STATUS reports, in order
#: (``wait_cycles``: cycles the controller waited for the engine, at a CONV or a sync bit)
#: (``bytes_read``/``bytes_written``: off-chip data bytes, instructions not counted;
#: ``act_bytes``: bytes moved to and from the activation buffer)
PERF = ("cycles", "engine_cycles", "dma_cycles", "wait_cycles", "bytes_read", "bytes_written",
        "insns", "pc", "act_bytes")
#: error codes (STATUS flags bits 8–15)
ERR_OPCODE = 0x01        #: an unused opcode (6–15)
ERR_TARGET = 0x02        #: LOAD into the output memory, or STORE from another memory


class Controller(wiring.Component):
    """Sequencer + DMA for an engine of configuration ``engine`` (``EngineConfig``) on a memory
    port of ``mem_addr_width``-bit word addresses and ``mem_width``-bit words; ``ld_width``,
    ``desc_layout`` and ``rd_width`` are the engine's load port, descriptor and read port;
    ``act_bytes``: the activation buffer (``hw.soc.activation_buffer``) in its address space
    from ``ACT_BASE`` (0: none); ``vector``: with the vector unit (``POOL``, ``GAP``);
    ``desc_buffers``: 2 = a CONV copies the loaded descriptor into the run's register, 1 = the
    engine reads the loaded one (its LOAD must wait for the run: ``hw.soc.isa.dma_words``)."""

    def __init__(self, engine, mem_addr_width: int, mem_width: int, ld_width: int,
                 desc_layout, rd_width: int, act_bytes: int = 0, vector: bool = True,
                 desc_buffers: int = 2):
        self.cfg = engine
        self.vector = vector
        if desc_buffers not in (1, 2):
            raise ValueError(f"a controller has 1 or 2 descriptor registers, not {desc_buffers}")
        self.desc_buffers = desc_buffers
        self.mw = mem_width
        self.mem_addr_width = mem_addr_width
        self.act_depth = act_bytes * 8 // mem_width
        #: memory words per map word on the activation buffer's wide port (1: none): LOADs of
        #: maps from the buffer and STOREs into it move a map word per cycle through it
        self.wide = act_wide_words(engine, act_bytes, mem_width)
        if WORD_BITS % mem_width or mem_width % 8:
            raise ValueError(f"memory words of {mem_width} bits do not tile an instruction")
        self.wpt = {t: b * 8 // mem_width for t, b in target_word_bytes(engine).items()}
        if any(b * 8 % mem_width for b in target_word_bytes(engine).values()):
            raise ValueError("target words must be whole memory words")
        A = engine.addr_width
        #: counter increments: a memory word's bytes, or a map word's on the wide port
        self.perf_inc_bits = (mem_width // 8 * self.wide).bit_length()
        super().__init__({
            "ctrl": In(EngineControlSignature(len(PERF), self.perf_inc_bits)),
            "mem": Out(MemPortSignature(mem_addr_width, mem_width)),
            # the engine (hw.engine.engine.Engine)'s ports, from its side flipped
            "ld_en": Out(1), "ld_sel": Out(2), "ld_addr": Out(A), "ld_data": Out(ld_width),
            "desc": Out(desc_layout), "start": Out(1), "busy": In(1),
            "rd_addr": Out(A), "rd_data": In(rd_width),
        })

    def elaborate(self, platform):
        m = Module()
        mw, c, mem = self.mw, self.ctrl, self.mem
        MB = mw // 8                                   # bytes per memory word
        sh = (MB - 1).bit_length()                     # byte → word address
        NW = WORD_BITS // mw                           # memory words per instruction
        WB = MB * self.wide                            # bytes per row of the wide port
        lb = (WB - 1).bit_length()
        # the widest target word assembled in ``word`` (a descriptor goes straight into its
        # register instead), and the output memory's word that a STORE writes out
        maxw = max(n for t, n in self.wpt.items() if t != Target.DESC)
        outw = self.wpt[Target.OUT]

        # the memory the DMA and the vector unit see: off chip, and the activation buffer
        # from ACT_BASE (the top address bit) when there is one
        aw = self.mem_addr_width
        fetching = Signal()
        if self.act_depth:
            aw = 32 - sh
            m.submodules.act = act = ActivationBuffer(self.act_depth, aw, self.mem_addr_width,
                                                      mw, wide=self.wide)
            wiring.connect(m, act.mem, wiring.flipped(self.mem))
            # every request and response crosses a register slice on its way to and from the
            # buffer: the DMA's and the vector unit's address adders, the state machine's
            # handshakes and the buffer's far block RAMs never share a clock period (on the
            # placed 85F SoC they did: `docs/soc_place.md`); a cycle each way
            m.submodules.act_slice = act_slice = MemPortSlice(MemPortSignature(aw, mw))
            wiring.connect(m, act_slice.initiator, act.bus)
            mem = act_slice.target
            drained = ~act.bus.req.valid       # the slice has passed every request on
            traffic = (act.offchip_read, act.offchip_write,
                       act.onchip_read | act.onchip_write)
        else:
            drained = 1
            taken = mem.req.valid & mem.req.ready
            traffic = (taken & ~mem.req.payload.write, taken & mem.req.payload.write, 0)

        if self.vector:
            m.submodules.vector = vu = VectorUnit(self.cfg.lanes, aw, mw,
                                                  serial=self.cfg.serial_requant)
        insn = Signal(Insn)
        pc = Signal(32)
        base = Signal(32)                              # the program's byte address
        # the counters live in the link's counter bank: this cycle's increments go out
        # (``pc`` and ``insns`` both count retired instructions from the START)
        inc = {name: c.perf_inc[k] for k, name in enumerate(PERF)}
        dma_cycle, wait_cycle, retire = Signal(), Signal(), Signal()
        busy = Signal()
        m.d.comb += [c.busy.eq(busy), c.start.ready.eq(~busy),
                     inc["cycles"].eq(busy), inc["engine_cycles"].eq(self.busy),
                     inc["dma_cycles"].eq(dma_cycle), inc["wait_cycles"].eq(wait_cycle),
                     inc["insns"].eq(retire), inc["pc"].eq(retire)]
        # data traffic, a memory word at a time on each side (instruction fetches not counted)
        rd_off, wr_off, on_chip = traffic
        wide_access = Signal()                             # a map word on the wide port
        with m.If(~fetching):
            m.d.comb += [inc["bytes_read"].eq(Mux(rd_off, MB, 0)),
                         inc["bytes_written"].eq(Mux(wr_off, MB, 0)),
                         inc["act_bytes"].eq(Mux(wide_access, WB, Mux(on_chip, MB, 0)))]

        # ---- memory requests: one address generator for fetches, LOADs and STOREs --------
        # byte addresses: the current word, the current row's and plane's first word
        # (as wide as the memory's byte addresses: the port drops the bits above anyway)
        ab = 32 if self.act_depth else min(32, self.mem_addr_width + sh)
        cur, row, plane = Signal(ab), Signal(ab), Signal(ab)
        a = insn.args.dma
        i0, i1, i2 = Signal(16), Signal(16), Signal(16)   # words, rows, planes left − 1
        dw = self.wpt[Target.DESC]
        j = Signal(range(max(maxw, dw, NW) + 1))           # memory word within a target word
        wpt = Signal(range(max(maxw, dw) + 1))             # memory words per target word
        req_done = Signal()                                # the pattern's last request is out
        outstanding = Signal(range(64))
        # bytes a request moves the pattern on: a memory word, or a map word on the activation
        # buffer's wide port (``fast``: this transfer takes it, hw.soc.isa.wide_transfer)
        step = Signal(range(WB + 1))
        fast = Signal()
        req_fire = mem.req.valid & mem.req.ready
        resp_fire = mem.resp.valid & mem.resp.ready
        m.d.comb += [mem.req.payload.addr.eq(cur >> sh)]
        m.d.sync += outstanding.eq(outstanding + (req_fire & ~mem.req.payload.write) - resp_fire)

        def start_pattern():
            """Load the address generator from the DMA arguments (LOAD and STORE)."""
            return [cur.eq(a.ext), row.eq(a.ext), plane.eq(a.ext), i0.eq(a.n0 - 1),
                    i1.eq(a.n1 - 1), i2.eq(a.n2 - 1), j.eq(0), req_done.eq(0)]

        def advance():
            """One memory word of the pattern has been requested: move to the next."""
            with m.If(j + 1 < wpt):
                m.d.sync += [j.eq(j + 1), cur.eq(cur + MB)]
            with m.Else():
                m.d.sync += j.eq(0)
                with m.If(i0 != 0):
                    m.d.sync += [i0.eq(i0 - 1), cur.eq(cur + step)]
                with m.Elif(i1 != 0):
                    m.d.sync += [i0.eq(a.n0 - 1), i1.eq(i1 - 1), row.eq(row + a.s1),
                                 cur.eq(row + a.s1)]
                with m.Elif(i2 != 0):
                    m.d.sync += [i0.eq(a.n0 - 1), i1.eq(a.n1 - 1), i2.eq(i2 - 1),
                                 plane.eq(plane + a.s2), row.eq(plane + a.s2),
                                 cur.eq(plane + a.s2)]
                with m.Else():
                    m.d.sync += req_done.eq(1)

        # ---- the target word being assembled (LOAD) or written out (STORE) --------------
        word = Signal(maxw * mw)
        k = Signal(self.cfg.addr_width)                    # on-chip word address
        rj = Signal(range(max(maxw, dw, NW) + 1))          # LOAD: memory word of the response
        ld_pending = Signal()
        target = Signal(Target)
        m.d.comb += [self.ld_data.eq(word[:len(self.ld_data)]), self.ld_addr.eq(k),
                     self.ld_sel.eq(target.as_value()[:2]),
                     self.ld_en.eq(ld_pending & (target != Target.DESC))]
        # LOAD DESC writes its memory words into ``desc`` as they arrive; a CONV copies it into
        # ``desc_run``, which the engine reads for the whole run, so the next run's descriptor
        # may load while this one runs (with one register the engine reads ``desc`` itself)
        desc = Signal(dw * mw)
        n_desc = len(self.desc.as_value())
        desc_run = Signal(n_desc) if self.desc_buffers > 1 else None
        m.d.comb += self.desc.eq(desc_run if desc_run is not None else desc[:n_desc])
        with m.If(ld_pending):
            m.d.sync += [ld_pending.eq(0), k.eq(k + 1)]

        # the engine is idle: not busy, and not just started (``busy`` rises a cycle after
        # ``start``)
        kicked = Signal()
        engine_idle = ~self.busy & ~kicked
        with m.If(self.busy):
            m.d.sync += kicked.eq(0)

        m.d.comb += self.rd_addr.eq(k)

        def target_sizes():
            with m.Switch(insn.args.dma.target):
                for t, n in self.wpt.items():
                    with m.Case(t):
                        m.d.sync += wpt.eq(n)

        err = Signal(8)
        m.d.comb += c.error.eq(err)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(c.start.valid & ~busy):
                    m.d.sync += [busy.eq(1), c.done.eq(0), err.eq(0), pc.eq(0),
                                 base.eq(c.start.payload)]
                    m.d.comb += c.perf_clear.eq((1 << len(PERF)) - 1)
                    m.next = "FETCH"
            with m.State("FETCH"):
                # the instruction's memory words, requests ahead of responses
                m.d.sync += [cur.eq(base + (pc << 5)), j.eq(0), rj.eq(0), req_done.eq(0)]
                m.next = "FETCH_WORDS"
            with m.State("FETCH_WORDS"):
                m.d.comb += [fetching.eq(1), mem.req.valid.eq(~req_done)]
                with m.If(req_fire):
                    m.d.sync += [cur.eq(cur + MB), j.eq(j + 1)]
                    with m.If(j == NW - 1):
                        m.d.sync += req_done.eq(1)
                m.d.comb += mem.resp.ready.eq(1)
                with m.If(resp_fire):
                    # each word into its place (not shifted through the register: then only
                    # the bits the instructions use are flip-flops, ~90 fewer on the UP5K)
                    with m.Switch(rj):
                        for w in range(NW):
                            with m.Case(w):
                                m.d.sync += insn.as_value().word_select(w, mw).eq(
                                    mem.resp.payload)
                    m.d.sync += rj.eq(rj + 1)
                    with m.If(rj == NW - 1):
                        m.next = "DECODE"
            with m.State("DECODE"):
                m.d.sync += [target.eq(a.target), k.eq(a.onchip), rj.eq(0), step.eq(MB),
                             fast.eq(0)] + start_pattern()
                target_sizes()
                with m.If((insn.op == Op.LOAD) & (a.dense != 0)):
                    m.d.sync += wpt.eq(a.dense)        # fewer memory words, the rest zero
                if self.wide > 1:
                    aligned = ((a.ext[:lb] == 0) & (a.s1[:lb] == 0) & (a.s2[:lb] == 0)
                               & a.ext[-1])
                    moves_map = (((insn.op == Op.LOAD) & (a.target == Target.MAP))
                                 | ((insn.op == Op.STORE) & (a.target == Target.OUT)))
                    with m.If(aligned & moves_map):
                        m.d.sync += [fast.eq(1), step.eq(WB), wpt.eq(1)]
                with m.If(insn.sync.engine & (insn.op != Op.CONV) & ~engine_idle):
                    m.next = "WAIT_ENGINE"
                with m.Else():
                    m.next = "DISPATCH"
            with m.State("WAIT_ENGINE"):
                m.d.comb += wait_cycle.eq(1)
                with m.If(engine_idle):
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                with m.Switch(insn.op):
                    with m.Case(Op.HALT):
                        with m.If(engine_idle):
                            m.d.sync += [busy.eq(0), c.done.eq(1)]
                            m.next = "IDLE"
                        with m.Else():
                            m.d.comb += wait_cycle.eq(1)
                    with m.Case(Op.LOAD):
                        with m.If(a.target == Target.OUT):
                            m.next = "FAULT_TARGET"
                        with m.Else():
                            m.next = "LOAD"
                            if self.wide > 1:
                                with m.If(fast):
                                    m.next = "LOAD_WIDE"
                    with m.Case(Op.STORE):
                        with m.If(a.target != Target.OUT):
                            m.next = "FAULT_TARGET"
                        with m.Else():
                            m.next = "STORE_READ"
                            if self.wide > 1:
                                with m.If(fast):
                                    m.next = "STORE_WIDE_FIRST"
                    with m.Case(Op.CONV):
                        m.next = "CONV"
                    if self.vector:
                        with m.Case(Op.POOL, Op.GAP):
                            m.next = "VECTOR"
                    with m.Default():
                        m.next = "FAULT_OPCODE"
            with m.State("LOAD"):
                m.d.comb += dma_cycle.eq(1)
                m.d.comb += mem.req.valid.eq(~req_done & (outstanding < 60))
                with m.If(req_fire):
                    advance()
                m.d.comb += mem.resp.ready.eq(1)
                with m.If(resp_fire):
                    with m.If(target == Target.DESC):
                        # each word into its place, not shifted through: a descriptor bit
                        # the engine does not read is then no flip-flop (~45 on the UP5K)
                        with m.Switch(rj):
                            for w in range(dw):
                                with m.Case(w):
                                    m.d.sync += desc.word_select(w, mw).eq(mem.resp.payload)
                    with m.Elif(rj == 0):
                        m.d.sync += word.eq(mem.resp.payload)  # a new word: zero beyond
                    with m.Else():
                        m.d.sync += word.word_select(rj, mw).eq(mem.resp.payload)
                    with m.If(rj + 1 == wpt):
                        m.d.sync += [rj.eq(0), ld_pending.eq(1)]
                    with m.Else():
                        m.d.sync += rj.eq(rj + 1)
                with m.If(req_done & (outstanding == 0) & ~resp_fire & ~ld_pending):
                    m.next = "NEXT"
            if self.wide > 1:
                rows = act.rows
                wide_row = cur[lb:lb + max(1, (rows - 1).bit_length())]
                # a wide read's row: on its way, and on ``wide_rdata`` this cycle
                reading, got = Signal(ActivationBuffer.WIDE_LATENCY - 1), Signal()
                with m.State("LOAD_WIDE"):
                    # a map word a cycle: read a row, its data into ``word`` when the buffer
                    # has it, written into the engine the cycle after (``ld_pending``)
                    m.d.comb += dma_cycle.eq(1)
                    m.d.comb += [act.wide_addr.eq(wide_row), act.wide_re.eq(~req_done),
                                 wide_access.eq(~req_done)]
                    m.d.sync += Cat(reading, got).eq(Cat(~req_done, reading))
                    with m.If(~req_done):
                        advance()
                    with m.If(got):
                        m.d.sync += [word.eq(act.wide_rdata), ld_pending.eq(1)]
                    with m.If(req_done & (reading == 0) & ~got & ~ld_pending):
                        m.next = "NEXT"
                with m.State("STORE_WIDE_FIRST"):
                    # the output memory answers a cycle after ``rd_addr`` (= k)
                    m.d.comb += dma_cycle.eq(1)
                    m.d.sync += k.eq(k + 1)
                    m.next = "STORE_WIDE"
                with m.State("STORE_WIDE"):
                    # a map word a cycle: the word read last cycle into its row, the next read
                    m.d.comb += dma_cycle.eq(1)
                    m.d.sync += k.eq(k + 1)
                    m.d.comb += [act.wide_addr.eq(wide_row), act.wide_we.eq(1),
                                 act.wide_wdata.eq(self.rd_data), wide_access.eq(1)]
                    advance()
                    with m.If((i0 == 0) & (i1 == 0) & (i2 == 0)):
                        m.next = "NEXT"
            with m.State("STORE_READ"):
                # the engine's output memory answers one cycle after rd_addr (= k)
                m.d.comb += dma_cycle.eq(1)
                m.next = "STORE_LATCH"
            with m.State("STORE_LATCH"):
                m.d.comb += dma_cycle.eq(1)
                m.d.sync += [word.eq(self.rd_data), rj.eq(0)]
                m.next = "STORE_WRITE"
            with m.State("STORE_WRITE"):
                m.d.comb += dma_cycle.eq(1)
                m.d.comb += [mem.req.valid.eq(1), mem.req.payload.write.eq(1),
                             mem.req.payload.data.eq(word[:outw * mw].word_select(rj, mw)
                                                     if outw > 1 else word[:mw])]
                with m.If(req_fire):
                    advance()
                    with m.If(rj + 1 == wpt):
                        m.d.sync += [rj.eq(0), k.eq(k + 1)]
                        with m.If((i0 == 0) & (i1 == 0) & (i2 == 0)):
                            m.next = "NEXT"
                        with m.Else():
                            m.next = "STORE_READ"
                    with m.Else():
                        m.d.sync += rj.eq(rj + 1)
            with m.State("CONV"):
                # in order: the run before this one must have finished
                with m.If(engine_idle):
                    if desc_run is not None:
                        m.d.sync += desc_run.eq(desc[:n_desc])
                    m.next = "CONV_START"
                with m.Else():
                    m.d.comb += wait_cycle.eq(1)
            with m.State("CONV_START"):
                m.d.comb += self.start.eq(1)
                m.d.sync += kicked.eq(1)
                m.next = "NEXT"
            if self.vector:
                with m.State("VECTOR"):
                    m.d.comb += [vu.go.eq(1), vu.gap.eq(insn.op == Op.GAP),
                                 vu.args.eq(insn.args.as_value())]
                    m.next = "VECTOR_WAIT"
                with m.State("VECTOR_WAIT"):
                    # the vector unit has the memory port until it is idle again
                    m.d.comb += dma_cycle.eq(1)
                    m.d.comb += [mem.req.valid.eq(vu.mem.req.valid),
                                 mem.req.payload.eq(vu.mem.req.payload),
                                 vu.mem.req.ready.eq(mem.req.ready),
                                 vu.mem.resp.valid.eq(mem.resp.valid),
                                 vu.mem.resp.payload.eq(mem.resp.payload),
                                 mem.resp.ready.eq(vu.mem.resp.ready)]
                    with m.If(vu.idle):
                        m.next = "NEXT"
            with m.State("NEXT"):
                # the instruction's last requests have left the slice before the next fetch
                # (the traffic counters, which leave fetches out, count them where the buffer
                # takes them)
                with m.If(drained):
                    m.d.sync += pc.eq(pc + 1)
                    m.d.comb += retire.eq(1)
                    m.next = "FETCH"
            with m.State("FAULT_OPCODE"):
                m.d.sync += [err.eq(ERR_OPCODE), busy.eq(0), c.done.eq(1)]
                m.next = "IDLE"
            with m.State("FAULT_TARGET"):
                m.d.sync += [err.eq(ERR_TARGET), busy.eq(0), c.done.eq(1)]
                m.next = "IDLE"
        if self.act_depth:
            # one-hot state where the clock matters (the ULX3S configurations): a state's
            # decoding is one flip-flop, not a compare of the state number, on the enables of
            # the assembly word's ~1,000 flip-flops; the UP5K keeps its few flip-flops
            fsm.state.attrs["fsm_encoding"] = "one-hot"
        return m
