"""Where generated network material lives (all under the ignored build/ folder).

The crypto tree follows the layout Fabric's own tooling uses
(peerOrganizations/<org domain>/peers/<host>/msp ...), so Fabric binaries,
the Docker Compose file and people who know Fabric find things where they
expect them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medfabric.consortium.topology import Domain, Orderer, Peer

PROJECT_ROOT = Path(__file__).resolve().parents[3]


FL_DATA = "fl-data"  # the domains' federated-learning data, generated like the rest


def default_build_dir() -> Path:
    """build/network under the project, or $MEDFABRIC_BUILD_DIR."""
    env = os.environ.get("MEDFABRIC_BUILD_DIR")
    return Path(env).resolve() if env else PROJECT_ROOT / "build" / "network"


def default_bench_dir(build_dir: Path | None = None) -> Path:
    """Where benchmark runs are kept: $MEDFABRIC_BENCH_DIR, else `bench` beside the network's build folder
    (build/bench). Outside the network's folder, so `clean` never deletes results."""
    env = os.environ.get("MEDFABRIC_BENCH_DIR")
    if env:
        return Path(env).resolve()
    return (build_dir or default_build_dir()).parent / "bench"


LATEST_RUN = "latest"  # in the bench folder: a symbolic link to the newest run's folder


def latest_bench_run(bench_dir: Path | None = None) -> Path:
    """The newest benchmark run's folder (what `latest` points at); FileNotFoundError if there is none."""
    bench_dir = bench_dir or default_bench_dir()
    latest = bench_dir / LATEST_RUN
    if not latest.exists():
        raise FileNotFoundError(f"no benchmark run in {bench_dir} (run `make bench` first)")
    return latest.resolve()


@dataclass(frozen=True)
class NetworkLayout:
    root: Path

    @classmethod
    def default(cls) -> "NetworkLayout":
        return cls(default_build_dir())

    # -- crypto material -------------------------------------------------
    @property
    def crypto(self) -> Path:
        return self.root / "crypto"

    def peer_org(self, domain: Domain) -> Path:
        return self.crypto / "peerOrganizations" / domain.org_domain

    def orderer_org(self, domain: Domain) -> Path:
        return self.crypto / "ordererOrganizations" / domain.orderer_org_domain

    def peer_dir(self, domain: Domain, peer: Peer) -> Path:
        return self.peer_org(domain) / "peers" / peer.host_name

    def orderer_dir(self, domain: Domain, orderer: Orderer) -> Path:
        return self.orderer_org(domain) / "orderers" / orderer.host_name

    def user_dir(self, domain: Domain, user: str) -> Path:
        """A user of the domain's peer org; 'Admin' is the org administrator."""
        return self.peer_org(domain) / "users" / f"{user}@{domain.org_domain}"

    def orderer_admin_dir(self, domain: Domain) -> Path:
        return self.orderer_org(domain) / "users" / f"Admin@{domain.orderer_org_domain}"

    def orderer_admin_tls(self, domain: Domain) -> Path:
        """TLS client credentials (ca.crt, client.crt, client.key) of the orderer org admin,
        used on the orderers' channel participation (admin) endpoint."""
        return self.orderer_admin_dir(domain) / "tls"

    def user_msp(self, domain: Domain, user: str) -> Path:
        return self.user_dir(domain, user) / "msp"

    def peer_tls_ca(self, domain: Domain) -> Path:
        """The TLS CA certificate that signed every peer of the domain."""
        return self.peer_org(domain) / "tlsca" / f"tlsca.{domain.org_domain}-cert.pem"

    def orderer_tls_ca(self, domain: Domain) -> Path:
        return self.orderer_org(domain) / "tlsca" / f"tlsca.{domain.orderer_org_domain}-cert.pem"

    def fl_data(self, domain_id: str) -> Path:
        """A domain's federated-learning data folder (its training share; the publisher's test share below it)."""
        return self.root / FL_DATA / domain_id

    # -- rendered configuration and channel artefacts ----------------------
    @property
    def config(self) -> Path:
        return self.root / "config"

    def node_config(self, host_name: str) -> Path:
        """FABRIC_CFG_PATH of one node: its core.yaml or orderer.yaml."""
        return self.config / host_name

    @property
    def configtx_dir(self) -> Path:
        return self.config / "configtx"

    def genesis_block(self, channel: str) -> Path:
        return self.root / "channel-artifacts" / f"{channel}.block"

    def chaincode_package(self, domain: Domain, chaincode: str | None = None) -> Path:
        """The domain's package of the application chaincode, or of the chaincode named `chaincode`."""
        name = "package.tar.gz" if chaincode is None else f"{chaincode}.tar.gz"
        return self.root / "chaincode" / domain.id / name

    @property
    def caliper_network_config(self) -> Path:
        """Caliper's network configuration (rendered from the topology)."""
        return self.config / "caliper" / "network.yaml"

    @property
    def tuning_record(self) -> Path:
        """The tuning profile and ordering settings the channels were created with."""
        return self.root / "channel-artifacts" / "tuning.json"

    def user_signcert(self, domain: Domain, user: str) -> Path:
        return self.user_msp(domain, user) / "signcerts" / f"{user}@{domain.org_domain}-cert.pem"

    def user_private_key(self, domain: Domain, user: str) -> Path:
        return self.user_msp(domain, user) / "keystore" / "priv_sk"

    def connection_profile(self, domain: Domain) -> Path:
        """The domain's common connection profile (JSON), for SDKs and Caliper."""
        return self.root / f"connection-{domain.id}.json"

    # -- runtime state -----------------------------------------------------
    def node_data(self, host_name: str) -> Path:
        """Ledgers and other state of one node (kept across down/up)."""
        return self.root / "data" / host_name

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log_file(self, process_name: str) -> Path:
        return self.logs / f"{process_name}.log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def pid_file(self, process_name: str) -> Path:
        return self.run / f"{process_name}.pid"


def read_tuning_record(layout: NetworkLayout) -> dict[str, Any] | None:
    """The profile and ordering settings the channels were created with, as `up` records them (None: not
    recorded)."""
    try:
        record = json.loads(layout.tuning_record.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
