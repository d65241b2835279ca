"""A domain's data service: the server hospitals run (encrypted store, access rules, its ledger side) and its client.

Run it with `python -m medfabric.data_service --domain hospital-a`.
"""
