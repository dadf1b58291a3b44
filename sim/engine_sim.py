"""Former home of the engine's host side, kept for its importers; the parts now live in
``host.compiler.layer`` (compile_conv, LayerProgram, capacity checks), ``host.compiler.tiling``
(conv_chunks, conv_parts), ``host.compiler.pack`` (pack_program, unpack_output, program_bytes),
``host.runtime.engine_model`` (emulate, cycle formulas), ``sim.engine_rtl`` (Verilator runs) and
``sim.engine_layers`` (run_conv, run_fc, EngineSim)."""
from host.compiler.layer import (DEFAULT_CONFIG, SPATIAL, EngineCapacityError, LayerProgram,
                                 check_capacity, compile_conv, out_words)
from host.compiler.pack import pack_program, program_bytes, unpack_output
from host.compiler.tiling import chunk_ranges, conv_chunks, conv_parts
from host.runtime.engine_model import (FEED_LATENCY, array_reads, emulate, emulate_many,
                                   line_mode_cycles, preloaded_cycles)
from sim.engine_layers import EngineSim, run_conv, run_fc
from sim.engine_rtl import engine_verilog, simulate, simulate_many

__all__ = ["DEFAULT_CONFIG", "SPATIAL", "EngineCapacityError", "LayerProgram", "check_capacity",
           "compile_conv", "out_words", "pack_program", "program_bytes", "unpack_output",
           "chunk_ranges", "conv_chunks", "conv_parts", "FEED_LATENCY", "array_reads", "emulate", "emulate_many",
           "line_mode_cycles", "preloaded_cycles", "EngineSim", "run_conv", "run_fc",
           "engine_verilog", "simulate", "simulate_many"]
