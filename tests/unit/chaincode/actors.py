"""Callers of several MSPs, domains and roles for the contract tests, and a record to act on.

Each MSP has its own CA; a user's certificate carries the Fabric CA attributes
MedFabric's CAs write: hf.EnrollmentID, medfabric.role, medfabric.domain.
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta

from cryptography.x509.oid import NameOID

from medfabric_chaincode.runtime import ClientIdentity

from . import pki
from .fakepeer import DEFAULT_TIMESTAMP, FakePeer, TxResult
from .test_emr_index import ENTRY

DOMAINS = {"HospitalAMSP": "hospital-a", "HospitalBMSP": "hospital-b", "HospitalCMSP": "hospital-c"}
OWN_DOMAIN = object()  # the default medfabric.domain: the MSP's own


@functools.cache
def _ca(msp_id: str) -> pki.Credential:
    domain = DOMAINS[msp_id]
    return pki.issue(pki.name((NameOID.ORGANIZATION_NAME, domain), (NameOID.COMMON_NAME, f"ca.{domain}")), ca=True)


@functools.cache
def caller(msp_id: str, user: str = "doctor", role: str | None = "doctor", domain: object = OWN_DOMAIN) -> bytes:
    """The creator bytes of `user` in `msp_id`; role or domain None leaves that attribute out."""
    attributes = {"hf.EnrollmentID": user}
    if role is not None:
        attributes["medfabric.role"] = role
    domain = DOMAINS[msp_id] if domain is OWN_DOMAIN else domain
    if domain is not None:
        attributes["medfabric.domain"] = domain
    subject = pki.name((NameOID.ORGANIZATION_NAME, DOMAINS[msp_id]), (NameOID.COMMON_NAME, user))
    return pki.serialized_identity(msp_id, pki.issue(subject, _ca(msp_id), attributes=attributes))


def researcher(msp_id: str) -> bytes:
    return caller(msp_id, "researcher", "researcher")


def actor_id(creator: bytes) -> str:
    return ClientIdentity(creator).get_id()


A_DOCTOR = caller("HospitalAMSP")
B_DOCTOR = caller("HospitalBMSP")
C_DOCTOR = caller("HospitalCMSP")


def at(seconds: float = 0) -> dict:
    """invoke() options for a transaction `seconds` after fakepeer.DEFAULT_TIMESTAMP."""
    return {"timestamp": DEFAULT_TIMESTAMP + timedelta(seconds=seconds)}


def stamp(seconds: float = 0) -> str:
    """The time of at(seconds) as the contracts write it: UTC, milliseconds, Z."""
    return f"{DEFAULT_TIMESTAMP + timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"


def put_record(peer: FakePeer, record_id: str = "rec-001", creator: bytes = A_DOCTOR, **changes) -> TxResult:
    """Index a record (hospital-a's, patient p1, an Observation, unless changed); it must succeed."""
    result = peer.invoke("PutRecord", json.dumps({**ENTRY, "record_id": record_id, **changes}), creator=creator)
    assert result.status == 200, result.message
    return result


def ok(result: TxResult):
    """The JSON answer of a transaction that must succeed."""
    assert result.status == 200, result.message
    return result.json()
