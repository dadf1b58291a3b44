"""Errors whose message is meant for the user: one line, no traceback."""


class UserError(Exception):
    """Bad input or a request blockfuse cannot serve; str(e) is the one line shown."""
