"""The leaders' equilibrium, decomposed across duty nodes: each duty node computes its own step from its own costs
and prices plus the consensus variables, and a coordinator forms the consensus. Only the consensus variables and
each node's slack contribution travel; the same nodes run in process or each in its own process
(medfabric.market.distributed).

Both scenarios share the splitting of SYSTEM.md section 3: the slack x_ij = p_hat - p_ij, the shared quantity
s_i = sum_k x_ik, and Pi_j = sum_i q_ij(x_ij) / s_i (medfabric.market.slack).

Competitive (each duty node its own profit), ADMM with a local copy sigma_ij of s_i and its dual mu_ij:
    (a) node j: sigma <- argmax q(x)/sigma - mu sigma - rho/2 (sigma - s)^2 over sigma >= x/2
               mu    <- mu + rho (sigma - s)
               x     <- argmax q(x)/sigma + mu x - rho/2 (x - x_k - (sigma - s)/M)^2 - rho/2 (x - x_k)^2
    (b) coordinator: s <- sum_j x_j                                  (the consensus variable)
    stop when the primal residual max |sigma - s| and the dual residual rho max |s_k+1 - s_k| are below tol.
At a fixed point q'(x)/s = q(x)/s^2: node j's first-order condition for its own best response.

Cooperative (the joint profit sum_i F_i / s_i, F_i = sum_j q_ij): the augmented-Lagrangian splitting above does
not settle here (users whose best joint price is the cap make the ratio singular), so the consensus runs in
Dinkelbach's parametric form, with the ratio R_i = F_i / s_i as the consensus variable:
    (a) node j: x <- argmax q(x) - R x                    (separable: its own prices and costs only)
    (b) coordinator: R <- sum_j q_j / sum_j x_j
    stop when the primal residual (the parametric gap max |sum_j (q_j - R x_j)| / s) and the dual residual
    max |R_k+1 - R_k| are below tol. At the fixed point q'_j(x_j) = R_i for every j: the joint optimum's condition.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from medfabric.market import DEFAULT_TOLERANCE, SCENARIOS
from medfabric.market.game import Outcome, outcome
from medfabric.market.problem import MarketError, MarketProblem
from medfabric.market.slack import DutyNodeData, maximise

DEFAULT_MAX_ITERATIONS = 5000
GRID = 24  # candidates that guard each one-dimensional step against a local optimum
WARM_UP = 2
NEWTON_STEPS = 1
BACKTRACKS = 3

Message = dict[str, Any]


class DutyNodeStep(Protocol):
    """One duty node's side of the decomposition: `start()` its first contribution, `step(consensus)` the next."""

    def start(self) -> Message: ...

    def step(self, consensus: Message) -> Message: ...


class _Node:
    steps = 0

    def effort(self) -> tuple[int, int, int]:
        """Newton steps, grid candidates and halvings of a step: a full search on the first steps, then a few
        Newton steps from the warm start."""
        return (4, GRID, 12) if self.steps < WARM_UP else (NEWTON_STEPS, 0, BACKTRACKS)


class CompetitiveNode(_Node):
    """ADMM state of one duty node (or a block of columns) that maximises its own profit."""

    def __init__(self, data: DutyNodeData, total_dns: int, rho: float):
        self.data, self.total_dns, self.rho = data, total_dns, rho
        self.x = data.start()
        self.sigma: np.ndarray | None = None
        self.mu: np.ndarray | None = None

    def start(self) -> Message:
        return {"x": self.x}

    def step(self, consensus: Message) -> Message:
        s = consensus["s"][:, None]
        data, rho = self.data, self.rho
        q = data.value(self.x)
        if self.sigma is None:
            self.sigma, self.mu = np.repeat(s, self.x.shape[1], axis=1), -q / s**2

        def copy_objective(sigma, derivatives):
            value = q / sigma - self.mu * sigma - rho / 2 * (sigma - s) ** 2
            if not derivatives:
                return (value,)
            return value, -q / sigma**2 - self.mu - rho * (sigma - s), 2 * q / sigma**3 - rho

        self.sigma = maximise(copy_objective, self.x / 2, np.inf, self.sigma, NEWTON_STEPS, 0, BACKTRACKS)
        self.mu = self.mu + rho * (self.sigma - s)
        primal = float(np.abs(self.sigma - s).max())

        previous, sigma, mu = self.x, self.sigma, self.mu
        anchor = previous + (sigma - s) / self.total_dns

        def slack_objective(x, derivatives):
            penalty = mu * x - rho / 2 * ((x - anchor) ** 2 + (x - previous) ** 2)
            if not derivatives:
                return (data.value(x) / sigma + penalty,)
            terms = data.terms(x)
            return (terms.value / sigma + penalty, terms.first / sigma + mu - rho * (2 * x - anchor - previous),
                    terms.second / sigma - 2 * rho)

        self.x = maximise(slack_objective, data.x_min, data.x_max, previous, *self.effort())
        self.steps += 1
        return {"x": self.x, "primal": primal}


class CooperativeNode(_Node):
    """Parametric step of one duty node (or a block of columns) for the joint profit."""

    def __init__(self, data: DutyNodeData):
        self.data = data
        self.x = data.start()

    def start(self) -> Message:
        return {"x": self.x, "q": self.data.value(self.x)}

    def step(self, consensus: Message) -> Message:
        ratio, data = consensus["ratio"][:, None], self.data

        def objective(x, derivatives):
            if not derivatives:
                return (data.value(x) - ratio * x,)
            terms = data.terms(x)
            return terms.value - ratio * x, terms.first - ratio, terms.second

        self.x = maximise(objective, data.x_min, data.x_max, self.x, *self.effort())
        self.steps += 1
        return {"x": self.x, "q": data.value(self.x)}


@dataclass
class AdmmResult:
    scenario: str
    prices: np.ndarray
    iterations: int
    converged: bool
    primal: list[float] = field(default_factory=list)
    dual: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def outcome(self, problem: MarketProblem) -> Outcome:
        return outcome(problem, self.prices)


def node_columns(dns: int, nodes: int) -> list[list[int]]:
    """Which duty nodes' columns each of `nodes` processes holds (one each when nodes == dns)."""
    if not 1 <= nodes <= dns:
        raise MarketError(f"nodes must be between 1 and the number of duty nodes ({dns}), not {nodes}")
    return [list(block) for block in np.array_split(np.arange(dns), nodes)]


def default_rho(dns: int) -> float:
    """The penalty that settles fastest on the spec's draws: each node's copy sigma grows with M, and its
    curvature falls as 1/M^2 (measured for M = 2..10; smaller values oscillate when M is small)."""
    return 32.0 / dns**2


def loop_kind(problem: MarketProblem, scenario: str) -> str:
    """Which consensus loop solves `scenario`: with one duty node both scenarios are its monopoly price, the
    joint optimum."""
    if scenario not in SCENARIOS:
        raise MarketError(f"scenario must be one of {', '.join(SCENARIOS)}, not {scenario!r}")
    return "cooperative" if problem.dns == 1 else scenario


def make_nodes(problem: MarketProblem, scenario: str, columns: Sequence[Sequence[int]],
               rho: float | None = None) -> list[DutyNodeStep]:
    kind, rho = loop_kind(problem, scenario), default_rho(problem.dns) if rho is None else rho
    if not rho > 0:
        raise MarketError(f"rho must be positive, not {rho:g}")
    nodes: list[DutyNodeStep] = []
    for block in columns:
        data = DutyNodeData.of(problem, list(block))
        nodes.append(CompetitiveNode(data, problem.dns, rho) if kind == "competitive" else CooperativeNode(data))
    return nodes


def coordinate(problem: MarketProblem, scenario: str, nodes: Sequence[DutyNodeStep],
               tolerance: float = DEFAULT_TOLERANCE, max_iterations: int = DEFAULT_MAX_ITERATIONS,
               rho: float | None = None, progress: Callable[[int, float, float], None] | None = None,
               executor: ThreadPoolExecutor | None = None) -> AdmmResult:
    """Run the consensus loop over `nodes` (in process or remote proxies: the same arithmetic either way); with an
    executor the nodes' steps run side by side (numpy releases the GIL, so threads use every core)."""
    if not tolerance > 0:
        raise MarketError(f"tolerance must be positive, not {tolerance:g}")
    if max_iterations < 1:
        raise MarketError(f"max_iterations must be at least 1, not {max_iterations}")
    rho = default_rho(problem.dns) if rho is None else rho
    started = time.perf_counter()

    def each(consensus: Message) -> list[Message]:
        if executor is None:
            return [node.step(consensus) for node in nodes]
        return list(executor.map(lambda node: node.step(consensus), nodes))

    replies = [node.start() for node in nodes]
    result = AdmmResult(scenario, np.empty(0), 0, False)
    if loop_kind(problem, scenario) == "competitive":
        s = _columns(replies, "x").sum(axis=1)
        for iteration in range(1, max_iterations + 1):
            replies = each({"s": s})
            s_next = _columns(replies, "x").sum(axis=1)
            primal, dual = max(reply["primal"] for reply in replies), rho * float(np.abs(s_next - s).max())
            s = s_next
            if _record(result, iteration, primal, dual, tolerance, progress):
                break
    else:
        x = _columns(replies, "x")
        ratio = _columns(replies, "q").sum(axis=1) / x.sum(axis=1)
        for iteration in range(1, max_iterations + 1):
            replies = each({"ratio": ratio})
            x = _columns(replies, "x")
            q = _columns(replies, "q")
            s = x.sum(axis=1)
            primal = float((np.abs((q - ratio[:, None] * x).sum(axis=1)) / s).max())
            ratio_next = q.sum(axis=1) / s
            dual, ratio = float(np.abs(ratio_next - ratio).max()), ratio_next
            if _record(result, iteration, primal, dual, tolerance, progress):
                break
    x = _columns(replies, "x")
    result.prices = problem.p_hat - x
    result.seconds = time.perf_counter() - started
    return result


def _columns(replies: list[Message], name: str) -> np.ndarray:
    """The nodes' (N, columns) answers side by side, in duty-node order."""
    return np.concatenate([reply[name] for reply in replies], axis=1)


def _record(result: AdmmResult, iteration: int, primal: float, dual: float, tolerance: float,
            progress: Callable[[int, float, float], None] | None) -> bool:
    result.iterations = iteration
    result.primal.append(primal)
    result.dual.append(dual)
    if progress is not None:
        progress(iteration, primal, dual)
    result.converged = primal < tolerance and dual < tolerance
    return result.converged


def solve(problem: MarketProblem, scenario: str, tolerance: float = DEFAULT_TOLERANCE,
          max_iterations: int = DEFAULT_MAX_ITERATIONS, rho: float | None = None,
          progress: Callable[[int, float, float], None] | None = None) -> AdmmResult:
    """The equilibrium of `scenario` in process: the duty nodes in one block per core, the blocks' steps side by
    side (a block steps its columns exactly as separate nodes would, so the answer is the same)."""
    workers = min(problem.dns, os.cpu_count() or 1)
    nodes = make_nodes(problem, scenario, node_columns(problem.dns, workers), rho)
    if workers == 1:
        return coordinate(problem, scenario, nodes, tolerance, max_iterations, rho, progress)
    with ThreadPoolExecutor(max_workers=workers) as executor:
        return coordinate(problem, scenario, nodes, tolerance, max_iterations, rho, progress, executor)
