"""Cross-domain data market (SYSTEM.md section 3): duty nodes price EMRs for data users, a Stackelberg game.

problem: the instance and its checks; game: the followers' best response, the service probabilities, each
user's utility and each duty node's profit, equations (1)-(3); slack, admm, distributed: the decomposed solver;
reference, checks: the scipy optimum and the equilibrium checks; experiments, plots; ledger: on chain.

The names below live here, apart from numpy and scipy, so that the CLI starts without importing either.
"""

SCENARIOS = ("competitive", "cooperative")
DEFAULT_TOLERANCE = 1e-9
