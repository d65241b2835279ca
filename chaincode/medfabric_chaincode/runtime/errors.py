"""Errors of the chaincode runtime and the status codes of a chaincode Response."""

from __future__ import annotations

OK = 200
ERROR_THRESHOLD = 400  # the peer treats a status at or above this as a failed transaction
INTERNAL_ERROR = 500


class ChaincodeError(Exception):
    """A stub call could not be made, or the peer refused it (its ERROR reply becomes the message)."""


class TransactionError(Exception):
    """Raised by a contract to reject a transaction; the message goes back to the client."""


class ConfigError(Exception):
    """The server configuration is missing, invalid, or cannot be served."""


def one_line(text: object) -> str:
    """The text with every run of whitespace, line breaks included, collapsed to one space."""
    return " ".join(str(text).split())
