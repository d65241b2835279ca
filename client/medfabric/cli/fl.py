"""`medfabric fl`: federated learning with the ledger as the record (medfabric.fl.flow does the work)."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import click

from medfabric.cli.context import CliContext, emit
from medfabric.consortium.layout import FL_DATA, read_tuning_record
from medfabric.fl import flow
from medfabric.fl.aggregators import AGGREGATORS
from medfabric.fl.data import DEFAULT_SEED
from medfabric.fl.training import ATTACKS, DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
task_option = click.option("--task", "task_id", required=True, help="The task id.")
user_option = click.option("--as", "user", default=flow.FL_USER, show_default=True,
                           help="User of the domain (its per-task key is wrapped for the participant user).")


@click.group()
def fl() -> None:
    """Federated learning: updates and aggregations on the public channel, weights in the data services."""


@fl.group("task")
def fl_task() -> None:
    """Publish and inspect tasks."""


@fl_task.command("create")
@click.option("--task-id", help="Task id (default: task-<UTC time>).")
@click.option("--model", type=click.Choice(["logreg"]), default="logreg", show_default=True)
@click.option("--rounds", type=click.IntRange(1, 10_000), default=30, show_default=True)
@click.option("--target-accuracy", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True)
@click.option("--domains", required=True, help="Comma-separated taking-part domains, e.g. hospital-a,hospital-b.")
@click.option("--aggregator", type=click.Choice(AGGREGATORS), default="fedavg", show_default=True)
@click.option("--learning-rate", type=click.FloatRange(0, 100, min_open=True), default=DEFAULT_LEARNING_RATE,
              show_default=True)
@click.option("--epochs", type=click.IntRange(1, 10_000), default=DEFAULT_EPOCHS, show_default=True,
              help="Local epochs per round.")
@click.option("--max-samples", type=click.IntRange(0), default=0, show_default=True,
              help="Cap on a domain's reported sample count for FedAvg (0: none).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Seed of the data split written to each domain's folder when a share is missing.")
@click.option("--domain", "publisher", help="Publishing (and aggregating) domain (default: the first one listed).")
@user_option
@json_option
@click.pass_obj
def task_create(obj: CliContext, task_id: str | None, model: str, rounds: int, target_accuracy: float, domains: str,
                aggregator: str, learning_rate: float, epochs: int, max_samples: int, seed: int,
                publisher: str | None, user: str, as_json: bool) -> None:
    """Publish a task on the public channel, with a per-task key for each domain.

    Example: medfabric fl task create --rounds 30 --target-accuracy 0.95 --domains hospital-a,hospital-b,hospital-c
    """
    chosen = [name.strip() for name in domains.split(",") if name.strip()]
    for name in chosen:
        obj.topology.domain(name)
    publisher = publisher or chosen[0]
    obj.topology.domain(publisher)
    sizes = flow.ensure_data(obj.layout, chosen, publisher, seed)
    if sizes is not None:
        if not as_json:
            click.echo(f"wrote the breast-cancer split (seed {seed}) into each domain's folder under "
                       f"{obj.layout.root / FL_DATA}: {sizes}")
    spec = flow.TaskSpec(task_id or f"task-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}", chosen, rounds,
                         target_accuracy, aggregator, learning_rate, epochs, max_samples, model)
    with obj.session(publisher, user) as session:
        task = flow.create_task(session, spec)
    emit(task, as_json, f"task {task['task_id']}: {task['rounds']} rounds of {task['aggregator']} over "
                        f"{', '.join(task['domains'])}, target accuracy {task['target_accuracy']}; aggregated by "
                        f"{task['publisher_domain']}")


@fl.command("train")
@task_option
@click.option("--domain", required=True, help="The training domain.")
@click.option("--attack", type=click.Choice(ATTACKS), help="Poison this update (experiments only).")
@user_option
@json_option
@click.pass_obj
def fl_train(obj: CliContext, task_id: str, domain: str, attack: str | None, user: str, as_json: bool) -> None:
    """One round of local training on the domain's own data; the update stored and recorded.

    Example: medfabric fl train --task T --domain hospital-a
    """
    with obj.session(domain, user) as session:
        update = flow.train(session, task_id, attack)
    emit(update, as_json, f"round {update['round']} of {task_id}: {domain} trained on {update['n_samples']} samples, "
                          f"local accuracy {update['accuracy']:.3f}, update {update['weights_sha256'][:16]}...")


def _sessions(obj: CliContext, stack: ExitStack, user: str) -> dict:
    """A session of `user` in every domain, closed with `stack`."""
    return {d.id: stack.enter_context(obj.session(d.id, user)) for d in obj.topology.domains}


def _publisher_session(obj: CliContext, stack: ExitStack, task_id: str, user: str):
    """A session of the task's publisher, found from the task on the first domain's peer."""
    first = obj.topology.domains[0].id
    with obj.session(first, user) as session:
        publisher = flow.find_task(session, task_id)["publisher_domain"]
    return stack.enter_context(obj.session(publisher, user))


@fl.command("aggregate")
@task_option
@click.option("--partial", is_flag=True, help="Aggregate the updates recorded so far, not waiting for every domain.")
@user_option
@json_option
@click.pass_obj
def fl_aggregate(obj: CliContext, task_id: str, partial: bool, user: str, as_json: bool) -> None:
    """Aggregate the current round from the ledger and the stored updates only, as the task's publisher.

    Example: medfabric fl aggregate --task T
    """
    with ExitStack() as stack:
        aggregation = flow.aggregate(_publisher_session(obj, stack, task_id, user), task_id, partial)
    emit(aggregation, as_json, f"round {aggregation['round']} of {task_id}: {len(aggregation['updates'])} updates, "
                               f"test accuracy {aggregation['accuracy']:.3f}"
                               f"{'; task complete' if aggregation['completes'] else ''}")


@fl.command("run")
@task_option
@user_option
@json_option
@click.pass_obj
def fl_run(obj: CliContext, task_id: str, user: str, as_json: bool) -> None:
    """Every remaining round: each domain trains, the publisher aggregates, until the task completes.

    Example: medfabric fl run --task T
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with ExitStack() as stack:
        sessions = _sessions(obj, stack, user)
        task = flow.find_task(next(iter(sessions.values())), task_id)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("round {task.completed}/{task.total}"),
                   TextColumn("{task.fields[accuracy]}"), TimeElapsedColumn())
        with Progress(*columns, disable=as_json) as progress:
            bar = progress.add_task(f"task {task_id}", total=task["rounds"], completed=task["round"] - 1,
                                    accuracy="")
            reports = flow.run(sessions, task_id, on_round=lambda report: progress.update(
                bar, completed=report.round, accuracy=f"accuracy {report.accuracy:.3f}"))
    rows = [report.__dict__ for report in reports]
    last = reports[-1] if reports else None
    emit({"task_id": task_id, "rounds": rows}, as_json,
         f"task {task_id}: {len(reports)} rounds run" + (f", accuracy {last.accuracy:.3f}, "
                                                          f"{sum(r.seconds for r in reports) / len(reports):.2f} s "
                                                          f"per round" if last else ", none left"))


@fl.command("status")
@task_option
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the accuracy/loss curve (PNG).")
@click.option("--domain", help="Domain whose peer is asked (default: the first).")
@user_option
@json_option
@click.pass_obj
def fl_status(obj: CliContext, task_id: str, plot: Path | None, domain: str | None, user: str,
              as_json: bool) -> None:
    """Rounds, the accuracy and loss curve, and who contributed what.

    Example: medfabric fl status --task T --plot curve.png
    """
    with obj.session(domain or obj.topology.domains[0].id, user) as session:
        report = flow.status(session, task_id)
    if plot:
        from medfabric.fl.plots import plot_status

        plot_status(report, plot)
    task = report["task"]
    where = (f"complete after {len(report['rounds'])} of {task['rounds']} rounds" if task["status"] == "complete"
             else f"training round {task['round']} of {task['rounds']}")
    lines = [f"task {task_id}: {where}, {task['aggregator']} over {', '.join(task['domains'])}"]
    lines += [f"  round {r['round']:>3}: accuracy {r['accuracy']:.3f}  loss {r['loss']:.4f}  "
              + ", ".join(f"{d} n={n}" for d, n in r["contributors"].items()) for r in report["rounds"]]
    emit(report, as_json, "\n".join(lines))


@fl.command("verify")
@task_option
@user_option
@json_option
@click.pass_obj
def fl_verify(obj: CliContext, task_id: str, user: str, as_json: bool) -> None:
    """Re-run every aggregation from the ledger and the stored updates; exit 1 if a hash differs.

    Example: medfabric fl verify --task T
    """
    with ExitStack() as stack:
        checks = flow.verify(_publisher_session(obj, stack, task_id, user), task_id)
    rows = [{"round": c.round, "recorded": c.recorded, "recomputed": c.recomputed, "matches": c.matches,
             "problem": c.problem} for c in checks]
    bad = [c for c in checks if not c.matches]
    human = "\n".join(f"round {c.round:>3}: {'same hash' if c.matches else 'MISMATCH'} {c.recorded[:16]}..."
                      + (f" ({c.problem})" if c.problem else "" if c.matches else f" recomputed {c.recomputed[:16]}...")
                      for c in checks) or f"task {task_id} has no aggregation yet"
    emit({"task_id": task_id, "rounds": rows, "verified": not bad}, as_json, human)
    if bad:
        raise click.exceptions.Exit(1)


@fl.command("compare")
@click.option("--rounds", type=click.IntRange(1, 10_000), default=30, show_default=True)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the curves (PNG).")
@json_option
def fl_compare(rounds: int, seed: int, plot: Path | None, as_json: bool) -> None:
    """Federated against centralised training and each hospital alone, in one process (no ledger).

    Example: medfabric fl compare --plot curves.png
    """
    from medfabric.fl import experiments

    result = experiments.curves(rounds, seed=seed)
    if plot:
        experiments.plot_curves(result, plot)
    lines = [f"{name:<24} " + " ".join(f"{value:.3f}" for value in accuracy[:: max(1, rounds // 10)])
             + f"  final {accuracy[-1]:.3f}" for name, accuracy in result["accuracy"].items()]
    emit(result, as_json, "\n".join([f"test accuracy every {max(1, rounds // 10)} rounds:", *lines]))


@fl.command("poison")
@click.option("--rounds", type=click.IntRange(1, 10_000), default=30, show_default=True)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the split (in process).")
@click.option("--on-ledger", is_flag=True,
              help="Run every cell as a task on the running consortium (the default seed's split).")
@user_option
@json_option
@click.pass_obj
def fl_poison(obj: CliContext, rounds: int, seed: int, on_ledger: bool, user: str, as_json: bool) -> None:
    """One hospital poisons its updates (scaled, flipped labels, inflated n_k): final accuracy per aggregator.

    Example: medfabric fl poison [--on-ledger]
    """
    from medfabric.fl import experiments

    if not on_ledger:
        result = experiments.poisoning(rounds, seed=seed)
    else:
        domains = [d.id for d in obj.topology.domains]
        flow.prepare_data(obj.layout, domains, domains[0])
        with ExitStack() as stack:
            sessions = _sessions(obj, stack, user)
            result = experiments.poisoning_on_ledger(sessions, rounds, on_cell=None if as_json else (
                lambda attack, name, accuracy: click.echo(f"  {attack:<9} {name:<28} {accuracy:.3f}", err=True)))
    emit(result, as_json, experiments.table_markdown(result))


@fl.command("bench")
@click.option("--rounds", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the JSON result (default: build/bench/<UTC time>-fl).")
@user_option
@json_option
@click.pass_obj
def fl_bench(obj: CliContext, rounds: int, out: Path | None, user: str, as_json: bool) -> None:
    """Ledger cost per round on the running consortium: ROUNDS rounds over every domain, each phase timed.

    A phase of the domains' training is the slowest domain's (they train at once). Run it on the profile to
    measure: make up PROFILE=low-latency, then make bench-fl.
    Example: medfabric fl bench --rounds 10
    """
    import json
    import statistics

    domains = [d.id for d in obj.topology.domains]
    task_id = f"bench-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    flow.ensure_data(obj.layout, domains, domains[0])
    with ExitStack() as stack:
        sessions = _sessions(obj, stack, user)
        flow.create_task(sessions[domains[0]], flow.TaskSpec(task_id, domains, rounds, target_accuracy=1.0))
        reports = flow.run(sessions, task_id)
    phases = sorted(reports[0].phases)
    median = {name: statistics.median(r.phases[name] for r in reports) for name in phases}
    ledger = statistics.median(r.seconds - r.phases["train.train"] - r.phases["aggregate.aggregate"]
                               for r in reports)
    result = {"task_id": task_id, "rounds": len(reports), "domains": domains,
              "tuning": _channels_profile(obj), "round_seconds_median": statistics.median(r.seconds for r in reports),
              "ledger_seconds_median": ledger, "phase_seconds_median": median,
              "per_round": [r.__dict__ for r in reports]}
    folder = out or obj.layout.root.parent / "bench" / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-fl"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fl-round-cost.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    lines = [f"{len(reports)} rounds over {', '.join(domains)} (profile {result['tuning']}): "
             f"median {result['round_seconds_median']:.3f} s per round, of which ledger and data services "
             f"{ledger:.3f} s", *(f"  {name:<20} {value * 1000:8.1f} ms" for name, value in median.items()),
             f"written to {folder / 'fl-round-cost.json'}"]
    emit(result, as_json, "\n".join(lines))


def _channels_profile(obj: CliContext) -> str:
    """The tuning profile the running consortium's channels were created with (`up` records it)."""
    return (read_tuning_record(obj.layout) or {}).get("profile", "unknown")
