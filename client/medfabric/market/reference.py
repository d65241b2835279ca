"""The centralised reference for the cooperative optimum: scipy's L-BFGS-B on all N x M prices at once."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from medfabric.market.problem import MarketError, MarketProblem
from medfabric.market.slack import DutyNodeData


@dataclass(frozen=True)
class ReferenceResult:
    prices: np.ndarray
    total_profit: float
    iterations: int
    seconds: float
    message: str


def cooperative_optimum(problem: MarketProblem, tolerance: float = 1e-12, max_iterations: int = 20000,
                        start: np.ndarray | None = None) -> ReferenceResult:
    """Maximise sum_j Pi_j over every price jointly, with the analytic gradient
    d(F_i / s_i)/dx_ij = (q'_ij - F_i / s_i) / s_i."""
    data = DutyNodeData.of(problem)
    shape = (problem.users, problem.dns)
    x0 = data.start() if start is None else problem.p_hat - np.asarray(start, dtype=np.float64)

    def negative_profit(flat):
        x = flat.reshape(shape)
        terms = data.terms(x)
        s = x.sum(axis=1, keepdims=True)
        ratio = terms.value.sum(axis=1, keepdims=True) / s
        return -float(ratio.sum()), (-(terms.first - ratio) / s).ravel()

    bounds = np.broadcast_to(np.stack([np.full(shape, data.x_min), np.broadcast_to(data.x_max, shape)], -1),
                             (*shape, 2)).reshape(-1, 2)
    started = time.perf_counter()
    answer = minimize(negative_profit, x0.ravel(), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": max_iterations, "ftol": tolerance, "gtol": tolerance * 1e-3})
    seconds = time.perf_counter() - started
    if not np.all(np.isfinite(answer.x)):
        raise MarketError(f"the centralised solve failed: {answer.message}")
    return ReferenceResult(problem.p_hat - answer.x.reshape(shape), -float(answer.fun), int(answer.nit), seconds,
                           str(answer.message))
