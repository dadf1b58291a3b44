"""Systems on chip: the link SoC and the board tops with their clock generators."""
