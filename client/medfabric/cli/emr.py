"""`medfabric emr`: put, get, show, find, grant, revoke, erase, request, emergency (medfabric.sharing.emr does the work)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from medfabric.sharing import emr as flows
from medfabric.cli.context import CliContext, channel_option, emit, identity_options
from medfabric.errors import MedfabricError

OUT_FILE = click.Path(dir_okay=False, path_type=Path)
purpose_option = click.option("--purpose", type=click.Choice(flows.READ_PURPOSES), default=flows.DEFAULT_PURPOSE,
                              show_default=True, help="Why the record is read; a grant counts for its own purpose "
                                                      "only, a purchase (medfabric market buy) for 'purchase'.")


@click.group()
def emr() -> None:
    """EMRs: sealed payloads in each domain's data service, indexed, granted and logged on chain."""


@emr.command("put")
@click.option("--patient", required=True, help="Patient pseudonym (never a name).")
@click.option("--file", "fhir_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The FHIR resource, JSON.")
@click.option("--publish", is_flag=True, help="Index it on the public channel too, so other domains can be granted it.")
@click.option("--allow-identifiers", is_flag=True, help="Accept direct identifiers (name, address...) in a Patient.")
@click.option("--id", "record_id", help="Record id (default: derived from domain, patient and content).")
@identity_options
@click.pass_obj
def emr_put(obj: CliContext, domain: str, user: str, as_json: bool, patient: str, fhir_file: Path, publish: bool,
            allow_identifiers: bool, record_id: str | None) -> None:
    """Seal a FHIR resource, store it in the domain's data service and index it.

    Example: medfabric emr put --domain hospital-a --as doctor --patient P-001 --file obs.json --publish
    """
    obj.topology.domain(domain)
    try:
        payload = flows.prepare_payload(fhir_file.read_bytes(), patient, allow_identifiers=allow_identifiers)
    except MedfabricError as error:
        raise MedfabricError(f"{fhir_file}: {error}") from None
    with obj.session(domain, user) as session:
        result = flows.put_record(session, payload, publish=publish, record_id=record_id)
    emit(result, as_json, f"stored {result['record_id']} ({payload.resource_type}, {len(payload.plaintext)} bytes) "
                          f"with {domain}'s data service; indexed on {', '.join(result['entries'])}")


@emr.command("get")
@click.argument("record_id")
@click.option("--out", type=OUT_FILE, required=True, help="File to write the FHIR JSON to.")
@purpose_option
@identity_options
@click.pass_obj
def emr_get(obj: CliContext, record_id: str, domain: str, user: str, as_json: bool, out: Path, purpose: str) -> None:
    """Read a record into a file: decided on chain, delivered by its owner, checked against its index entry.

    Example: medfabric emr get rec-1 --domain hospital-b --as doctor --out obs.json
    """
    with obj.session(domain, user) as session:
        result = flows.get_record(session, record_id, out, purpose)
    emit(result, as_json, _read_line(result))


@emr.command("show")
@click.argument("record_id")
@channel_option
@identity_options
@click.pass_obj
def emr_show(obj: CliContext, record_id: str, domain: str, user: str, channel: str, as_json: bool) -> None:
    """Print a record's index entry (a tombstone once erased).

    Example: medfabric emr show rec-1 --domain hospital-b --channel public
    """
    channel_name = obj.channel_name(domain, channel)
    with obj.session(domain, user) as session:
        entry = session.index(channel_name).get(record_id)
    emit(entry, as_json, json.dumps(entry, indent=2, sort_keys=True))


@emr.command("find")
@click.option("--patient", required=True, help="Patient pseudonym.")
@click.option("--type", "resource_type", help="Only this FHIR resource type, e.g. Observation.")
@identity_options
@click.pass_obj
def emr_find(obj: CliContext, patient: str, resource_type: str | None, domain: str, user: str, as_json: bool) -> None:
    """List a patient's records on the domain's local channel and the public channel.

    Example: medfabric emr find --patient P-001 --type Observation --domain hospital-a
    """
    with obj.session(domain, user) as session:
        entries = flows.find_records(session, patient, resource_type)
    lines = [f"{e['record_id']}  {e['resource_type']:<18} {e['domain']}  v{e['version']}  {','.join(e['channels'])}"
             f"{'  erased' if e['erased'] else ''}" for e in entries]
    emit(entries, as_json, "\n".join(lines) or f"no records of patient {patient}")


@emr.command("grant")
@click.argument("record_id")
@click.option("--to", "to_domain", required=True, help="Domain to share with.")
@click.option("--user", "grantee_user", help="Only this user of that domain (default: any).")
@click.option("--purpose", type=click.Choice(flows.PURPOSES), required=True, help="What the grant is for.")
@click.option("--until", required=True,
              help="End of the grant: a date (valid through that day, UTC) or a time with zone, e.g. 2030-01-31T12:00Z.")
@identity_options
@click.pass_obj
def emr_grant(obj: CliContext, record_id: str, to_domain: str, grantee_user: str | None, purpose: str, until: str,
              domain: str, user: str, as_json: bool) -> None:
    """Let another domain read a published record; prints the grant id.

    Example: medfabric emr grant rec-1 --domain hospital-a --to hospital-b --user doctor --purpose treatment --until 2030-01-31
    """
    with obj.session(domain, user) as session:
        granted = flows.grant(session, record_id, to_domain, purpose, grant_end(until), grantee_user)
    who = granted["grantee_msp"] + (f" user {granted['grantee_user']}" if granted["grantee_user"] else "")
    emit(granted, as_json, f"{granted['grant_id']}  ({record_id} to {who} for {granted['purpose']} "
                           f"until {granted['expires']})")


@emr.command("revoke")
@click.argument("grant_id")
@identity_options
@click.pass_obj
def emr_revoke(obj: CliContext, grant_id: str, domain: str, user: str, as_json: bool) -> None:
    """Revoke a grant the domain made.

    Example: medfabric emr revoke 3f2a...e9 --domain hospital-a
    """
    with obj.session(domain, user) as session:
        revoked = flows.revoke(session, grant_id)
    emit(revoked, as_json, f"revoked grant {grant_id} at {revoked['revoked_at']}")


@emr.command("erase")
@click.argument("record_id")
@click.option("--reason", default=flows.ERASE_REASON, show_default=True,
              help="Why, for the access log (never personal data).")
@identity_options
@click.pass_obj
def emr_erase(obj: CliContext, record_id: str, reason: str, domain: str, user: str, as_json: bool) -> None:
    """Erase a record: ciphertext and key destroyed, index entries become tombstones, the log stays.

    Example: medfabric emr erase rec-1 --domain hospital-a --as doctor
    """
    with obj.session(domain, user) as session:
        result = flows.erase(session, record_id, reason)
    tombstones = ", ".join(result["tombstones"]) or "none new"
    emit(result, as_json, f"erased {record_id}: payload {result['payload']}; tombstones on {tombstones}")


@emr.command("request")
@click.argument("record_id")
@click.option("--from", "from_domain", required=True, help="The domain that owns the record.")
@click.option("--out", type=OUT_FILE, required=True, help="File to write the FHIR JSON to.")
@purpose_option
@identity_options
@click.pass_obj
def emr_request(obj: CliContext, record_id: str, from_domain: str, out: Path, domain: str, user: str,
                as_json: bool, purpose: str) -> None:
    """Request another domain's record: logged, decided on the public channel, delivered, verified.

    Example: medfabric emr request rec-1 --from hospital-a --domain hospital-b --as doctor --out obs.json
    """
    with obj.session(domain, user) as session:
        result = flows.request(session, record_id, from_domain, out, purpose)
    emit(result, as_json, _read_line(result))


@emr.command("emergency")
@click.argument("record_id")
@click.option("--reason", required=True, help="Why the glass is broken; logged and flagged for review.")
@click.option("--out", type=OUT_FILE, required=True, help="File to write the FHIR JSON to.")
@identity_options
@click.pass_obj
def emr_emergency(obj: CliContext, record_id: str, reason: str, out: Path, domain: str, user: str,
                  as_json: bool) -> None:
    """Break-glass read by a doctor without a grant; logged on both tiers and flagged.

    Example: medfabric emr emergency rec-1 --reason "unconscious, ER" --domain hospital-c --as doctor --out obs.json
    """
    with obj.session(domain, user) as session:
        result = flows.emergency_read(session, record_id, reason, out)
    emit(result, as_json, _read_line(result))


def grant_end(text: str) -> datetime:
    """--until: a date means through that day (UTC); a date-time must carry its time zone."""
    try:
        return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(), tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MedfabricError(f"--until {text!r} is neither a date (2030-01-31) nor a time (2030-01-31T12:00Z)") from None
    if moment.tzinfo is None:
        raise MedfabricError(f"--until {text!r} needs a time zone, e.g. {text}Z")
    return moment


def _read_line(result: dict[str, Any]) -> str:
    return (f"wrote {result['record_id']} to {result['out']} ({result['size']} bytes, hashes verified); "
            f"owner {result['owner']}, decided on {result['decided_on']}: {result['reason']}")
