"""FHIR validation: supported types, one-line errors naming the field, canonical bytes."""

from __future__ import annotations

import doctest
import json

import pytest

import medfabric.sharing.fhir
from medfabric.crypto import canonical_json
from medfabric.sharing.fhir import (
    SUPPORTED_RESOURCE_TYPES,
    FhirValidationError,
    contains_direct_identifiers,
    validate_resource,
)
from medfabric.sharing.synthetic import generate_patient_bundle

BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "id": "bp-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "subject": {"reference": "Patient/P-001"},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 128, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    ],
}


@pytest.fixture(scope="module")
def bundle_by_type():
    return {resource["resourceType"]: resource for resource in generate_patient_bundle(11, "P-T", n_observations=3)}


@pytest.mark.parametrize("resource_type", SUPPORTED_RESOURCE_TYPES)
def test_every_supported_type_validates_from_the_generator(bundle_by_type, resource_type):
    resource = bundle_by_type[resource_type]
    validated = validate_resource(json.dumps(resource).encode())
    assert validated.resource_type == resource_type
    assert validated.id == resource["id"]
    assert validated.patient_reference == "Patient/P-T"


def test_input_kinds_give_the_same_result():
    from_dict = validate_resource(BLOOD_PRESSURE)
    assert validate_resource(json.dumps(BLOOD_PRESSURE)) == from_dict
    assert validate_resource(json.dumps(BLOOD_PRESSURE).encode()) == from_dict


def _reversed_keys(value):
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_canonical_bytes_are_stable_across_key_order_and_whitespace():
    reordered = json.dumps(_reversed_keys(BLOOD_PRESSURE), indent=4)
    assert reordered != json.dumps(BLOOD_PRESSURE)
    canonical = validate_resource(BLOOD_PRESSURE).canonical_bytes
    assert validate_resource(reordered).canonical_bytes == canonical
    assert canonical == canonical_json(BLOOD_PRESSURE)
    assert b" " not in canonical and canonical.startswith(b'{"code":')


def test_canonical_bytes_are_the_input_not_the_model_dump():
    """The model would drop the empty array; the hash must cover exactly what was sent."""
    observation = {**BLOOD_PRESSURE, "note": []}
    canonical = validate_resource(observation).canonical_bytes
    assert b'"note":[]' in canonical
    assert json.loads(canonical) == observation


def test_non_ascii_text_stays_utf8():
    patient = {"resourceType": "Patient", "id": "P-1", "gender": "other", "text": {"status": "generated",
               "div": '<div xmlns="http://www.w3.org/1999/xhtml">Zürich</div>'}}
    assert "Zürich".encode() in validate_resource(patient).canonical_bytes


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"resourceType": "Patient",', "not JSON"),
        (b"\xff\xfe{}", "must be UTF-8"),
        ('["Patient"]', "is a JSON object, not list"),
        ('{"id": "x"}', "unsupported resourceType None"),
        ('{"resourceType": "Spaceship"}', "unsupported resourceType 'Spaceship'"),
        ('{"resourceType": "Consent", "status": "active"}', "unsupported resourceType 'Consent'"),
        ('{"resourceType": "Patient", "id": "a", "id": "b"}', "duplicate JSON key 'id'"),
        ('{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": NaN}',
         "NaN is not a JSON number"),
    ],
    ids=["truncated", "not-utf8", "array", "no-type", "unknown-type", "unsupported-type", "duplicate-key", "nan"],
)
def test_non_fhir_input_is_refused(data, message):
    with pytest.raises(FhirValidationError, match=message):
        validate_resource(data)


@pytest.mark.parametrize(
    "change, path",
    [
        ({"status": 5}, "Observation.status: Input should be a valid string"),
        ({"status": None}, "Observation.status: Value for the field 'status' is required"),
        ({"component": [{"code": {"text": "systolic"}, "valueQuantity": {"value": "high"}}]},
         "Observation.component[0].valueQuantity.value"),
        ({"effectiveDateTime": "2024-13-01"}, "Observation.effectiveDateTime"),
        ({"colour": "red"}, "Observation.colour: Extra inputs are not permitted"),
    ],
    ids=["wrong-type", "missing", "nested", "bad-date", "unknown-field"],
)
def test_invalid_field_is_named_by_its_path(change, path):
    observation = {key: value for key, value in {**BLOOD_PRESSURE, **change}.items() if value is not None}
    with pytest.raises(FhirValidationError) as refused:
        validate_resource(observation)
    message = str(refused.value)
    assert message.startswith("invalid FHIR R5 Observation: ") and path in message
    assert "\n" not in message


def test_dict_with_non_json_values_is_refused():
    with pytest.raises(FhirValidationError, match="not plain JSON"):
        validate_resource({**BLOOD_PRESSURE, "valueQuantity": {"value": float("inf")}})


R4B_ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "subject": {"reference": "Patient/P-001"},
}


def test_r4b_resources_validate_as_r4b_only(bundle_by_type):
    assert validate_resource(R4B_ENCOUNTER, fhir_version="R4B").patient_reference == "Patient/P-001"
    with pytest.raises(FhirValidationError, match=r"invalid FHIR R5 Encounter: Encounter\.(status|class)"):
        validate_resource(R4B_ENCOUNTER)
    with pytest.raises(FhirValidationError, match="invalid FHIR R4B Encounter"):
        validate_resource(bundle_by_type["Encounter"], fhir_version="R4B")
    with pytest.raises(ValueError, match="unsupported FHIR version 'R3'"):
        validate_resource(R4B_ENCOUNTER, fhir_version="R3")


ABSOLUTE_REFERENCE = "https://fhir.hospital-a.example/Patient/P-001/_history/2"


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("Patient/P-001", "Patient/P-001"),
        (ABSOLUTE_REFERENCE, ABSOLUTE_REFERENCE),
        ("Group/G-1", None),
        ("MyPatient/P-001", None),
    ],
)
def test_patient_reference_only_names_patients(reference, expected):
    observation = {**BLOOD_PRESSURE, "subject": {"reference": reference}}
    assert validate_resource(observation).patient_reference == expected


def test_direct_identifiers_are_flagged():
    patient = {"resourceType": "Patient", "id": "P-1", "name": [{"family": "Doe"}],
               "telecom": [{"system": "phone", "value": "555-0100"}], "address": [{"city": "Springfield"}]}
    validate_resource(patient)
    assert contains_direct_identifiers(patient) == ["Patient.name", "Patient.telecom", "Patient.address"]
    assert contains_direct_identifiers({**patient, "name": []}) == ["Patient.telecom", "Patient.address"]
    assert contains_direct_identifiers({"resourceType": "Observation", "name": "x"}) == []


def test_generated_patient_has_no_direct_identifiers(bundle_by_type):
    assert contains_direct_identifiers(bundle_by_type["Patient"]) == []


def test_docstring_examples_run():
    result = doctest.testmod(medfabric.sharing.fhir)
    assert result.attempted > 0 and result.failed == 0
