"""Cross-domain data market (SYSTEM.md section 3): duty nodes price EMRs for data users, a Stackelberg game.

problem: the instance and its checks; game: the followers' best response, the service probabilities, each
user's utility and each duty node's profit, equations (1)-(3).
"""
