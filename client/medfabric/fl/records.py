"""Names of the federated-learning records a data service keeps: a domain's update and the aggregator's global
weights of each round, stored and delivered like EMRs.

    fl:<task_id>:<round>:<domain>    the domain's update of that round (round 0: none)
    fl:<task_id>:<round>:global      the global weights after that round's aggregation (round 0: the initial ones)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GLOBAL = "global"
_TASK_ID = r"[A-Za-z0-9._-]{1,96}"
TASK_ID = re.compile(_TASK_ID)
_FL_RECORD = re.compile(rf"fl:(?P<task>{_TASK_ID}):(?P<round>0|[1-9][0-9]{{0,5}}):(?P<part>[a-z0-9-]{{1,63}})")


@dataclass(frozen=True)
class FlRecordId:
    task_id: str
    round: int
    part: str  # a domain id, or GLOBAL

    def __str__(self) -> str:
        return f"fl:{self.task_id}:{self.round}:{self.part}"

    @property
    def is_global(self) -> bool:
        return self.part == GLOBAL


def parse_fl_record_id(record_id: str) -> FlRecordId | None:
    """The parts of an FL record id; None for any other record id."""
    match = _FL_RECORD.fullmatch(record_id)
    if match is None:
        return None
    return FlRecordId(match["task"], int(match["round"]), match["part"])
