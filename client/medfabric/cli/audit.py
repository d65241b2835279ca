"""`medfabric audit`: read the access logs, anchor a domain's local log on the public channel, verify the anchors."""

from __future__ import annotations

import sys

import click

from medfabric.sharing import audit as audits
from medfabric.cli.context import CliContext, channel_option, emit, identity_options
from medfabric.errors import MedfabricError


@click.group()
def audit() -> None:
    """Access logs: list them, anchor a domain's local log publicly, verify it against its anchors."""


@audit.command("log")
@click.option("--record", "record_id", help="Only this record's entries.")
@click.option("--since", default="", help="From this time (ISO 8601 with zone), inclusive.")
@click.option("--until", default="", help="Up to this time (ISO 8601 with zone), exclusive.")
@channel_option
@identity_options
@click.pass_obj
def audit_log(obj: CliContext, record_id: str | None, since: str, until: str, channel: str, domain: str, user: str,
              as_json: bool) -> None:
    """List a channel's access log in time order.

    Example: medfabric audit log --domain hospital-a --channel public --record rec-1
    """
    channel_name = obj.channel_name(domain, channel)
    with obj.session(domain, user) as session:
        entries = audits.log(session, channel_name, record_id, since, until)
    lines = [f"{e['timestamp']}  {e['action']:<11} {e['outcome']:<7} {e['record_id'] or '-'}  {e['actor_msp']}"
             f"{' FLAGGED' if e['flagged'] else ''}  {e['reason'] or ''}".rstrip() for e in entries]
    emit(entries, as_json, "\n".join(lines) or f"no entries on {channel_name}")


@audit.command("anchor")
@identity_options
@click.pass_obj
def audit_anchor(obj: CliContext, domain: str, user: str, as_json: bool) -> None:
    """Anchor the domain's local log, up to 5 s ago, on the public channel.

    Example: medfabric audit anchor --domain hospital-a
    """
    with obj.session(domain, user) as session:
        anchored = audits.anchor(session)
    if anchored is None:
        emit(None, as_json, f"nothing to anchor: the log of {domain} is anchored up to {audits.SETTLE.seconds} s ago")
        return
    emit(anchored, as_json, f"anchored {anchored['count']} entries of {anchored['channel']} "
                            f"[{anchored['since']}, {anchored['until']}): root {anchored['merkle_root']}")


@audit.command("verify")
@identity_options
@click.pass_obj
def audit_verify(obj: CliContext, domain: str, user: str, as_json: bool) -> None:
    """Recompute every anchored period of the domain's local log; exit 1 at the first that differs.

    Example: medfabric audit verify --domain hospital-a
    """
    from rich.progress import Progress

    with obj.session(domain, user) as session, Progress(transient=True, disable=as_json) as progress:
        task = progress.add_task(f"verifying the anchors of {domain}", total=None)
        result = audits.verify(session, lambda done, total: progress.update(task, completed=done, total=total))
    mismatch = result.mismatch
    if mismatch is None:
        emit(result.as_dict(), as_json, f"{result.anchors} anchors of {result.channel} verified "
                                        f"({result.entries} entries)")
        return
    if as_json:
        emit(result.as_dict(), True, "")
        sys.exit(1)
    anchored, found = mismatch["anchored"], mismatch["found"]
    raise MedfabricError(
        f"{result.channel} [{mismatch['since']}, {mismatch['until']}) does not match its anchor "
        f"{mismatch['anchor_tx']}: {found['count']} entries with root {found['merkle_root'][:16]}..., "
        f"anchored {anchored['count']} with root {anchored['merkle_root'][:16]}..."
    )
