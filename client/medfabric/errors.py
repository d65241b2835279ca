"""Errors the client library raises for bad input or missing set-up."""


class MedfabricError(Exception):
    """A user-facing error: its message is one line that says what is wrong."""
