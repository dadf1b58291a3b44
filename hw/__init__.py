"""The gateware: engine, link, memory system and SoC tops."""


def fpga_family(platform) -> str | None:
    """The FPGA family a design elaborates for, lower case (``"ecp5"``, ``"ice40"``; Amaranth's
    iCE40 platforms say ``"iCE40"``), or None for simulation (no platform, or one without a
    family)."""
    family = getattr(platform, "family", None)
    return str(family).lower() if family else None
