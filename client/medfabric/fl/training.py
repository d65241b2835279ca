"""One hospital's round, and whole federated runs in one process (for experiments and the README's figures).

A round: standardise the domain's share with the task's scaler, train from
the global weights, report loss and accuracy on the share. Attacks a
poisoned hospital can mount on its own round, to measure what each
aggregator withstands: scale its update, flip its labels, inflate its count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from medfabric.fl import model
from medfabric.fl.aggregators import Aggregator, ModelUpdate
from medfabric.fl.data import FederatedSplit, Share

DEFAULT_LEARNING_RATE = 0.1
DEFAULT_EPOCHS = 2
ATTACKS = ("scaled", "flipped", "inflated")
SCALE_FACTOR = -20.0  # a scaled update: the global weights plus this times the honest step
INFLATION = 100  # an inflated count: this times the true n_k


@dataclass(frozen=True)
class RoundResult:
    """What a hospital reports of its round: the update, and loss and accuracy on its own share."""

    update: ModelUpdate
    loss: float
    accuracy: float


def local_round(domain: str, share: Share, scaler: model.Scaler, global_weights: np.ndarray,
                learning_rate: float = DEFAULT_LEARNING_RATE, epochs: int = DEFAULT_EPOCHS,
                attack: str | None = None) -> RoundResult:
    """Train `domain`'s share from the global weights; `attack` poisons it (one of ATTACKS)."""
    if attack not in (None, *ATTACKS):
        raise ValueError(f"no attack '{attack}' (known: {', '.join(ATTACKS)})")
    features = scaler.apply(share.features)
    labels = 1.0 - share.labels if attack == "flipped" else share.labels
    trained = model.train(global_weights, features, labels, learning_rate, epochs)
    if attack == "scaled":
        trained = global_weights + SCALE_FACTOR * (trained - global_weights)
    count = len(share) * INFLATION if attack == "inflated" else len(share)
    return RoundResult(ModelUpdate(domain, trained, count), model.loss(trained, features, share.labels),
                       model.accuracy(trained, features, share.labels))


@dataclass
class History:
    """Test accuracy and loss of the global model after each round (round 0: the initial weights)."""

    accuracy: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)

    def record(self, weights: np.ndarray, test: Share, scaler: model.Scaler) -> None:
        features = scaler.apply(test.features)
        self.accuracy.append(model.accuracy(weights, features, test.labels))
        self.loss.append(model.loss(weights, features, test.labels))


def federated(split: FederatedSplit, aggregator: Aggregator, rounds: int, scaler: model.Scaler,
              learning_rate: float = DEFAULT_LEARNING_RATE, epochs: int = DEFAULT_EPOCHS,
              attacks: Mapping[str, str] | None = None,
              on_round: Callable[[int, np.ndarray], None] | None = None) -> tuple[np.ndarray, History]:
    """`rounds` rounds over every share, the aggregator combining them; the final weights and the history."""
    weights = model.initial_weights(split.test.features.shape[1])
    history = History()
    history.record(weights, split.test, scaler)
    for number in range(1, rounds + 1):
        results = [local_round(domain, split.shares[domain], scaler, weights, learning_rate, epochs,
                               (attacks or {}).get(domain)) for domain in sorted(split.shares)]
        weights = aggregator.aggregate([result.update for result in results])
        history.record(weights, split.test, scaler)
        if on_round:
            on_round(number, weights)
    return weights, history


def alone(share: Share, test: Share, rounds: int, scaler: model.Scaler,
          learning_rate: float = DEFAULT_LEARNING_RATE, epochs: int = DEFAULT_EPOCHS) -> History:
    """The same number of rounds on one share only: centralised on the pooled data, or one hospital alone."""
    weights = model.initial_weights(test.features.shape[1])
    history = History()
    history.record(weights, test, scaler)
    features = scaler.apply(share.features)
    for _ in range(rounds):
        weights = model.train(weights, features, share.labels, learning_rate, epochs)
        history.record(weights, test, scaler)
    return history
