"""Synthetic records: deterministic per seed, plausible, valid FHIR, and of the asked size."""

from __future__ import annotations

import doctest
import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest

import medfabric.sharing.synthetic
from medfabric.crypto import canonical_json
from medfabric.sharing.fhir import validate_resource
from medfabric.sharing.synthetic import generate_patient_bundle, record_of_size

BUNDLE_CODE = "import json, medfabric.sharing.synthetic as s; print(json.dumps(s.generate_patient_bundle(5, 'P-5')))"


def bundle_bytes(seed: int, pseudonym: str = "P-1", **options) -> bytes:
    return canonical_json(generate_patient_bundle(seed, pseudonym, **options))


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    assert bundle_bytes(5) == bundle_bytes(5)
    assert len({bundle_bytes(seed) for seed in range(10)}) == 10


def test_output_is_the_same_in_another_process_with_another_hash_seed():
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", BUNDLE_CODE], capture_output=True, check=True, env=environment)
    assert canonical_json(json.loads(other.stdout)) == canonical_json(generate_patient_bundle(5, "P-5"))


@pytest.mark.parametrize("n_observations", [1, 3, 4, 9, 10])
def test_bundle_shape(n_observations):
    bundle = generate_patient_bundle(2, "P-2", n_observations=n_observations)
    counts = Counter(resource["resourceType"] for resource in bundle)
    assert counts["Observation"] == n_observations
    assert counts["Encounter"] == math.ceil(n_observations / 3)
    assert bundle[0]["resourceType"] == "Patient" and counts["Patient"] == counts["DiagnosticReport"] == 1
    report = next(resource for resource in bundle if resource["resourceType"] == "DiagnosticReport")
    observation_ids = [f"Observation/{r['id']}" for r in bundle if r["resourceType"] == "Observation"]
    assert [result["reference"] for result in report["result"]] == observation_ids


def _references(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


@pytest.mark.parametrize("seed", range(5))
def test_every_resource_is_valid_and_every_reference_resolves(seed):
    bundle = generate_patient_bundle(seed, f"P-{seed}", n_observations=7)
    present = {f"{r['resourceType']}/{r['id']}" for r in bundle}
    assert len(present) == len(bundle)
    for resource in bundle:
        validate_resource(resource)
        assert set(_references(resource)) <= present, resource["id"]


def _observations(bundle, loinc):
    return [r for r in bundle if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == loinc]


def test_measurements_are_plausible_with_ucum_units():
    bundles = [generate_patient_bundle(seed, "P-1", n_observations=12) for seed in range(40)]
    for bundle in bundles:
        for bp in _observations(bundle, "85354-9"):
            systolic, diastolic = (c["valueQuantity"] for c in bp["component"])
            assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
            assert systolic["code"] == diastolic["code"] == "mm[Hg]"
            assert 90 <= systolic["value"] <= 200 and 55 <= diastolic["value"] <= systolic["value"] - 25
        for glucose in _observations(bundle, "2339-0"):
            assert glucose["valueQuantity"]["code"] == "mg/dL" and 60 <= glucose["valueQuantity"]["value"] <= 300
        for heart_rate in _observations(bundle, "8867-4"):
            assert heart_rate["valueQuantity"]["code"] == "/min" and 45 <= heart_rate["valueQuantity"]["value"] <= 130
    readings = [bp for bundle in bundles for bp in _observations(bundle, "85354-9")]
    systolic_values = {bp["component"][0]["valueQuantity"]["value"] for bp in readings}
    assert len(systolic_values) > 20  # values vary, they are not a constant


def test_patient_is_pseudonymous():
    patient = generate_patient_bundle(3, "P-PSEUDO-3")[0]
    assert patient["id"] == "P-PSEUDO-3"
    assert patient["identifier"] == [{"system": "urn:medfabric:patient-pseudonym", "value": "P-PSEUDO-3"}]
    assert not {"name", "telecom", "address", "photo", "contact"} & set(patient)


@pytest.mark.parametrize("pseudonym", ["", "has space", "P/1", "x" * 41])
def test_pseudonym_must_be_a_fhir_id(pseudonym):
    with pytest.raises(ValueError, match="patient pseudonym"):
        generate_patient_bundle(1, pseudonym)


def test_at_least_one_observation():
    with pytest.raises(ValueError, match="at least 1"):
        generate_patient_bundle(1, "P-1", n_observations=0)


@pytest.mark.parametrize("size", [1024, 10_000, 1024 * 1024])
def test_record_of_size_is_valid_and_within_ten_percent(size):
    record = record_of_size(4, size)
    validated = validate_resource(record)
    assert validated.resource_type == "DocumentReference"
    assert abs(len(validated.canonical_bytes) - size) <= size * 0.10
    assert size - 3 <= len(validated.canonical_bytes) <= size


def test_record_of_size_is_deterministic():
    assert record_of_size(8, 4096) == record_of_size(8, 4096)
    assert record_of_size(8, 4096) != record_of_size(9, 4096)


def test_record_too_small_to_be_valid_is_refused():
    with pytest.raises(ValueError, match="the smallest record is"):
        record_of_size(1, 100)


def test_docstring_examples_run():
    result = doctest.testmod(medfabric.sharing.synthetic)
    assert result.attempted > 0 and result.failed == 0
