"""Chaincode as a service: a server per chaincode and domain, then the Fabric
lifecycle (install, approve for each org, commit) on every channel.

The topology's chaincodes are the application's (medfabric, Python:
medfabric-chaincode) and, optionally, the benchmark baseline (medfabric-node,
the same contract in Node on Fabric's official shim, in caliper/baseline). A
domain's package of a chaincode holds only its server's address, so the
package id is known before install and the server can start first. Each step
is skipped when the peers already report it done. Without a chaincode
argument, the functions here handle the application's chaincode.

    >>> start_chaincode_server(supervisor, topology, layout, domain, package_id)
    >>> start_chaincode_server(supervisor, topology, layout, domain, node_package_id, topology.baseline)
    >>> install(PeerAdmin(tools, topology, layout, peer), package, package_id)
    >>> deploy(tools, topology, layout, channel, {"hospital-a": package_id, ...})
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path, PurePath
from typing import Any, Mapping

from medfabric.consortium.layout import PROJECT_ROOT, NetworkLayout
from medfabric.consortium.topology import Chaincode, Channel, Domain, Topology

from .binaries import FabricCommandError, FabricTools
from .channel import PeerAdmin
from .process import Supervisor, child_env, poll_until

DOMAIN_MSPS_VARIABLE = "MEDFABRIC_DOMAIN_MSPS"  # read by medfabric_chaincode.contracts.common

CHAINCODE_SERVER = "medfabric-chaincode"
BASELINE_DIR = PROJECT_ROOT / "caliper" / "baseline"  # the Node baseline: package.json, its contract, node_modules
NODE_SHIM = PurePath("node_modules") / ".bin" / "fabric-chaincode-node"  # Fabric's Node chaincode launcher
ORDERING_WAIT = 30.0  # how long a transaction waits for the ordering service to have a leader


class DeployError(RuntimeError):
    """The chaincode cannot be deployed as planned."""


def chaincode_process_name(domain: Domain, chaincode: Chaincode | None = None) -> str:
    """chaincode.<org domain> for the application's chaincode, chaincode-<name>.<org domain> for another."""
    if chaincode is None or chaincode.role == "application":
        return f"chaincode.{domain.org_domain}"
    return f"chaincode-{chaincode.name}.{domain.org_domain}"


def node_chaincode_command(baseline_dir: PurePath, address: str, package_id: str) -> list[str]:
    """The Node baseline's server: Fabric's `fabric-chaincode-node server` (fabric-shim) on the contract in
    `baseline_dir`, without TLS like the package's connection.json. The one place that says how it starts."""
    return ["node", str(baseline_dir / NODE_SHIM), "server", "--chaincode-address", address,
            "--chaincode-id", package_id, "--module-path", str(baseline_dir)]


def baseline_unavailable(needs_node: bool = True, baseline_dir: Path = BASELINE_DIR) -> str | None:
    """Why the Node baseline cannot run here (one line), or None. `needs_node`: node must be on PATH
    (native mode; in docker mode the image has it)."""
    if needs_node and shutil.which("node") is None:
        return "node is not installed (Node.js 20 runs it)"
    if not (baseline_dir / NODE_SHIM).is_file():
        shown = baseline_dir.relative_to(PROJECT_ROOT) if baseline_dir.is_relative_to(PROJECT_ROOT) else baseline_dir
        return f"{shown}/node_modules is not installed (`npm ci` there, or `make baseline-deps`)"
    return None


def start_chaincode_server(supervisor: Supervisor, topology: Topology, layout: NetworkLayout,
                           domain: Domain, package_id: str, chaincode: Chaincode | None = None) -> int:
    """Start the domain's server of the chaincode unless it runs; its pid. Ready once its port accepts
    connections."""
    chaincode = chaincode or topology.chaincode
    name = chaincode_process_name(domain, chaincode)
    address = f"{topology.host}:{topology.chaincode_port(chaincode, domain)}"
    if chaincode.runtime == "node":
        argv = node_chaincode_command(BASELINE_DIR, address, package_id)
        env = child_env({DOMAIN_MSPS_VARIABLE: domain_msps_json(topology)})
    else:
        argv = [_chaincode_server_command()]
        env = python_chaincode_env(topology, domain, package_id, chaincode)
    return supervisor.start(name, argv, env, cwd=layout.node_data(name))


def python_chaincode_env(topology: Topology, domain: Domain, package_id: str,
                         chaincode: Chaincode | None = None) -> dict[str, str]:
    """The environment of a domain's Python chaincode server: where it listens, its package id, the binding."""
    chaincode = chaincode or topology.chaincode
    return child_env({
        "CHAINCODE_SERVER_ADDRESS": f"{topology.host}:{topology.chaincode_port(chaincode, domain)}",
        "CHAINCODE_ID": package_id,
        "CHAINCODE_TLS_DISABLED": "true",  # the package's connection.json has tls_required false
        DOMAIN_MSPS_VARIABLE: domain_msps_json(topology),
    })


def domain_msps_json(topology: Topology) -> str:
    """The consortium's domain -> MSP binding, as every chaincode server checks domains against it."""
    return json.dumps({domain.id: domain.msp_id for domain in topology.domains}, sort_keys=True,
                      separators=(",", ":"))


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
           package_ids: Mapping[str, str], chaincode: Chaincode | None = None) -> None:
    """Approve the chaincode's definition for every org of the channel that has not, then commit it once.

    `package_ids` maps a domain id to the id of the chaincode's package its peers run.
    Nothing is done if the channel already has this sequence (or a later one).
    """
    chaincode = chaincode or topology.chaincode
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
