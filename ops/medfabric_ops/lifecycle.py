"""Chaincode as a service: a chaincode server per domain, then the Fabric
lifecycle (install, approve for each org, commit) on every channel.

A domain's package holds only its server's address, so the package id is
known before install and the server can start first. Each step is skipped
when the peers already report it done.

    >>> start_chaincode_server(supervisor, topology, layout, domain, package_id)
    >>> install(PeerAdmin(tools, topology, layout, peer), package, package_id)
    >>> deploy(tools, topology, layout, channel, {"hospital-a": package_id, ...})
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

from medfabric.layout import NetworkLayout
from medfabric.topology import Channel, Domain, Topology

from .binaries import FabricCommandError, FabricTools
from .channel import PeerAdmin
from .process import Supervisor, child_env, poll_until

CHAINCODE_SERVER = "medfabric-chaincode"
ORDERING_WAIT = 30.0  # how long a transaction waits for the ordering service to have a leader


class DeployError(RuntimeError):
    """The chaincode cannot be deployed as planned."""


def chaincode_process_name(domain: Domain) -> str:
    return f"chaincode.{domain.org_domain}"


def start_chaincode_server(supervisor: Supervisor, topology: Topology, layout: NetworkLayout,
                           domain: Domain, package_id: str) -> int:
    """Start the domain's chaincode server unless it runs; its pid. Ready once its port accepts connections."""
    name = chaincode_process_name(domain)
    env = child_env({
        "CHAINCODE_SERVER_ADDRESS": f"{topology.host}:{domain.chaincode_port}",
        "CHAINCODE_ID": package_id,
        "CHAINCODE_TLS_DISABLED": "true",  # the package's connection.json has tls_required false
    })
    return supervisor.start(name, [_chaincode_server_command()], env, cwd=layout.node_data(name))


def install(admin: PeerAdmin, package: Path, package_id: str) -> bool:
    """Install the package on the admin's peer unless it is there; True if it was installed."""
    if package_id in installed_package_ids(admin):
        return False
    admin.run("lifecycle", "chaincode", "install", package, timeout=300)
    if package_id not in installed_package_ids(admin):
        raise DeployError(
            f"{admin.peer.host_name} installed {package} under another id than the expected {package_id}"
        )
    return True


def installed_package_ids(admin: PeerAdmin) -> set[str]:
    doc = _json(admin.run("lifecycle", "chaincode", "queryinstalled", "--output", "json"))
    return {entry["package_id"] for entry in doc.get("installed_chaincodes") or []}


def committed_sequences(admin: PeerAdmin, channel: str) -> dict[str, int]:
    """Sequence of every chaincode definition committed on the channel, by chaincode name."""
    doc = _json(admin.run("lifecycle", "chaincode", "querycommitted", "--channelID", channel, "--output", "json"))
    return {entry["name"]: int(entry.get("sequence", 0)) for entry in doc.get("chaincode_definitions") or []}


def deploy(tools: FabricTools, topology: Topology, layout: NetworkLayout, channel: Channel,
           package_ids: Mapping[str, str]) -> None:
    """Approve the chaincode definition for every org of the channel that has not, then commit it once.

    `package_ids` maps a domain id to the id of the package its peers run.
    Nothing is done if the channel already has this sequence (or a later one).
    """
    chaincode = topology.chaincode
    admins = {
        domain.id: PeerAdmin(tools, topology, layout, next(p for p in channel.peers if p.domain_id == domain.id))
        for domain in channel.domains
    }
    submitter = admins[channel.domains[0].id]
    if committed_sequences(submitter, channel.name).get(chaincode.name, 0) >= chaincode.sequence:
        return
    definition = ["--channelID", channel.name, "--name", chaincode.name, "--version", chaincode.version,
                  "--sequence", str(chaincode.sequence)]
    readiness = submitter.run("lifecycle", "chaincode", "checkcommitreadiness", *definition, "--output", "json")
    approved = _json(readiness).get("approvals") or {}
    orderer = _orderer_flags(topology, layout, channel)
    for domain in channel.domains:
        if not approved.get(domain.msp_id):
            _submit(admins[domain.id], "lifecycle", "chaincode", "approveformyorg", *definition,
                    "--package-id", package_ids[domain.id], *orderer)
    endorsers = []
    for domain in channel.domains:
        endorsers += ["--peerAddresses", admins[domain.id].peer.address,
                      "--tlsRootCertFiles", str(layout.peer_tls_ca(domain))]
    _submit(submitter, "lifecycle", "chaincode", "commit", *definition, *endorsers, *orderer)


def _orderer_flags(topology: Topology, layout: NetworkLayout, channel: Channel) -> list[str]:
    orderer = channel.orderers[0]
    ca = layout.orderer_tls_ca(topology.orderer_domain(orderer))
    return ["--orderer", orderer.address, "--ordererTLSHostnameOverride", orderer.host_name,
            "--tls", "--cafile", str(ca)]


def _submit(admin: PeerAdmin, *args: str) -> None:
    """Run a lifecycle transaction, retrying while the ordering service answers SERVICE_UNAVAILABLE
    (a new channel has no Raft leader, or no BFT quorum, for its first moments)."""
    refusal: FabricCommandError | None = None

    def accepted() -> bool:
        nonlocal refusal
        try:
            admin.run(*args)
            return True
        except FabricCommandError as exc:
            if "SERVICE_UNAVAILABLE" not in exc.stderr:
                raise
            refusal = exc
            return False

    if not poll_until(accepted, ORDERING_WAIT):
        raise refusal


def _json(stdout: str) -> dict[str, Any]:
    # The CLI leaves empty fields out, so "no chaincode" can be "{}" or nothing at all.
    return json.loads(stdout) if stdout.strip() else {}


def _chaincode_server_command() -> str:
    """medfabric-chaincode of this interpreter's environment, else from PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    command = shutil.which(CHAINCODE_SERVER, path=search)
    if command is None:
        raise DeployError(f"{CHAINCODE_SERVER} is not installed: run `pip install -e .` in the project's venv")
    return command
