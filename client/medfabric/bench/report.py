"""`medfabric bench report`: a benchmark run's results as a table and plots.

`make bench` (`medfabric network bench`) leaves results.json in its run
folder, build/bench/<UTC time>-<suite>/; this reads it (the latest run by
default), prints a table per round and writes two PNG plots beside it:
throughput.png (goodput and send rate per round) and latency.png (p50, p95
and p99 of successful transactions per round), each with one panel per
channel kind (local, public, baseline).

    >>> results = load_results(latest_bench_run())
    >>> write_plots(results, Path("plots"))
    [PosixPath('plots/throughput.png'), PosixPath('plots/latency.png')]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medfabric.cli.context import emit
from medfabric.errors import MedfabricError
from medfabric.consortium.layout import default_bench_dir, latest_bench_run

SCHEMA = "medfabric-bench/1"
RESULTS_FILE = "results.json"
KINDS = ("local", "public", "baseline")  # the panels, in this order; other kinds follow
PLOTS = ("throughput.png", "latency.png")
_ROUND_FIELDS = {"index": int, "label": str, "channel_kind": str, "submitted": int, "succeeded": int, "failed": int}
_OPTIONAL_NUMBERS = ("goodput_tps", "send_rate_tps")


class ReportError(MedfabricError):
    """The results cannot be read or plotted (one line)."""


def load_results(run_dir: Path) -> dict[str, Any]:
    """The run's results.json, checked to be a bench results file; ReportError saying what is wrong."""
    path = Path(run_dir) / RESULTS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"no {RESULTS_FILE} in {run_dir} (is it a benchmark run folder?)") from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}") from None
    try:
        results = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')}): is the run complete?") \
            from None
    if not isinstance(results, dict) or results.get("schema") != SCHEMA:
        raise ReportError(f"{path} is not a benchmark results file (schema {SCHEMA})")
    rounds = results.get("rounds")
    if not isinstance(rounds, list):
        raise ReportError(f"{path}: rounds must be a list")
    for position, entry in enumerate(rounds):
        _check_round(path, position, entry)
    return results


def _check_round(path: Path, position: int, entry: Any) -> None:
    where = f"{path}: rounds[{position}]"
    if not isinstance(entry, dict):
        raise ReportError(f"{where} is not an object")
    for name, kind in _ROUND_FIELDS.items():
        if not isinstance(entry.get(name), kind) or isinstance(entry.get(name), bool):
            raise ReportError(f"{where}.{name} must be {'a number' if kind is int else 'a string'}")
    for name in _OPTIONAL_NUMBERS:
        if entry.get(name) is not None and not _number(entry[name]):
            raise ReportError(f"{where}.{name} must be a number or null")
    latency = entry.get("latency_ms")
    if latency is not None and not (isinstance(latency, dict) and all(_number(latency.get(p)) for p in
                                                                       ("p50", "p95", "p99"))):
        raise ReportError(f"{where}.latency_ms must hold p50, p95 and p99 (or be null)")
    if not isinstance(entry.get("cpu", {}), dict):
        raise ReportError(f"{where}.cpu must be an object")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def results_table(results: Mapping[str, Any]) -> Table:
    table = Table(title=f"{results.get('suite', '?')} — profile {results.get('profile') or '?'}, "
                        f"{(results.get('machine') or {}).get('cores', '?')} cores", box=None)
    for column in ("round", "channel kind", "goodput TPS", "send TPS", "p50 ms", "p95 ms", "p99 ms", "failed",
                   "Caliper CPU %"):
        table.add_column(column, justify="left" if column in ("round", "channel kind") else "right")
    for entry in results["rounds"]:
        latency = entry.get("latency_ms") or {}
        failed = f"{entry['failed']}/{entry['submitted']}"
        if entry["failed"] and not entry.get("expect_failures"):
            failed = f"[red]{failed}[/red]"
        caliper = ((entry.get("cpu") or {}).get("caliper") or {}).get("percent")
        table.add_row(escape(f"{entry['index']} {entry['label']}"), escape(entry["channel_kind"]),
                      _cell(entry.get("goodput_tps")), _cell(entry.get("send_rate_tps")), _cell(latency.get("p50")),
                      _cell(latency.get("p95")), _cell(latency.get("p99")), failed, _cell(caliper))
    return table


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


def write_plots(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """throughput.png and latency.png in `out_dir`: per channel kind, a panel with a bar group per round."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a display
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rounds = results["rounds"]
    if not rounds:
        raise ReportError("the run has no rounds to plot")
    kinds = [k for k in KINDS if any(r["channel_kind"] == k for r in rounds)]
    kinds += sorted({r["channel_kind"] for r in rounds} - set(kinds))
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{results.get('suite', '')} (profile {results.get('profile') or '?'})"
    series = {
        "throughput.png": ("transactions per second", [("goodput", "goodput_tps", None),
                                                       ("send rate", "send_rate_tps", None)]),
        "latency.png": ("latency of successful transactions (ms)", [("p50", "latency_ms", "p50"),
                                                                   ("p95", "latency_ms", "p95"),
                                                                   ("p99", "latency_ms", "p99")]),
    }
    written = []
    for name, (ylabel, bars) in series.items():
        figure = Figure(figsize=(max(6.0, 3.2 * len(kinds)), 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, len(kinds), squeeze=False)[0]
        for axis, kind in zip(axes, kinds, strict=True):
            chosen = [r for r in rounds if r["channel_kind"] == kind]
            width = 0.8 / len(bars)
            for offset, (legend, key, sub) in enumerate(bars):
                values = [_value(r, key, sub) for r in chosen]
                positions = [i + (offset - (len(bars) - 1) / 2) * width for i in range(len(chosen))]
                axis.bar(positions, values, width, label=legend)
            axis.set_xticks(range(len(chosen)), [r["label"] for r in chosen], rotation=30, ha="right",
                            fontsize="small")
            axis.set_xlim(-0.75, max(len(chosen), 3) - 0.25)  # a lone round keeps a bar's width
            axis.set_title(kind)
            axis.grid(axis="y", alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[-1].legend(fontsize="small")
        figure.suptitle(title)
        path = out_dir / name
        figure.savefig(path, format="png", dpi=110)
        written.append(path)
    return written


def _value(entry: Mapping[str, Any], key: str, sub: str | None) -> float:
    value = entry.get(key)
    if sub is not None:
        value = (value or {}).get(sub)
    return float(value) if value is not None else 0.0


@click.command("report")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A run folder (default: the latest under build/bench, or $MEDFABRIC_BENCH_DIR).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the PNG plots (default: the run folder).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the results and the plots).")
def report(run_dir: Path | None, out_dir: Path | None, as_json: bool) -> None:
    """Show a benchmark run (`make bench`) per round and plot throughput and latency per channel kind.

    Example: medfabric bench report --run build/bench/20300101T120000Z-default
    """
    if run_dir is None:
        try:
            run_dir = latest_bench_run(default_bench_dir())
        except FileNotFoundError as exc:
            raise ReportError(str(exc)) from None
    results = load_results(run_dir)
    plots = write_plots(results, out_dir or run_dir)
    if as_json:
        emit({"run": str(run_dir), "results": results, "plots": [str(p) for p in plots]}, True, "")
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a file or pipe: no terminal width to fit, keep rows whole
    console.print(results_table(results))
    for problem in results.get("problems") or []:
        console.print(f"[red]problem:[/red] {escape(problem)}", soft_wrap=True)
    click.echo(f"plots: {', '.join(str(p) for p in plots)}")
