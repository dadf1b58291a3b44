"""Memories and the memory system: the memory-port stream interface, block RAM and SPRAM
targets, the arbiter, the SDR SDRAM controller, and the memory self-test."""
