"""The host link: UART, COBS/CRC framing and the command processor behind them."""
