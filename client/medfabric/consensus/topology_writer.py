"""A consortium topology for a clustering (the schema `medfabric network up` reads): the Fabric form of AHC-PBFT.

Each group becomes a domain whose local channel is ordered by a BFT set of the group's nodes (one orderer per
node; a group of another size than most has its own `orderers` count), and the public channel by one orderer per
group: the duty nodes' set. Everything else (tuning profiles, the Gateway limit, the chaincode) is the default
topology's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from medfabric.consensus.clustering import Clustering
from medfabric.consensus.nodes import ConsensusError
from medfabric.consortium.topology import DEFAULT_TOPOLOGY, MAX_LOCAL_ORDERERS, parse_topology



def topology_document(clustering: Clustering, base_port: int | None = None,
                      template: Path = DEFAULT_TOPOLOGY) -> dict[str, Any]:
    sizes = clustering.sizes()
    unorderable = [(group + 1, size) for group, size in enumerate(sizes) if not 4 <= size <= MAX_LOCAL_ORDERERS]
    if unorderable:
        listed = ", ".join(f"group-{group} has {size}" for group, size in unorderable)
        raise ConsensusError(f"each group's BFT orderer set needs 4 to {MAX_LOCAL_ORDERERS} nodes: {listed} "
                             f"(try --balanced, or fewer groups)")
    if clustering.groups < 4:
        raise ConsensusError(f"the duty nodes' BFT set on the public channel needs at least 4 groups, not "
                             f"{clustering.groups}")
    document = yaml.safe_load(template.read_text())
    if base_port is not None:
        document["base_port"] = base_port
    usual = Counter(sizes).most_common(1)[0][0]
    document["domains"] = [
        {"id": f"group-{group + 1}", "msp_id": f"Group{group + 1}MSP", "peers": ["duty"],
         "users": ["doctor", "researcher"], **({"orderers": size} if size != usual else {})}
        for group, size in enumerate(sizes)]
    document["channels"]["local"].update({"consensus": "bft", "orderers_per_domain": usual})
    document["channels"]["public"]["orderers"] = clustering.groups
    if "baseline" in document:
        document["baseline"]["enabled"] = False
    return document


def write_topology(clustering: Clustering, path: Path, base_port: int | None = None) -> Path:
    """Write the topology (checked by the same parser `up` uses) with the groups' members as a comment."""
    document = topology_document(clustering, base_port)
    parse_topology(document)
    members = "\n".join(f"#   group-{g + 1}: duty node {clustering.nodes.ids[clustering.duty[g]]}; "
                        f"{', '.join(clustering.nodes.ids[i] for i in clustering.members(g))}"
                        for g in range(clustering.groups))
    header = (f"# AHC-PBFT in Fabric's form: {clustering.groups} groups ({clustering.method} linkage), one local "
              f"channel and BFT orderer set per group, the duty nodes' set on the public channel.\n"
              f"# Written by `medfabric consensus cluster`; the groups:\n{members}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return path
