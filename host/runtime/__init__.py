"""Running networks: the bit-exact golden model, the link protocol and the device driver."""
