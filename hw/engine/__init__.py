"""The convolution engine: PEs, the systolic array, requantisation lanes, pooling, the row feeder
and line buffers, and the engine top that sequences one layer."""
