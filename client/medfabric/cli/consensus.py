"""`medfabric consensus`: AHC-clustered BFT against flat BFT (medfabric.consensus does the work)."""

from __future__ import annotations

from pathlib import Path

import click

from medfabric.cli.context import emit
from medfabric.consensus import DEFAULT_FEATURES, METHODS, ConsensusError, model

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _counts(text: str, what: str) -> list[int]:
    """`1,4,8,10`, `16..160` (step 16) or `16..160:8`."""
    try:
        if ".." in text:
            low, _, rest = text.partition("..")
            high, _, step = rest.partition(":")
            low, high = int(low), int(high)
            values = list(range(low, high + 1, int(step) if step else low))
        else:
            values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConsensusError(f"{what} must be a list like 1,4,8,10 or a range like 16..160, not {text!r}") from None
    if not values or min(values) < 1:
        raise ConsensusError(f"{what} must be positive counts, not {text!r}")
    return values


@click.group()
def consensus() -> None:
    """AHC-PBFT against PBFT: clustering, message counts, simulation."""


@consensus.command("cluster")
@click.option("--nodes", "nodes_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV with a header: id and the feature columns.")
@click.option("--groups", type=click.IntRange(1), required=True)
@click.option("--features", default=",".join(DEFAULT_FEATURES), show_default=True,
              help="Feature columns, comma-separated (positions by default; e.g. blood_pressure,glucose,heart_rate).")
@click.option("--method", type=click.Choice(METHODS), default="ward", show_default=True, help="Linkage.")
@click.option("--balanced", is_flag=True, help="Group sizes that differ by at most one (cut in dendrogram order).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="PNG of the groups and the dendrogram.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a topology: a local channel and BFT orderer set per group, the duty nodes' set on public.")
@click.option("--base-port", type=click.IntRange(1024, 60000), help="The written topology's base_port.")
@json_option
def cluster(nodes_file: Path, groups: int, features: str, method: str, balanced: bool, plot: Path | None,
            out: Path | None, base_port: int | None, as_json: bool) -> None:
    """Cluster consensus nodes into groups, each with its duty node (the group's medoid).

    Example: medfabric consensus cluster --nodes nodes.csv --groups 4 --plot dendrogram.png
    """
    from medfabric.consensus.clustering import cluster as run_cluster
    from medfabric.consensus.nodes import read_nodes

    names = tuple(name.strip() for name in features.split(",") if name.strip())
    clustering = run_cluster(read_nodes(nodes_file, names), groups, method, balanced)
    if plot:
        from medfabric.consensus.plots import plot_clusters

        plot_clusters(clustering, plot)
    answer = clustering.to_json()
    if out:
        from medfabric.consensus.topology_writer import write_topology

        write_topology(clustering, out, base_port)
        answer["topology"] = str(out)
    lines = [f"group {g['group'] + 1}: {len(g['members'])} nodes, duty node {g['duty_node']}" for g in answer["groups"]]
    emit(answer, as_json, "\n".join(lines) + (f"\ntopology written to {out}" if out else ""))


@consensus.command("nodes")
@click.option("--count", type=click.IntRange(1), default=160, show_default=True)
@click.option("--regions", type=click.IntRange(1), default=4, show_default=True)
@click.option("--liars", type=click.IntRange(0), default=0, show_default=True,
              help="Nodes that report a random position instead of their own.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def nodes_command(count: int, regions: int, liars: int, seed: int, out: Path) -> None:
    """Write a synthetic node file: positions (km) in Gaussian regions of a 1,000 km square."""
    from medfabric.consensus.nodes import synthetic_nodes, write_nodes

    write_nodes(synthetic_nodes(count, regions, seed, liars), out)
    click.echo(f"{count} nodes in {regions} regions ({liars} lying) written to {out}")


@consensus.command("model")
@click.option("--nodes", default="160", show_default=True, help="N: a list (16,32) or a range (16..160).")
@click.option("--groups", default="1,4,8,10", show_default=True, help="M values; 1 is flat PBFT.")
@json_option
def model_command(nodes: str, groups: str, as_json: bool) -> None:
    """Message counts per phase of one instance, flat and clustered (SYSTEM.md section 4)."""
    rows = []
    for n in _counts(nodes, "--nodes"):
        for m in _counts(groups, "--groups"):
            if m > n:
                raise ConsensusError(f"{m} groups need at least {m} nodes; N is {n}")
            counts = model.flat(n) if m == 1 else model.clustered(n, m)
            rows.append({"nodes": n, "groups": m, "scheme": "flat" if m == 1 else "ahc", **counts.to_json(),
                         "zeta": model.zeta(n, m)})
    lines = [f"N = {r['nodes']:>4}, M = {r['groups']:>3}: pre-prepare {r['pre_prepare']:>6}, prepare {r['prepare']:>7}, "
             f"commit {r['commit']:>7}, inter {r['inter']:>5}, total {r['total']:>7} (zeta^2 = {r['zeta'] ** 2:.0f})"
             for r in rows]
    emit(rows, as_json, "\n".join(lines))


@consensus.command("simulate")
@click.option("--nodes", default="16..160", show_default=True, help="N: a range (16..160, step 16) or a list.")
@click.option("--groups", default="1,4,8,10", show_default=True, help="M values; 1 is flat PBFT.")
@click.option("--repetitions", type=click.IntRange(1), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--faulty", type=click.IntRange(0), default=0, show_default=True, help="Silent nodes per group.")
@click.option("--backbone-mbps", type=click.FloatRange(0, min_open=True), default=100.0, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="PNG: the paper's Fig. 4.")
@json_option
def simulate(nodes: str, groups: str, repetitions: int, seed: int, faulty: int, backbone_mbps: float,
             plot: Path | None, as_json: bool) -> None:
    """Latency and throughput of one consensus instance against N, flat and clustered (message-level simulation).

    Example: medfabric consensus simulate --nodes 16..160 --groups 1,4,8,10 --plot fig4.png
    """
    from rich.progress import Progress

    from medfabric.consensus.simulate import Settings, sweep

    node_counts, group_counts = _counts(nodes, "--nodes"), _counts(groups, "--groups")
    total = sum(1 for m in group_counts for n in node_counts if m == 1 or n >= 4 * m)
    with Progress(disable=as_json) as progress:
        bar = progress.add_task("points", total=total)
        points, seconds = sweep(node_counts, group_counts, repetitions, seed,
                                Settings(backbone_mbps=backbone_mbps, faulty=faulty),
                                progress=lambda _point: progress.advance(bar))
    if plot:
        from medfabric.consensus.plots import plot_sweep

        plot_sweep(points, plot)
    lines = [f"N = {p.nodes:>4}, M = {p.groups:>3}: latency {p.latency_mean:.3f} s (sd {p.latency_sd:.3f}), "
             f"throughput {p.throughput_mean:,.0f} tx/s, {p.messages} messages" for p in points]
    emit({"points": [p.to_json() for p in points], "seconds": seconds}, as_json,
         "\n".join(lines) + f"\n{len(points)} points x {repetitions} repetitions in {seconds:.1f} s")


@consensus.command("robustness")
@click.option("--nodes", type=click.IntRange(4), default=160, show_default=True)
@click.option("--groups", type=click.IntRange(1), default=4, show_default=True)
@click.option("--liars", type=click.IntRange(0), default=8, show_default=True,
              help="Nodes that report a random position instead of their own.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="PNG: the paper's Fig. 3 (ward).")
@json_option
def robustness(nodes: int, groups: int, liars: int, seed: int, plot: Path | None, as_json: bool) -> None:
    """Do lying nodes change how the honest ones group? Agreement with the true regions, per linkage method."""
    from medfabric.consensus.clustering import cluster as run_cluster
    from medfabric.consensus.robustness import robustness as measure

    rows = measure(nodes, groups, liars, seed)
    if plot:
        from medfabric.consensus.nodes import synthetic_nodes
        from medfabric.consensus.plots import plot_clusters

        plot_clusters(run_cluster(synthetic_nodes(nodes, groups, seed, liars=liars), groups, "ward"), plot,
                      f"AHC (ward), {nodes} nodes, {liars} lying about their position")
    emit([row.to_json() for row in rows], as_json, "\n".join(
        f"{row.method:>8}: adjusted Rand index of the honest nodes {row.agreement_without:.3f} without liars, "
        f"{row.agreement_with:.3f} with {row.liars}" for row in rows))
