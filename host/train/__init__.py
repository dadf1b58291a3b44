"""Training with NumPy (no framework download): the digits network, and the block-convolution
study that trains and fine-tunes with blocks padded at their own borders."""
