"""Consensus study (SYSTEM.md section 4): AHC-clustered BFT against one flat BFT group.

nodes: the consensus nodes and their features (a CSV file, checked); clustering: agglomerative hierarchical
clustering into groups, each with a duty node; model: PBFT and AHC-PBFT message counts per phase; simulate: a
message-level simulation of both, latency and throughput against N; topology_writer: the Fabric form of a
clustering; measure: SmartBFT's messages counted on real orderers.

The names below live here, apart from numpy and scipy, so that the CLI starts without importing either.
"""

from medfabric.errors import MedfabricError

DEFAULT_FEATURES = ("x", "y")
METHODS = ("ward", "average", "complete", "single")  # scipy's linkage methods offered


class ConsensusError(MedfabricError):
    """A node file, a clustering or a simulation setting that cannot be used; one line naming what is wrong."""
