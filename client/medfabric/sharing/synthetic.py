"""Deterministic synthetic FHIR R5 records for demos and benchmarks (no real person behind any of them).

The same seed always gives byte-identical records: values come from
`random.Random(seed)` only and dates from a fixed base date.

    >>> bundle = generate_patient_bundle(7, "P-DEMO-001", n_observations=3)
    >>> [resource["resourceType"] for resource in bundle][:6]
    ['Patient', 'Encounter', 'Observation', 'Observation', 'Observation', 'DiagnosticReport']
    >>> bundle[2]["code"]["coding"][0]["code"], bundle[2]["component"][0]["valueQuantity"]["unit"]
    ('85354-9', 'mmHg')
"""

from __future__ import annotations

import base64
import math
import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from medfabric.crypto import canonical_json

BASE_TIME = datetime(2024, 1, 8, 8, 0, tzinfo=timezone.utc)
PSEUDONYM_SYSTEM = "urn:medfabric:patient-pseudonym"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Each visit measures these, in this order; n_observations cycles through them.
MEASUREMENTS_PER_VISIT = ("blood-pressure", "heart-rate", "glucose")
# A patient is followed for one of these; the medication is the usual first-line drug.
CONDITIONS = {
    "hypertension": {
        "condition": ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
        "medication": ("314076", "lisinopril 10 MG Oral Tablet"),
        "systolic": (140, 165), "diastolic": (88, 100), "glucose": (80, 110),
    },
    "diabetes": {
        "condition": ("44054006", "Diabetes mellitus type 2 (disorder)"),
        "medication": ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
        "systolic": (115, 140), "diastolic": (70, 88), "glucose": (130, 190),
    },
}
_PSEUDONYM = re.compile(r"^[A-Za-z0-9\-.]{1,40}$")


def generate_patient_bundle(seed: int, patient_pseudonym: str, n_observations: int = 9) -> list[dict[str, Any]]:
    """One pseudonymous patient's record: Patient, Encounters, Observations, a DiagnosticReport, and the rest.

    Visits are 3 to 8 weeks apart; each records blood pressure (LOINC 85354-9, mm[Hg]),
    heart rate (8867-4, /min) and blood glucose (2339-0, mg/dL) around the patient's own
    baseline, so `n_observations` measurements take ceil(n / 3) encounters. The
    DiagnosticReport lists every observation. Then, one each: Condition (hypertension or
    type 2 diabetes), MedicationRequest for it, Procedure (ECG), AllergyIntolerance,
    Immunization, ImagingStudy (chest X-ray) and DocumentReference (the last visit's note).
    Order: Patient, Encounters, Observations, DiagnosticReport, then the list above.
    """
    if not _PSEUDONYM.match(patient_pseudonym):
        raise ValueError(f"patient pseudonym must be 1-40 of A-Z a-z 0-9 - . (a FHIR id), got {patient_pseudonym!r}")
    if n_observations < 1:
        raise ValueError("n_observations must be at least 1")
    rng = random.Random(seed)
    patient_ref = {"reference": f"Patient/{patient_pseudonym}"}
    condition_kind = rng.choice(sorted(CONDITIONS))
    profile = CONDITIONS[condition_kind]
    baseline = {
        "systolic": rng.randint(*profile["systolic"]),
        "diastolic": rng.randint(*profile["diastolic"]),
        "heart_rate": rng.randint(58, 88),
        "glucose": rng.randint(*profile["glucose"]),
    }
    patient = {
        "resourceType": "Patient",
        "id": patient_pseudonym,
        "identifier": [{"system": PSEUDONYM_SYSTEM, "value": patient_pseudonym}],
        "active": True,
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randint(1940, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }

    encounters, visit_times = [], []
    visit_time = BASE_TIME
    for number in range(1, math.ceil(n_observations / len(MEASUREMENTS_PER_VISIT)) + 1):
        visit_time += timedelta(days=rng.randint(21, 56), hours=rng.randint(0, 8), minutes=rng.choice([0, 15, 30, 45]))
        visit_times.append(visit_time)
        encounters.append({
            "resourceType": "Encounter",
            "id": f"{patient_pseudonym}-enc-{number}",
            "status": "completed",
            "class": [_concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory")],
            "subject": patient_ref,
            "actualPeriod": {
                "start": visit_time.isoformat(),
                "end": (visit_time + timedelta(minutes=30)).isoformat(),
            },
        })

    observations, last_values = [], {}
    for index in range(n_observations):
        visit, kind = divmod(index, len(MEASUREMENTS_PER_VISIT))
        values = _measure(rng, MEASUREMENTS_PER_VISIT[kind], baseline)
        last_values.update(values)
        observations.append({
            "resourceType": "Observation",
            "id": f"{patient_pseudonym}-obs-{index + 1}",
            "subject": patient_ref,
            "encounter": {"reference": f"Encounter/{encounters[visit]['id']}"},
            "effectiveDateTime": (visit_times[visit] + timedelta(minutes=5 * (kind + 1))).isoformat(),
            **_observation_body(MEASUREMENTS_PER_VISIT[kind], values),
        })

    last_visit, last_encounter_ref = visit_times[-1], {"reference": f"Encounter/{encounters[-1]['id']}"}
    report = {
        "resourceType": "DiagnosticReport",
        "id": f"{patient_pseudonym}-report-1",
        "status": "final",
        "code": {"text": "Blood pressure, heart rate and blood glucose follow-up"},
        "subject": patient_ref,
        "effectiveDateTime": observations[-1]["effectiveDateTime"],
        "issued": (last_visit + timedelta(hours=2)).isoformat(),
        "result": [{"reference": f"Observation/{observation['id']}"} for observation in observations],
    }
    condition_code, condition_name = profile["condition"]
    medication_code, medication_name = profile["medication"]
    onset = BASE_TIME - timedelta(days=rng.randint(200, 3000))
    later_records = [
        {
            "resourceType": "Condition",
            "id": f"{patient_pseudonym}-condition-1",
            "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "verificationStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
            "code": _concept(SNOMED, condition_code, condition_name),
            "subject": patient_ref,
            "onsetDateTime": onset.isoformat(),
        },
        {
            "resourceType": "MedicationRequest",
            "id": f"{patient_pseudonym}-medication-1",
            "status": "active",
            "intent": "order",
            "medication": {"concept": _concept(RXNORM, medication_code, medication_name)},
            "subject": patient_ref,
            "encounter": last_encounter_ref,
            "authoredOn": (last_visit + timedelta(minutes=25)).isoformat(),
            "reason": [{"reference": {"reference": f"Condition/{patient_pseudonym}-condition-1"}}],
            "dosageInstruction": [{"text": "One tablet by mouth once daily"}],
        },
        {
            "resourceType": "Procedure",
            "id": f"{patient_pseudonym}-procedure-1",
            "status": "completed",
            "code": _concept(SNOMED, "29303009", "Electrocardiographic procedure"),
            "subject": patient_ref,
            "encounter": last_encounter_ref,
            "occurrenceDateTime": (last_visit + timedelta(minutes=20)).isoformat(),
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": f"{patient_pseudonym}-allergy-1",
            "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "verificationStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed"
            ),
            "code": _concept(SNOMED, "91936005", "Allergy to penicillin"),
            "patient": patient_ref,
            "recordedDate": (onset + timedelta(days=rng.randint(1, 100))).isoformat(),
        },
        {
            "resourceType": "Immunization",
            "id": f"{patient_pseudonym}-immunization-1",
            "status": "completed",
            "vaccineCode": _concept(CVX, "140", "Influenza, seasonal, injectable, preservative free"),
            "patient": patient_ref,
            "encounter": {"reference": f"Encounter/{encounters[0]['id']}"},
            "occurrenceDateTime": (visit_times[0] + timedelta(minutes=25)).isoformat(),
        },
        _chest_xray(rng, patient_pseudonym, patient_ref, last_encounter_ref, last_visit),
        {
            "resourceType": "DocumentReference",
            "id": f"{patient_pseudonym}-note-1",
            "status": "current",
            "type": _concept(LOINC, "11488-4", "Consult note"),
            "subject": patient_ref,
            "context": [last_encounter_ref],
            "date": (last_visit + timedelta(hours=1)).isoformat(),
            "content": [{"attachment": {
                "contentType": "text/plain; charset=utf-8",
                "title": "Follow-up visit note",
                "data": base64.b64encode(_visit_note(last_values, condition_name, medication_name).encode()).decode(),
            }}],
        },
    ]
    return [patient, *encounters, *observations, report, *later_records]


def record_of_size(seed: int, approx_bytes: int) -> dict[str, Any]:
    """A valid DocumentReference whose canonical JSON is `approx_bytes` long, or up to 3 bytes less, for benchmarks.

    The attachment is random bytes (incompressible), so sizes mean the same after compression.

    >>> abs(len(canonical_json(record_of_size(3, 1_000_000))) - 1_000_000) <= 3
    True
    """
    rng = random.Random(seed)
    record = {
        "resourceType": "DocumentReference",
        "id": f"bench-{seed}",
        "status": "current",
        "type": _concept(LOINC, "11488-4", "Consult note"),
        "subject": {"reference": "Patient/P-BENCH"},
        "date": BASE_TIME.isoformat(),
        "content": [{"attachment": {"contentType": "application/octet-stream", "title": "Synthetic attachment",
                                    "data": ""}}],
    }
    room = approx_bytes - len(canonical_json(record))
    if room < 4:
        raise ValueError(f"the smallest record is {approx_bytes - room + 4} bytes, asked for {approx_bytes}")
    record["content"][0]["attachment"]["data"] = base64.b64encode(rng.randbytes(room // 4 * 3)).decode()
    return record


def _measure(rng: random.Random, kind: str, baseline: dict[str, int]) -> dict[str, int]:
    """One visit's reading around the patient's baseline, clamped to plausible ranges."""
    if kind == "blood-pressure":
        systolic = _clamp(round(rng.gauss(baseline["systolic"], 8)), 90, 200)
        diastolic = _clamp(round(rng.gauss(baseline["diastolic"], 5)), 55, systolic - 25)
        return {"systolic": systolic, "diastolic": diastolic}
    if kind == "heart-rate":
        return {"heart_rate": _clamp(round(rng.gauss(baseline["heart_rate"], 6)), 45, 130)}
    return {"glucose": _clamp(round(rng.gauss(baseline["glucose"], 12)), 60, 300)}


def _observation_body(kind: str, values: dict[str, int]) -> dict[str, Any]:
    """Status, category, code and value(s) of a measurement, vital-signs style."""
    if kind == "blood-pressure":
        return {
            "status": "final",
            "category": [_concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
            "code": _concept(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            "component": [
                {"code": _concept(LOINC, "8480-6", "Systolic blood pressure"),
                 "valueQuantity": _quantity(values["systolic"], "mmHg", "mm[Hg]")},
                {"code": _concept(LOINC, "8462-4", "Diastolic blood pressure"),
                 "valueQuantity": _quantity(values["diastolic"], "mmHg", "mm[Hg]")},
            ],
        }
    if kind == "heart-rate":
        return {
            "status": "final",
            "category": [_concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
            "code": _concept(LOINC, "8867-4", "Heart rate"),
            "valueQuantity": _quantity(values["heart_rate"], "beats/minute", "/min"),
        }
    return {
        "status": "final",
        "category": [_concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        "code": _concept(LOINC, "2339-0", "Glucose [Mass/volume] in Blood"),
        "valueQuantity": _quantity(values["glucose"], "mg/dL", "mg/dL"),
    }


def _chest_xray(rng: random.Random, pseudonym: str, patient_ref: dict, encounter_ref: dict,
                visit_time: datetime) -> dict[str, Any]:
    """An ImagingStudy with one two-view chest radiograph series; UIDs are 2.25.<random 122-bit number>."""
    modality = _concept(DICOM, "DX", "Digital Radiography")
    study_uid = f"2.25.{rng.getrandbits(122)}"
    return {
        "resourceType": "ImagingStudy",
        "id": f"{pseudonym}-imaging-1",
        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}],
        "status": "available",
        "modality": [modality],
        "subject": patient_ref,
        "encounter": encounter_ref,
        "started": (visit_time + timedelta(minutes=15)).isoformat(),
        "numberOfSeries": 1,
        "numberOfInstances": 2,
        "description": "Chest X-ray, PA and lateral",
        "series": [{"uid": f"2.25.{rng.getrandbits(122)}", "number": 1, "modality": modality,
                    "numberOfInstances": 2, "description": "PA and lateral"}],
    }


def _visit_note(values: dict[str, int], condition_name: str, medication_name: str) -> str:
    readings = [
        f"BP {values['systolic']}/{values['diastolic']} mmHg" if "systolic" in values else None,
        f"HR {values['heart_rate']} /min" if "heart_rate" in values else None,
        f"glucose {values['glucose']} mg/dL" if "glucose" in values else None,
    ]
    return (f"Follow-up for {condition_name.split(' (')[0].lower()}. "
            f"Today: {', '.join(r for r in readings if r)}. Continue {medication_name}; review in 6 weeks.")


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"coding": [coding]}


def _quantity(value: int, unit: str, ucum_code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": ucum_code}


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
