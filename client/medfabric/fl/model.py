"""Logistic regression in numpy: the model the hospitals train together.

The weights are one float64 vector, the feature coefficients then the bias.
Features are standardised with the task's scaler (the publisher's, recorded
in the task) before they reach the model. Local training is full-batch
gradient descent on the mean log loss plus an L2 term: no randomness, so a
round trains to the same bits on the same machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

L2 = 1e-4  # on the coefficients only: keeps separable shares from driving the weights to infinity
_EPS = 1e-12


@dataclass(frozen=True)
class Scaler:
    """Standardisation: (x - mean) / scale, per feature."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, features: np.ndarray) -> Scaler:
        std = features.std(axis=0)
        return cls(tuple(float(v) for v in features.mean(axis=0)),
                   tuple(float(v) if v > 0 else 1.0 for v in std))

    def apply(self, features: np.ndarray) -> np.ndarray:
        if features.ndim != 2 or features.shape[1] != len(self.mean):
            raise ValueError(f"expected features of shape (n, {len(self.mean)}), got {features.shape}")
        return (features - np.asarray(self.mean)) / np.asarray(self.scale)


def initial_weights(n_features: int) -> np.ndarray:
    """All zeros: the same starting point for everyone, no seed needed."""
    return np.zeros(n_features + 1, dtype=np.float64)


def probabilities(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    """P(y = 1 | x) for standardised features."""
    logits = features @ weights[:-1] + weights[-1]
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))


def loss(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> float:
    """Mean log loss plus the L2 term."""
    p = np.clip(probabilities(weights, features), _EPS, 1 - _EPS)
    data = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    return float(data + 0.5 * L2 * np.dot(weights[:-1], weights[:-1]))


def gradient(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    error = probabilities(weights, features) - labels
    grad = np.empty_like(weights)
    grad[:-1] = features.T @ error / len(labels) + L2 * weights[:-1]
    grad[-1] = np.mean(error)
    return grad


def train(weights: np.ndarray, features: np.ndarray, labels: np.ndarray, learning_rate: float,
          epochs: int) -> np.ndarray:
    """`epochs` steps of full-batch gradient descent from `weights`; a new vector."""
    if len(labels) == 0:
        raise ValueError("no samples to train on")
    trained = np.array(weights, dtype=np.float64, copy=True)
    for _ in range(epochs):
        trained -= learning_rate * gradient(trained, features, labels)
    return trained


def accuracy(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> float:
    """The share of samples whose predicted class (p >= 0.5) is the label."""
    return float(np.mean((probabilities(weights, features) >= 0.5) == (labels == 1)))
