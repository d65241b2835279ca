"""The README's federated-learning figures, in one process with the same code the consortium runs: the global
model's test accuracy per round beside centralised training (the upper bound) and each hospital alone; and the
poisoning table, one hospital attacking under each aggregator."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from medfabric.fl import data, model, training
from medfabric.fl.aggregators import Aggregator, CoordinateMedian, FedAvg, Krum, TrimmedMean

DEFAULT_DOMAINS = ("hospital-a", "hospital-b", "hospital-c")
ATTACK_DESCRIPTIONS = {"scaled": f"global + {training.SCALE_FACTOR:g} x its step", "flipped": "labels flipped",
                       "inflated": f"n_k reported {training.INFLATION}x"}


def _setting(domains: Sequence[str], seed: int) -> tuple[data.FederatedSplit, model.Scaler]:
    split = data.split(list(domains), seed=seed)
    return split, model.Scaler.fit(split.shares[domains[0]].features)  # the publisher's, as a task records it


def curves(rounds: int = 30, domains: Sequence[str] = DEFAULT_DOMAINS, seed: int = data.DEFAULT_SEED,
           learning_rate: float = training.DEFAULT_LEARNING_RATE, epochs: int = training.DEFAULT_EPOCHS
           ) -> dict[str, Any]:
    """Test accuracy per round (round 0: the initial weights) of FedAvg, of centralised training on the pooled
    shares, and of each hospital alone."""
    split, scaler = _setting(domains, seed)
    _, federated = training.federated(split, FedAvg(), rounds, scaler, learning_rate, epochs)
    series = {"federated (fedavg)": federated.accuracy,
              "centralised (pooled)": training.alone(split.pooled(), split.test, rounds, scaler, learning_rate,
                                                      epochs).accuracy}
    for domain in domains:
        series[f"{domain} alone"] = training.alone(split.shares[domain], split.test, rounds, scaler, learning_rate,
                                                   epochs).accuracy
    return {"seed": seed, "rounds": rounds, "test_samples": len(split.test),
            "shares": {d: len(split.shares[d]) for d in domains}, "accuracy": series}


def robust_aggregators(split: data.FederatedSplit) -> dict[str, Aggregator]:
    cap = max(len(share) for share in split.shares.values())
    return {"fedavg": FedAvg(), f"fedavg, n_k capped at {cap}": FedAvg(cap), "median": CoordinateMedian(),
            "trimmed mean": TrimmedMean(), "krum": Krum()}


def poisoning(rounds: int = 30, domains: Sequence[str] = DEFAULT_DOMAINS, attacker: str | None = None,
              seed: int = data.DEFAULT_SEED) -> dict[str, Any]:
    """Final test accuracy for each attack (and none) by one hospital, under each aggregator."""
    split, scaler = _setting(domains, seed)
    attacker = attacker or domains[-1]
    table: dict[str, dict[str, float]] = {}
    for attack in ("none", *training.ATTACKS):
        attacks = None if attack == "none" else {attacker: attack}
        table[attack] = {name: training.federated(split, chosen, rounds, scaler, attacks=attacks)[1].accuracy[-1]
                         for name, chosen in robust_aggregators(split).items()}
    return {"seed": seed, "rounds": rounds, "attacker": attacker, "final_accuracy": table,
            "attacks": ATTACK_DESCRIPTIONS}


LEDGER_AGGREGATORS = {"fedavg": "fedavg", "median": "median", "trimmed mean": "trimmed-mean", "krum": "krum"}


def poisoning_on_ledger(sessions: dict, rounds: int = 30, attacker: str | None = None,
                        on_cell=None) -> dict[str, Any]:
    """poisoning(), each cell a task on the consortium: `sessions` holds a participant session of each domain,
    the first publishing. The attacker poisons its own training (flow.train's attack); n_k is capped through the
    task's max_samples. With the same split the accuracies are those of poisoning() exactly."""
    import time

    from medfabric.fl import flow

    domains = sorted(sessions)
    split, _scaler = _setting(domains, data.DEFAULT_SEED)
    attacker = attacker or domains[-1]
    cap = max(len(share) for share in split.shares.values())
    columns = {"fedavg": ("fedavg", 0), f"fedavg, n_k capped at {cap}": ("fedavg", cap),
               **{name: (kind, 0) for name, kind in LEDGER_AGGREGATORS.items() if name != "fedavg"}}
    table: dict[str, dict[str, float]] = {}
    for attack in ("none", *training.ATTACKS):
        row = table.setdefault(attack, {})
        for name, (kind, max_samples) in columns.items():
            spec = flow.TaskSpec(f"poison-{time.time_ns()}", domains, rounds, 1.0, kind, max_samples=max_samples)
            flow.create_task(sessions[domains[0]], spec)
            reports = flow.run(sessions, spec.task_id, attacks=None if attack == "none" else {attacker: attack})
            row[name] = reports[-1].accuracy
            if on_cell:
                on_cell(attack, name, row[name])
    return {"seed": data.DEFAULT_SEED, "rounds": rounds, "attacker": attacker, "final_accuracy": table,
            "on_ledger": True, "attacks": ATTACK_DESCRIPTIONS}


def plot_curves(result: dict[str, Any], path: Path, target: float = 0.95) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, accuracy in result["accuracy"].items():
        style = ({"linewidth": 5, "alpha": 0.35} if name.startswith("centralised") else
                 {"linewidth": 1.8} if name.startswith("federated") else {"linestyle": ":"})
        axis.plot(range(len(accuracy)), accuracy, label=name, **style)
    axis.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target}")
    axis.set_ylim(0.85, 1.0)
    axis.set_xlabel("round")
    axis.set_ylabel("test accuracy (held-out 20 %)")
    axis.set_title(f"breast cancer, {len(result['shares'])} hospitals, non-IID split (seed {result['seed']})")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def table_markdown(result: dict[str, Any]) -> str:
    """The poisoning table as Markdown: attacks as rows, aggregators as columns."""
    table = result["final_accuracy"]
    names = list(next(iter(table.values())))
    lines = ["| attack by " + result["attacker"] + " | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for attack, row in table.items():
        label = attack if attack == "none" else f"{attack} ({result['attacks'][attack]})"
        lines.append(f"| {label} | " + " | ".join(f"{row[name]:.3f}" for name in names) + " |")
    return "\n".join(lines)
