"""Federated learning with the ledger as the record (SYSTEM.md section 5).

weights: canonical bytes and hashes; model: logistic regression in numpy;
aggregators: FedAvg, coordinate median, trimmed mean, Krum; data: the
Wisconsin breast-cancer set split across domains.
"""
