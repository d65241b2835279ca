"""FHIR payload validation with `fhir.resources`, and the canonical bytes MedFabric hashes.

    >>> resource = validate_resource(b'{"resourceType": "Patient", "id": "P-001", "gender": "female"}')
    >>> resource.resource_type, resource.id, resource.patient_reference
    ('Patient', 'P-001', 'Patient/P-001')
    >>> resource.canonical_bytes
    b'{"gender":"female","id":"P-001","resourceType":"Patient"}'
    >>> validate_resource({"resourceType": "Observation", "status": 5, "code": {"text": "x"}})
    Traceback (most recent call last):
    medfabric.sharing.fhir.FhirValidationError: invalid FHIR R5 Observation: Observation.status: Input should be a valid string
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pydantic
from fhir.resources import get_fhir_model_class as r5_model_class
from fhir.resources.R4B import get_fhir_model_class as r4b_model_class

from medfabric.crypto import canonical_json
from medfabric.errors import MedfabricError

SUPPORTED_RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
    "Condition",
    "MedicationRequest",
    "Procedure",
    "AllergyIntolerance",
    "Immunization",
    "DocumentReference",
)
_MODEL_CLASS_BY_VERSION = {"R5": r5_model_class, "R4B": r4b_model_class}
# Elements of a Patient that identify the person directly (HIPAA Safe Harbor kinds).
DIRECT_IDENTIFIER_ELEMENTS = ("name", "telecom", "address", "photo", "contact")
# A reference to a Patient: relative ("Patient/123") or absolute (".../Patient/123"), optionally versioned.
_PATIENT_REFERENCE = re.compile(r"(^|/)Patient/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$")


class FhirValidationError(MedfabricError):
    """The payload is not a valid, supported FHIR resource; the message names the first failing field."""


@dataclass(frozen=True)
class ValidatedResource:
    """A resource that passed validation, with the canonical JSON bytes to hash and encrypt."""

    resource_type: str
    id: str | None
    patient_reference: str | None
    canonical_bytes: bytes


def validate_resource(data: bytes | str | dict[str, Any], fhir_version: str = "R5") -> ValidatedResource:
    """Parse and validate one FHIR resource (JSON bytes, text or dict) of a supported type.

    `fhir_version` is "R5" (default) or "R4B". The canonical bytes are the canonical JSON
    of the input as parsed (sorted keys, no whitespace), not the model's dump, so the same
    resource hashes the same whatever its key order. Duplicate keys and NaN are refused.
    """
    model_class = _MODEL_CLASS_BY_VERSION.get(fhir_version)
    if model_class is None:
        raise ValueError(f"unsupported FHIR version '{fhir_version}' (supported: {', '.join(_MODEL_CLASS_BY_VERSION)})")
    resource = data if isinstance(data, dict) else _parse_json(data)
    if not isinstance(resource, dict):
        raise FhirValidationError(f"a FHIR resource is a JSON object, not {type(resource).__name__}")
    resource_type = resource.get("resourceType")
    if resource_type not in SUPPORTED_RESOURCE_TYPES:
        raise FhirValidationError(
            f"unsupported resourceType {resource_type!r} (supported: {', '.join(SUPPORTED_RESOURCE_TYPES)})"
        )
    try:
        canonical_bytes = canonical_json(resource)
    except (TypeError, ValueError) as error:
        raise FhirValidationError(f"{resource_type} is not plain JSON: {error}") from None
    try:
        model_class(resource_type).model_validate(resource)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        message = " ".join(first["msg"].split())
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise FhirValidationError(
            f"invalid FHIR {fhir_version} {resource_type}: {_field_path(resource_type, first['loc'])}: {message}{more}"
        ) from None
    return ValidatedResource(resource_type, resource.get("id"), _patient_reference(resource), canonical_bytes)


def contains_direct_identifiers(resource: dict[str, Any]) -> list[str]:
    """The elements of a Patient that identify the person directly, so callers can warn.

    >>> contains_direct_identifiers({"resourceType": "Patient", "name": [{"family": "Doe"}], "gender": "male"})
    ['Patient.name']
    """
    if resource.get("resourceType") != "Patient":
        return []
    return [f"Patient.{element}" for element in DIRECT_IDENTIFIER_ELEMENTS if resource.get(element)]


def _parse_json(data: bytes | str) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_object_without_duplicate_keys, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise FhirValidationError("FHIR JSON must be UTF-8") from None
    except json.JSONDecodeError as error:
        raise FhirValidationError(f"not JSON: {error}") from None


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FhirValidationError(f"duplicate JSON key '{key}'")
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise FhirValidationError(f"{name} is not a JSON number")


def _field_path(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a FHIR path.

    ('component', 0, 'valueQuantity') -> Observation.component[0].valueQuantity
    """
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _patient_reference(resource: dict[str, Any]) -> str | None:
    """The Patient the resource is about: itself, or its subject/patient reference if that points at a Patient."""
    if resource["resourceType"] == "Patient":
        return f"Patient/{resource['id']}" if resource.get("id") else None
    for element in ("subject", "patient"):
        reference = (resource.get(element) or {}).get("reference")
        if isinstance(reference, str) and _PATIENT_REFERENCE.search(reference):
            return reference
    return None
