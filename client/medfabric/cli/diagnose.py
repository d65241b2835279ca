"""`medfabric diagnose`: a diagnosis server holding a task's global model, and the decoy check of one."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click
import numpy as np

from medfabric.cli.context import CliContext, emit
from medfabric.consortium.service_identity import DIAGNOSIS_USER
from medfabric.errors import MedfabricError
from medfabric.fl import data


@click.group()
def diagnose() -> None:
    """Diagnosis servers and decoy checks of their accuracy (judged on the public channel)."""


@diagnose.command("serve")
@click.option("--task", "task_id", required=True, help="The task whose latest global model is served.")
@click.option("--domain", required=True, help="The serving domain (it answers challenges as its diagnosis user).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: any free port.")
@click.option("--answer", type=click.Choice(["honest", "random"]), default="honest", show_default=True,
              help="random: answer at random (seeded), to see a decoy check fail.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --answer random.")
@click.pass_obj
def diagnose_serve(obj: CliContext, task_id: str, domain: str, port: int, answer: str, seed: int) -> None:
    """Serve the model over HTTPS on the topology's host until interrupted.

    Example: medfabric diagnose serve --task T --domain hospital-a --port 8443
    """
    import uvicorn

    from medfabric.fl.challenges import DecoyChallenges
    from medfabric.fl.diagnosis import create_app, honest, load_diagnoser, random_answers, tls_files

    host = obj.topology.host
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    with obj.session(domain, DIAGNOSIS_USER) as session:
        diagnoser = load_diagnoser(session, task_id)
        certificate, key = tls_files(session)
        challenges = DecoyChallenges(session.gateway.get_network(session.public_channel),
                                     session.topology.chaincode.name)
        app = create_app(diagnoser, challenges, honest if answer == "honest" else random_answers(seed))
        click.echo(f"serving the model of task {task_id} (round {diagnoser.round}, {diagnoser.model_sha256[:16]}...) "
                   f"at https://{host}:{port}")
        uvicorn.run(app, host=host, port=port, ssl_certfile=str(certificate), ssl_keyfile=str(key),
                    log_level="warning")


@diagnose.command("check")
@click.option("--server", "server_url", required=True, help="The diagnosis server, https://host:port.")
@click.option("--server-domain", required=True, help="The domain that runs it (its TLS CA is trusted).")
@click.option("--input", "input_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="x0: a JSON list of the model's feature values.")
@click.option("--decoys", type=click.IntRange(1, 1000), default=9, show_default=True, help="s")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=0.8, show_default=True, help="t")
@click.option("--pool", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the labelled share decoys come from (default: the domain's own training share).")
@click.option("--domain", required=True, help="The checking domain.")
@click.option("--as", "user", default="doctor", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def diagnose_check(obj: CliContext, server_url: str, server_domain: str, input_file: Path, decoys: int,
                   threshold: float, pool: Path | None, domain: str, user: str, as_json: bool) -> None:
    """Ask a diagnosis server about x0 hidden among decoys; exit 1 when it fails the check.

    Example: medfabric diagnose check --server https://127.0.0.1:8443 --server-domain hospital-a \\
        --decoys 9 --threshold 0.8 --input x0.json --domain hospital-b
    """
    from medfabric.fl.challenges import check

    try:
        x0 = np.asarray(json.loads(input_file.read_text()), dtype=np.float64)
    except (OSError, ValueError, TypeError) as error:
        raise MedfabricError(f"{input_file}: not a JSON list of numbers ({error})") from None
    labelled = data.load_share(pool or obj.layout.fl_data(domain))
    with obj.session(domain, user) as session:
        result = check(session, server_url, server_domain, x0, labelled, decoys, threshold)
    human = (f"challenge {result['challenge_id']}: {result['correct']} of {decoys} decoys right "
             f"(threshold {threshold}); " + (f"answer for x0 released: {result['released_answer']}"
                                             if result["status"] == "released" else "fail: no answer released"))
    emit(result, as_json, human)
    if result["status"] != "released":
        raise click.exceptions.Exit(1)
