"""Connection options: the default deadline of each Gateway call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectOptions:
    """Default deadlines in seconds for each Gateway call; None means no deadline.

    Any call can override its default with its own `timeout=` argument.

        >>> options = ConnectOptions(commit_status_timeout=120)
        >>> options.endorse_timeout, options.commit_status_timeout
        (15.0, 120)
    """

    evaluate_timeout: float | None = 5.0
    endorse_timeout: float | None = 15.0
    submit_timeout: float | None = 5.0
    commit_status_timeout: float | None = 60.0
    chaincode_events_timeout: float | None = None
