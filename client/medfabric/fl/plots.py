"""Figures of federated learning: a task's accuracy and loss per round (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_status(report: dict[str, Any], path: Path) -> Path:
    """The test accuracy and loss of the global model per round of `report` (flow.status), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in report["rounds"]]
    figure, accuracy_axis = plt.subplots(figsize=(7, 4))
    accuracy_axis.plot(rounds, [r["accuracy"] for r in report["rounds"]], marker="o", label="test accuracy")
    accuracy_axis.axhline(report["task"]["target_accuracy"], linestyle="--", color="grey", label="target")
    accuracy_axis.set_xlabel("round")
    accuracy_axis.set_ylabel("accuracy")
    loss_axis = accuracy_axis.twinx()
    loss_axis.plot(rounds, [r["loss"] for r in report["rounds"]], color="tab:red", marker=".", label="test loss")
    loss_axis.set_ylabel("loss")
    figure.legend(loc="center right", bbox_to_anchor=(0.88, 0.5))
    accuracy_axis.set_title(f"task {report['task']['task_id']}: {report['task']['aggregator']} over "
                            f"{', '.join(report['task']['domains'])}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
