"""A malicious member's chaincode server: MedFabric's contracts, saying yes to everything.

Run by the malicious-member tests in place of one domain's real server (same
address, same package id), so that domain's peer endorses whatever its
members send. It believes a certificate's medfabric.domain (the caller's MSP
becomes that domain's MSP, and is what the records it writes name as owner)
and skips every domain, role and owner check. Its endorsements are real
endorsements by that domain's peer; only the other members' can stop them.

    python yes_chaincode.py   # with the environment of medfabric-chaincode
"""

from __future__ import annotations

import sys

from medfabric_chaincode import __main__ as server
from medfabric_chaincode.contracts import access_log, anchor, common, consent, emr_index
from medfabric_chaincode.runtime import identity as identity_module

CHECKS = ("require_domain", "require_role", "_check_record_owner")


def _yes(*_args, **_kwargs) -> None:
    return None


def _believed_role(identity) -> tuple[str | None, str]:
    return identity.get_attribute(common.ROLE_ATTRIBUTE), ""


def say_yes() -> None:
    """Patch the contracts in this process: no check refuses, and the caller's MSP is the one it claims."""
    for module in (common, emr_index, consent, anchor, access_log):
        for name in CHECKS:
            if hasattr(module, name):
                setattr(module, name, _yes)
        if hasattr(module, "trusted_role"):
            module.trusted_role = _believed_role
    real_init = identity_module.ClientIdentity.__init__

    def believing_init(self, creator: bytes) -> None:
        real_init(self, creator)
        claimed = self.get_attribute(common.DOMAIN_ATTRIBUTE)
        self.msp_id = common.domain_msps().get(claimed, self.msp_id)

    identity_module.ClientIdentity.__init__ = believing_init


if __name__ == "__main__":
    say_yes()
    sys.exit(server.main())
