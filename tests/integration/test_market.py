"""The market's whole path on the real consortium, through the CLI as a user runs it: solve and post prices,
credit a buyer, buy, request and read the record; a stale price, a quantity over D_max and a short balance are
refused, logged on the public channel, and cost nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from medfabric.sharing.synthetic import generate_patient_bundle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600, func_only=True)]


def answer(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result) -> dict:
    assert result.returncode == 1, result.stdout + result.stderr
    found = json.loads(result.stdout)
    assert found["accepted"] is False
    return found


def test_solve_post_buy_request_read_and_stale_prices_refused(medfabric_cli, tmp_path):
    cli = medfabric_cli
    patient = f"P-IT-{uuid.uuid4().hex[:12]}"
    fhir = tmp_path / "obs.json"
    fhir.write_text(json.dumps(generate_patient_bundle(7, patient, n_observations=1)[2]))
    put = answer(cli("emr", "put", "--domain", "hospital-a", "--as", "doctor", "--patient", patient, "--file",
                     str(fhir), "--publish", "--json"))
    record_id = put["record_id"]

    first = answer(cli("market", "post", "--domain", "hospital-a", "--scenario", "competitive", "--json"))
    posted = answer(cli("market", "prices", "--domain", "hospital-a", "--as", "doctor@hospital-b", "--json"))
    assert posted["version"] == first["version"] and posted["dn_msp"] == "HospitalAMSP"
    assert sorted(posted["prices"]) == ["HospitalBMSP/doctor", "HospitalBMSP/researcher", "HospitalCMSP/doctor",
                                        "HospitalCMSP/researcher"]
    price = posted["prices"]["HospitalBMSP/doctor"] / 1e6
    start = answer(cli("market", "balance", "--as", "doctor@hospital-b", "--json"))["amount"]
    answer(cli("market", "credit", "--domain", "hospital-b", "--user", "doctor", "--amount", "100", "--json"))

    out = tmp_path / "read.json"
    before = cli("emr", "request", record_id, "--from", "hospital-a", "--domain", "hospital-b", "--as", "doctor",
                 "--out", str(out), "--purpose", "purchase")
    assert before.returncode != 0 and "no unexpired purchase of the record by the caller" in before.stderr
    assert not out.exists()

    bought = answer(cli("market", "buy", record_id, "--as", "doctor@hospital-b", "--quantity", "10", "--json"))
    assert bought["accepted"] and bought["cost"] == round(10 * price * 1e6)
    read = answer(cli("emr", "request", record_id, "--from", "hospital-a", "--domain", "hospital-b", "--as",
                      "doctor", "--out", str(out), "--purpose", "purchase", "--json"))
    assert read["reason"] == f"purchase {bought['purchase_id']}"
    assert json.loads(out.read_text())["subject"]["reference"] == f"Patient/{patient}"
    researcher = cli("emr", "request", record_id, "--from", "hospital-a", "--domain", "hospital-b", "--as",
                     "researcher", "--out", str(tmp_path / "other.json"), "--purpose", "purchase")
    assert researcher.returncode != 0  # the purchase is the doctor's, not the domain's

    second = answer(cli("market", "post", "--domain", "hospital-a", "--scenario", "cooperative", "--json"))
    assert second["version"] == first["version"] + 1
    paid = answer(cli("market", "balance", "--as", "doctor@hospital-b", "--json"))["amount"]
    assert paid == start + 100_000_000 - bought["cost"]

    stale = refused(cli("market", "buy", record_id, "--as", "doctor@hospital-b", "--quantity", "1", "--version",
                        str(first["version"]), "--price", f"{price:.6f}", "--json"))
    assert stale["reason"] == f"stale price list: version {first['version']}, the latest is {second['version']}"
    over = refused(cli("market", "buy", record_id, "--as", "doctor@hospital-b", "--quantity", "100.5", "--json"))
    assert over["reason"] == "quantity 100.5 is over D_max 100"
    short = refused(cli("market", "buy", record_id, "--as", "doctor@hospital-b", "--quantity", "99", "--json"))
    assert short["reason"].startswith("balance ") and "is less than the cost" in short["reason"]
    assert answer(cli("market", "balance", "--as", "doctor@hospital-b", "--json"))["amount"] == paid

    log = answer(cli("audit", "log", "--domain", "hospital-a", "--channel", "public", "--record", record_id,
                     "--json"))
    entries = log if isinstance(log, list) else log["entries"]
    purchases = [(e["action"], e["outcome"], e["actor_msp"], e["reason"]) for e in entries if e["action"] == "purchase"]
    assert purchases == [
        ("purchase", "success", "HospitalBMSP", f"purchase {bought['purchase_id']}"),
        ("purchase", "failure", "HospitalBMSP", stale["reason"]),
        ("purchase", "failure", "HospitalBMSP", over["reason"]),
        ("purchase", "failure", "HospitalBMSP", short["reason"]),
    ]
    assert {e["log_id"] for e in entries} >= {stale["log_id"], over["log_id"], short["log_id"]}
