"""The training data: scikit-learn's Wisconsin breast-cancer set (569 samples, 30 features; loads offline), split
into a held-out test set and one non-IID share per domain, from a seed.

Labels: 1 benign, 0 malignant, as scikit-learn gives them. The split is
stratified for the test set; the rest goes to the domains with a label skew:
each class is divided among the domains in Dirichlet(alpha) proportions, so
hospitals see different mixes, as they do. Every domain keeps at least
MIN_SHARE samples. Each share is saved in its domain's own folder, and a
domain trains on its folder alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_SEED = 20261202
DEFAULT_ALPHA = 0.3
TEST_FRACTION = 0.2
MIN_SHARE = 20
SHARE_FILE = "share.npz"


@dataclass(frozen=True)
class Share:
    features: np.ndarray  # (n, 30) float64, raw (not standardised)
    labels: np.ndarray  # (n,) float64 of 0 and 1

    def __len__(self) -> int:
        return len(self.labels)

    def digest(self) -> str:
        """SHA-256 of the share's values: two shares with one digest hold the same data."""
        digest = hashlib.sha256(np.ascontiguousarray(self.features, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype="<f8").tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class FederatedSplit:
    test: Share
    shares: dict[str, Share]  # by domain id

    def pooled(self) -> Share:
        """Every domain's share together: centralised training's data, the upper bound."""
        ordered = [self.shares[domain] for domain in sorted(self.shares)]
        return Share(np.concatenate([s.features for s in ordered]), np.concatenate([s.labels for s in ordered]))


def breast_cancer() -> Share:
    from sklearn.datasets import load_breast_cancer  # offline: the data ship with scikit-learn

    data = load_breast_cancer()
    return Share(np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.float64))


def split(domains: Sequence[str], seed: int = DEFAULT_SEED, alpha: float = DEFAULT_ALPHA,
          data: Share | None = None) -> FederatedSplit:
    """The held-out test share and one share per domain, the same for the same seed."""
    if not domains or len(set(domains)) != len(domains):
        raise ValueError("split needs one or more distinct domains")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, not {alpha}")
    data = data or breast_cancer()
    rng = np.random.default_rng(seed)
    test_index, train_index = [], []
    for label in (0.0, 1.0):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        cut = int(round(len(members) * TEST_FRACTION))
        test_index.extend(members[:cut])
        train_index.append(members[cut:])
    if sum(len(index) for index in train_index) < MIN_SHARE * len(domains):
        raise ValueError(f"too few samples for {len(domains)} domains of at least {MIN_SHARE}")
    for _attempt in range(1000):
        parts: dict[str, list[int]] = {domain: [] for domain in domains}
        for members in train_index:
            proportions = rng.dirichlet([alpha] * len(domains))
            cuts = (np.cumsum(proportions)[:-1] * len(members)).astype(int)
            for domain, chunk in zip(domains, np.split(members, cuts)):
                parts[domain].extend(chunk)
        if min(len(part) for part in parts.values()) >= MIN_SHARE:
            break
    else:
        raise ValueError(f"no split with {MIN_SHARE} samples per domain found for alpha {alpha}")
    test = np.sort(np.asarray(test_index))
    return FederatedSplit(
        Share(data.features[test], data.labels[test]),
        {domain: Share(data.features[np.sort(part)], data.labels[np.sort(part)]) for domain, part in parts.items()},
    )


def save_share(folder: Path, share: Share) -> Path:
    """Write a share into `folder` (created); its file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SHARE_FILE
    staging = path.with_suffix(".tmp.npz")
    np.savez(staging, features=share.features, labels=share.labels)
    staging.replace(path)
    return path


def load_share(folder: Path) -> Share:
    """The share saved in `folder`; FileNotFoundError naming the file when there is none."""
    path = folder / SHARE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no training data at {path}: run `medfabric fl data split` first")
    with np.load(path, allow_pickle=False) as stored:
        return Share(np.asarray(stored["features"], dtype=np.float64), np.asarray(stored["labels"], dtype=np.float64))
