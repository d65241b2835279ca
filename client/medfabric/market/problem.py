"""A market instance: M duty nodes (leaders) pricing for N data users (followers), checked parameter by parameter.

    p_hat     the price cap, > 0
    d_max     the demand cap, > 0
    costs     c_j of each duty node, 0 < c_j < p_hat            (M values)
    l         each user's initial access capability, > 0    (N values)
    lambda    each user's satisfaction weight, > 0          (N values)

As JSON (`medfabric market solve --problem FILE`): {"p_hat", "d_max", "costs": [M], "l": [N], "lambda": [N]}.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medfabric.errors import MedfabricError

# The spec's draw (SYSTEM.md section 3): p_hat 5, every cost 1, l ~ Normal(10, 5^2) kept positive (truncated at 0:
# a non-positive draw is drawn again), lambda ~ U(40, 80).
DEFAULT_P_HAT = 5.0
DEFAULT_COST = 1.0
DEFAULT_D_MAX = 100.0
L_MEAN, L_SD = 10.0, 5.0
LAMBDA_RANGE = (40.0, 80.0)


class MarketError(MedfabricError):
    """An instance that is not a market, or a solve that cannot go on; one line naming the parameter."""


@dataclass(frozen=True)
class MarketProblem:
    p_hat: float
    d_max: float
    costs: np.ndarray  # (M,)
    l: np.ndarray  # (N,)
    lam: np.ndarray  # (N,)

    @property
    def dns(self) -> int:
        return len(self.costs)

    @property
    def users(self) -> int:
        return len(self.l)

    def to_json(self) -> dict[str, Any]:
        return {"p_hat": self.p_hat, "d_max": self.d_max, "costs": self.costs.tolist(), "l": self.l.tolist(),
                "lambda": self.lam.tolist()}


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MarketError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _vector(name: str, values: Any) -> np.ndarray:
    if not isinstance(values, list | tuple | np.ndarray) or len(values) == 0:
        raise MarketError(f"{name} must be a non-empty list of numbers")
    return np.asarray([_number(f"{name}[{index}]", v) for index, v in enumerate(values)], dtype=np.float64)


def market_problem(p_hat: Any, d_max: Any, costs: Any, l: Any, lam: Any) -> MarketProblem:
    """A checked instance; MarketError naming the first parameter that is wrong."""
    p_hat, d_max = _number("p_hat", p_hat), _number("d_max", d_max)
    if p_hat <= 0:
        raise MarketError(f"p_hat must be positive, not {p_hat:g}")
    if d_max <= 0:
        raise MarketError(f"d_max must be positive, not {d_max:g}")
    costs, l, lam = _vector("costs", costs), _vector("l", l), _vector("lambda", lam)
    for index, cost in enumerate(costs):
        if not 0 < cost < p_hat:
            raise MarketError(f"costs[{index}] must be in (0, p_hat = {p_hat:g}), not {cost:g}")
    for name, values in (("l", l), ("lambda", lam)):
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            raise MarketError(f"{name}[{bad[0]}] must be positive, not {values[bad[0]]:g}")
    if len(l) != len(lam):
        raise MarketError(f"l and lambda must have one value per user: {len(l)} and {len(lam)}")
    return MarketProblem(p_hat, d_max, costs, l, lam)


def from_json(text: str) -> MarketProblem:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise MarketError(f"the problem is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise MarketError("the problem must be a JSON object")
    missing = [name for name in ("p_hat", "d_max", "costs", "l", "lambda") if name not in document]
    if missing:
        raise MarketError(f"the problem has no {missing[0]}")
    unknown = sorted(set(document) - {"p_hat", "d_max", "costs", "l", "lambda"})
    if unknown:
        raise MarketError(f"the problem has an unknown field {unknown[0]}")
    return market_problem(document["p_hat"], document["d_max"], document["costs"], document["l"], document["lambda"])


def random_problem(users: int, dns: int, seed: int = 0, p_hat: float = DEFAULT_P_HAT, cost: float = DEFAULT_COST,
                   d_max: float = DEFAULT_D_MAX) -> MarketProblem:
    """The spec's draw: l ~ Normal(10, 5^2) truncated to l > 0 (redrawn), lambda ~ U(40, 80), equal costs."""
    if users < 1:
        raise MarketError(f"users must be at least 1, not {users}")
    if dns < 1:
        raise MarketError(f"dns must be at least 1, not {dns}")
    rng = np.random.default_rng(seed)
    l = rng.normal(L_MEAN, L_SD, users)
    while np.any(l <= 0):
        redraw = l <= 0
        l[redraw] = rng.normal(L_MEAN, L_SD, int(redraw.sum()))
    lam = rng.uniform(*LAMBDA_RANGE, users)
    return market_problem(p_hat, d_max, [cost] * dns, l, lam)
