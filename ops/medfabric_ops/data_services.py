"""Each domain's off-chain data service (`python -m medfabric.data_service`) as a node of the consortium.

Native mode runs it under the supervisor, docker mode as a compose service of
the chaincode image; in both it is told the layout and the topology file
through its environment, and is ready once GET /identity answers on the
domain's data service port, over TLS as the service's own user (it takes
only callers with a consortium member's client certificate).

    >>> start_data_service(supervisor, topology, layout, domain)
    >>> supervisor.wait_ready(data_service_name(domain), ready_probe(topology, layout, domain), 60)
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePath

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.service_identity import SERVICE_USER
from medfabric.consortium.topology import Domain, Topology
from medfabric.data_service import client as service_client
from medfabric.data_service.transport import caller_context

from .process import Probe, Supervisor, child_env

MODULE = "medfabric.data_service"


class DataServiceError(RuntimeError):
    """A data service cannot be started as asked."""


def data_service_name(domain: Domain) -> str:
    """The process, container and data folder name; that folder is the service's default store."""
    return f"data-service.{domain.org_domain}"


def data_service_args(domain: Domain) -> list[str]:
    """The arguments after `python -m medfabric.data_service`."""
    return ["--domain", domain.id]


def data_service_env(build_dir: PurePath, topology_file: PurePath) -> dict[str, str]:
    """Where the service finds the layout (crypto, its store) and the topology."""
    return {"MEDFABRIC_BUILD_DIR": str(build_dir), "MEDFABRIC_TOPOLOGY": str(topology_file)}


def service_url(topology: Topology, domain: Domain) -> str:
    return f"https://{topology.host}:{domain.data_service_port}"


def ready_probe(topology: Topology, layout: NetworkLayout, domain: Domain, timeout: float = 1.0) -> Probe:
    """Probe: the service answers GET /identity with its domain's MSP, over mutually authenticated TLS."""
    tls = caller_context(layout, domain, domain, SERVICE_USER)

    def probe() -> bool:
        try:
            client = service_client.DataServiceClient(domain.id, service_url(topology, domain), tls, timeout_s=timeout)
            return client.identity().get("msp_id") == domain.msp_id
        except service_client.DataServiceError:
            return False

    return probe


def start_data_service(supervisor: Supervisor, topology: Topology, layout: NetworkLayout, domain: Domain) -> int:
    """Start the domain's data service unless it runs; its pid.

    The child runs in its own data folder, so the layout and the topology file are given as absolute paths.
    """
    if topology.source is None:
        raise DataServiceError("the data services read the topology from its file, "
                               "and this topology was not loaded from one")
    name = data_service_name(domain)
    env = child_env(data_service_env(layout.root.absolute(), Path(topology.source).absolute()))
    return supervisor.start(name, [sys.executable, "-m", MODULE, *data_service_args(domain)], env,
                            cwd=layout.node_data(name))
