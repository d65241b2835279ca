"""Consensus study (SYSTEM.md section 4): AHC-clustered BFT against one flat BFT group.

nodes: the consensus nodes and their features (a CSV file, checked); clustering: agglomerative hierarchical
clustering into groups, each with a duty node; model: PBFT and AHC-PBFT message counts per phase; simulate: a
message-level simulation of both, latency and throughput against N.
"""
